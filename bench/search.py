"""Listing search benchmark: 100k listings, searched through the API with an availability window.

Creates (once) its own database ``gpux_bench`` on the PostgreSQL the test settings use (127.0.0.1:5432, or the
server of ``DATABASE_URL``), bulk-inserts clusters, nodes, listings and some node reservations, then times
``GET /api/v1/listings/?start=…&end=…`` with assorted filters through the Django test client and prints p50 / p95
milliseconds per request. Target: p95 < 50 ms.

    .venv/bin/python bench/search.py [--listings 100000] [--requests 300] [--rebuild]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

from results import record  # bench/ is on sys.path when run as a script

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
BENCH_DB = "gpux_bench"


def configure_database() -> None:
    """Point Django at ``gpux_bench`` on the same server as the tests, creating the database if needed."""
    from marketplace import embedded

    url = os.environ.get("DATABASE_URL")
    if not url and embedded.tcp_reachable("127.0.0.1", 5432):
        url = "postgres://postgres@127.0.0.1:5432/gpux"
    if not url:
        sys.exit("bench/search.py needs PostgreSQL: set DATABASE_URL or run one on 127.0.0.1:5432")
    parts = urlsplit(url)
    admin = urlunsplit(
        (
            parts.scheme.replace("postgres", "postgresql", 1) if parts.scheme == "postgres" else parts.scheme,
            parts.netloc,
            "/postgres",
            "",
            "",
        )
    )
    embedded.ensure_database(admin, BENCH_DB)
    os.environ["DATABASE_URL"] = urlunsplit((parts.scheme, parts.netloc, f"/{BENCH_DB}", parts.query, ""))
    os.environ["DJANGO_SETTINGS_MODULE"] = "marketplace.settings.test"  # test-like: real PostgreSQL, no DEBUG


def build(n_listings: int, rng: random.Random) -> None:
    """Bulk-insert providers, data centres, clusters (≈5 listings each), nodes, listings and reservations."""
    from django.db import connection, transaction
    from psycopg.types.range import Range

    from accounts.demo import demo_credit_code
    from accounts.models import CITIES, Organization
    from listings.models import Accelerator, Cluster, DataCenter, Listing, Node
    from orders.models import Booking, NodeReservation

    t0 = time.perf_counter()
    chips = list(Accelerator.objects.all())
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    with transaction.atomic():
        providers = Organization.objects.bulk_create(
            Organization(
                kind="provider",
                name=f"Bench provider {i}",
                city=CITIES[i % len(CITIES)],
                credit_code=demo_credit_code(CITIES[i % len(CITIES)], 500_000 + i),
            )
            for i in range(60)
        )
        buyer = Organization.objects.create(
            kind="startup", name="Bench buyer", city="Shanghai", credit_code=demo_credit_code("Shanghai", 599_999)
        )
        data_centers = DataCenter.objects.bulk_create(
            DataCenter(provider=p, name=f"{p.name} {city}", city=city, operator=rng.choice(["state", "private"]))
            for p in providers
            for city in rng.sample(CITIES, 6)
        )
        n_clusters = max(1, n_listings // 5)
        clusters = Cluster.objects.bulk_create(
            (
                Cluster(
                    data_center=rng.choice(data_centers),
                    name=f"bench-{i}",
                    accelerator=rng.choice(chips),
                    gpus_per_node=rng.choice([4, 8, 8, 8, 16]),
                    node_count=rng.choice([1, 2, 4, 4, 8, 16]),
                )
                for i in range(n_clusters)
            ),
            batch_size=5000,
        )
        Node.objects.bulk_create(
            (Node(cluster=c, index=i) for c in clusters for i in range(1, c.node_count + 1)), batch_size=10_000
        )
        listings = []
        for i in range(n_listings):
            cluster = clusters[i % n_clusters]
            start = now + dt.timedelta(hours=rng.randint(-240, 24 * 45))
            listings.append(
                Listing(
                    cluster=cluster,
                    price_per_gpu_hour=Decimal(rng.randint(150, 3000)) / 100,
                    available_from=start,
                    available_until=start + dt.timedelta(hours=rng.randint(24, 24 * 60)),
                    min_hours=rng.choice([1, 1, 4, 8, 24]),
                    status=rng.choices(["active", "paused", "draft", "closed"], [85, 5, 5, 5])[0],
                )
            )
        Listing.objects.bulk_create(listings, batch_size=10_000)
        # Reservations on a fifth of the clusters: half of their nodes, for a few days somewhere in the next weeks.
        bookings, reservations = [], []
        for index in rng.sample(range(n_clusters), n_clusters // 5):
            start = now + dt.timedelta(hours=rng.randint(1, 24 * 30))
            end = start + dt.timedelta(hours=rng.randint(4, 24 * 5))
            bookings.append((clusters[index], start, end, listings[index]))  # listing i belongs to cluster i
        booking_rows = Booking.objects.bulk_create(
            (
                Booking(
                    buyer=buyer,
                    listing=listing,
                    nodes=max(1, cluster.node_count // 2),
                    start=start,
                    end=end,
                    gpu_hours=1,
                    price_per_gpu_hour=Decimal(1),
                    subtotal=Decimal(1),
                    cash_amount=Decimal(1),
                    status="confirmed",
                )
                for cluster, start, end, listing in bookings
            ),
            batch_size=5000,
        )
        node_ids = {}
        for cluster_id, node_id, index in Node.objects.filter(cluster__in=[b[0] for b in bookings]).values_list(
            "cluster_id", "id", "index"
        ):
            node_ids.setdefault(cluster_id, []).append((index, node_id))
        for booking, (cluster, start, end, _) in zip(booking_rows, bookings, strict=True):
            for _, node_id in sorted(node_ids[cluster.pk])[: booking.nodes]:
                reservations.append(NodeReservation(booking=booking, node_id=node_id, period=Range(start, end, "[)")))
        NodeReservation.objects.bulk_create(reservations, batch_size=10_000)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # statistics, and the visibility map index-only scans need
    print(
        f"built {len(clusters)} clusters, {Node.objects.count()} nodes, {n_listings} listings, "
        f"{len(reservations)} reservations in {time.perf_counter() - t0:.1f} s"
    )


def scenarios(rng: random.Random, count: int) -> list[tuple[str, dict]]:
    """Assorted searches, each with a window of whole hours in the next weeks."""
    from accounts.models import CITIES

    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    slugs = ["h100-sxm", "a100-80g", "ascend-910b", "h20", "l40s", "ascend-910c"]
    kinds = [
        ("window", lambda: {}),
        ("window+accelerator", lambda: {"accelerator": rng.choice(slugs)}),
        ("window+city+domestic", lambda: {"city": rng.choice(CITIES), "domestic": "true"}),
        ("window+min_gpus", lambda: {"min_gpus": rng.choice([16, 32, 64])}),
        ("window+max_price+pflop", lambda: {"max_price": rng.choice(["8", "12", "20"]), "ordering": "price_per_pflop"}),
        (
            "window+2 chips+operator+min_gpus",
            lambda: {"accelerator": rng.sample(slugs, 2), "operator": "state", "min_gpus": 16, "ordering": "-price"},
        ),
    ]
    out = []
    for i in range(count):
        name, extra = kinds[i % len(kinds)]
        start = now + dt.timedelta(hours=rng.randint(2, 24 * 20))
        end = start + dt.timedelta(hours=rng.choice([4, 24, 72, 168]))
        params = {
            "start": start.isoformat().replace("+00:00", "Z"),
            "end": end.isoformat().replace("+00:00", "Z"),
            **extra(),
        }
        out.append((name, params))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rebuild", action="store_true", help="drop the bench data and insert it again")
    args = parser.parse_args()

    configure_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor
    from django.test import Client

    from listings.models import Listing

    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    call_command("migrate", interactive=False, verbosity=0)
    rng = random.Random(42)
    if args.rebuild or Listing.objects.count() != args.listings:
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE orders_nodereservation, orders_booking, listings_listing, "
                "listings_provenancedeclaration, listings_node, listings_cluster, listings_datacenter, "
                "accounts_organization RESTART IDENTITY CASCADE"
            )
        build(args.listings, rng)
    elif pending:
        # Migrations that rewrote the kept data (e.g. filled new columns) leave dead rows and a cleared visibility
        # map behind: vacuum as ``build`` does, so the timings are not of a table autovacuum has yet to visit.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")

    client = Client()
    runs = scenarios(random.Random(7), args.requests)
    for _, params in runs[:20]:  # warm-up: connections, caches, query plans
        client.get("/api/v1/listings/?" + urlencode(params, doseq=True))
    timings: dict[str, list[float]] = {}
    matched = []
    for name, params in runs:
        t0 = time.perf_counter()
        response = client.get("/api/v1/listings/?" + urlencode(params, doseq=True))
        elapsed = (time.perf_counter() - t0) * 1000
        if response.status_code != 200:
            sys.exit(f"{response.status_code} for {params}: {response.content[:300]!r}")
        matched.append(response.json()["count"])
        timings.setdefault(name, []).append(elapsed)
    every = sorted(t for ts in timings.values() for t in ts)

    def pct(values, q):
        values = sorted(values)
        return values[min(len(values) - 1, round(q * (len(values) - 1)))]

    print(f"{Listing.objects.count()} listings; {len(every)} requests; median matches {statistics.median(matched):.0f}")
    for name, ts in timings.items():
        print(f"  {name:<36} p50 {pct(ts, 0.5):6.1f} ms   p95 {pct(ts, 0.95):6.1f} ms")
    p50, p95 = pct(every, 0.5), pct(every, 0.95)
    verdict = "met" if p95 < 50 else "MISSED"
    print(f"ALL{'':<35} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   (target p95 < 50 ms: {verdict})")
    record("search", f"p50 per API request, {Listing.objects.count()} listings, window filter", p50, unit="ms")
    record("search", "p95 per API request", p95, unit="ms", target="< 50 ms", met=p95 < 50)


if __name__ == "__main__":
    main()

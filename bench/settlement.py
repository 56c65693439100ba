"""Settlement throughput: real Celery workers draining ``settle_booking`` tasks through Redis.

Creates a fresh database ``gpux_bench_settlement`` on the PostgreSQL the tests use (see ``bench/booking.py``),
migrates it, and writes N completed bookings (default 10 000) by bulk SQL — spread over 200 startups and 10
providers — with their cash holds posted in the ledger (wallet → wallet hold, one balanced transaction each,
key ``booking:{id}:hold``). It enqueues the settlements on a dedicated Redis db (15) as production does
(``sweep_ended_bookings`` → ``enqueue_settlement``: one ``settle_bookings`` message per ``SETTLE_BATCH`` ids, each
settled in one transaction; ``--batch 1`` sends one ``settle_booking`` per booking instead), then starts the
worker processes (default: two ``--pool solo`` workers; ``--pool prefork`` gives one worker with ``--concurrency
2``) and times the drain from the first settled booking to the last. Prints bookings/s (target ≥ 200), then checks
every booking settled exactly once (one settle posting and one ``BookingSettlement`` each), ``ledger_breaches() ==
[]`` and the audit log (sequenced, then checked as ``verify_audit`` does). Bounded by ``--timeout``.

    .venv/bin/python bench/settlement.py [--bookings 10000] [--batch 50] [--pool solo|prefork] [--timeout 300]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from results import record  # bench/ is on sys.path when run as a script

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.booking import (  # noqa: E402 - after the path is set
    HOST,
    drop_database,
    recreate_database,
    server_environment,
    server_url,
    with_database,
)

BENCH_DB = "gpux_bench_settlement"
BROKER = f"redis://{HOST}:6379/15"
STARTUPS, PROVIDERS = 200, 10


def seed(n_bookings: int) -> list[int]:
    """Providers with one listing each, funded startups, and ``n_bookings`` completed bookings whose cash part is
    held in the ledger; all by bulk statements. Returns the booking ids."""
    import datetime as dt
    from decimal import Decimal

    from django.db import connection, transaction

    from accounts.demo import demo_credit_code
    from accounts.models import Organization
    from ledger.services import account_for, wallet_deposit
    from listings.models import Accelerator, Cluster, DataCenter, Listing, Node

    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    with transaction.atomic():
        chip = Accelerator.objects.first() or Accelerator.objects.create(
            slug="bench-chip", name="Bench chip", vendor="Bench", memory_gb=80, bf16_tflops=Decimal("989.0")
        )
        listings = []
        for p in range(PROVIDERS):
            provider = Organization.objects.create(
                kind="provider",
                name=f"Bench provider {p}",
                city="Shanghai",
                credit_code=demo_credit_code("Shanghai", 800_000 + p),
            )
            dc = DataCenter.objects.create(provider=provider, name=f"Bench DC {p}", city="Shanghai", operator="state")
            cluster = Cluster.objects.create(
                data_center=dc, name=f"bench-{p}", accelerator=chip, gpus_per_node=8, node_count=8
            )
            Node.objects.bulk_create(Node(cluster=cluster, index=i) for i in range(1, 9))
            listings.append(
                Listing.objects.create(
                    cluster=cluster,
                    price_per_gpu_hour=Decimal("12.3456"),
                    available_from=now - dt.timedelta(days=30),
                    available_until=now + dt.timedelta(days=30),
                    status="active",
                )
            )
        startups = []
        for s in range(STARTUPS):
            startup = Organization.objects.create(
                kind="startup",
                name=f"Bench startup {s}",
                city="Shanghai",
                credit_code=demo_credit_code("Shanghai", 810_000 + s),
            )
            wallet_deposit(
                organization_id=startup.pk,
                amount=Decimal("100000000.00"),
                idempotency_key=f"bench:deposit:{startup.pk}",
            )
            account_for("wallet_hold", startup.pk)
            startups.append(startup.pk)
        start = now - dt.timedelta(hours=10 + 48)  # ended past the 48-hour dispute window: due for settlement
        with connection.cursor() as cursor:
            # Bookings: 1 node × 1..8 hours, priced like the service would (8 GPUs × hours × price), completed.
            cursor.execute(
                """
                INSERT INTO orders_booking (created_at, updated_at, buyer_id, listing_id, created_by_id, nodes,
                    start, "end", gpu_hours, price_per_gpu_hour, subtotal, voucher_amount, cash_amount, status,
                    hold_expires_at)
                SELECT now(), now(), (%(startups)s::bigint[])[1 + i %% %(n_startups)s],
                       (%(listings)s::bigint[])[1 + i %% %(n_listings)s], NULL, 1, %(start)s,
                       %(start)s + make_interval(hours => 1 + i %% 8), 8 * (1 + i %% 8), 12.3456,
                       round(8 * (1 + i %% 8) * 12.3456, 2), 0, round(8 * (1 + i %% 8) * 12.3456, 2),
                       'completed', NULL
                FROM generate_series(1, %(n)s) AS i
                """,
                {
                    "startups": startups,
                    "n_startups": len(startups),
                    "listings": [x.pk for x in listings],
                    "n_listings": len(listings),
                    "start": start,
                    "n": n_bookings,
                },
            )
            cursor.execute(
                "INSERT INTO ledger_journaltransaction (kind, reference, idempotency_key, memo, created_at) "
                "SELECT 'hold', 'booking:' || id, 'booking:' || id || ':hold', '', now() FROM orders_booking"
            )
            cursor.execute(
                """
                INSERT INTO ledger_entry (transaction_id, account_id, amount)
                SELECT t.id, a.id, CASE a.kind WHEN 'wallet' THEN -b.cash_amount ELSE b.cash_amount END
                FROM orders_booking b
                JOIN ledger_journaltransaction t ON t.idempotency_key = 'booking:' || b.id || ':hold'
                JOIN ledger_ledgeraccount a ON a.owner_id = b.buyer_id AND a.kind IN ('wallet', 'wallet_hold')
                ORDER BY a.id, t.id
                """
            )
            cursor.execute("SELECT id FROM orders_booking ORDER BY id")
            ids = [row[0] for row in cursor.fetchall()]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return ids


def start_workers(env: dict[str, str], pool: str) -> list[subprocess.Popen]:
    def worker(name: str, concurrency: int) -> subprocess.Popen:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "marketplace",
                "worker",
                "--pool",
                pool,
                "--concurrency",
                str(concurrency),
                "-l",
                "warning",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"{name}@%h",
            ],
            cwd=BASE_DIR,
            env=env,
            start_new_session=True,
        )

    if pool == "solo":
        return [worker("bench-a", 1), worker("bench-b", 1)]
    return [worker("bench", 2)]


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for process in workers:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in workers:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=10_000)
    parser.add_argument(
        "--pool",
        choices=["solo", "prefork"],
        default="solo",
        help="solo: two single-process workers; prefork: one worker with --concurrency 2",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=None,
        help="bookings per message (default: settlement.services.SETTLE_BATCH, as the sweeps enqueue): "
        "1 sends settle_booking(id) each, more sends settle_bookings(ids), one transaction each",
    )
    parser.add_argument("--timeout", type=float, default=300, help="give up draining after this many seconds")
    parser.add_argument("--keep", action="store_true", help=f"keep the {BENCH_DB} database afterwards")
    parser.add_argument("--strict", action="store_true", help="exit 1 when bookings/s misses the 200 target")
    args = parser.parse_args()

    import redis

    url = server_url()
    bench_url = with_database(url, BENCH_DB)
    recreate_database(url, BENCH_DB)
    redis.Redis.from_url(BROKER).flushdb()
    env = {**server_environment(bench_url), "CELERY_BROKER_URL": BROKER, "CELERY_RESULT_BACKEND": BROKER}
    os.environ.update(env)  # this process too: the bench database and broker, production-like settings
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from audit.integrity import audit_log_check
    from audit.sequencer import audit_sequence
    from ledger.models import JournalTransaction
    from ledger.selectors import ledger_breaches
    from orders.models import Booking
    from settlement.models import BookingSettlement
    from settlement.services import SETTLE_BATCH
    from settlement.tasks import send_many, settle_booking, settle_bookings

    args.batch = args.batch or SETTLE_BATCH

    t0 = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    ids = seed(args.bookings)
    print(f"fresh {BENCH_DB}: {len(ids)} completed bookings with holds posted in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    if args.batch > 1:
        chunks = [(ids[i : i + args.batch],) for i in range(0, len(ids), args.batch)]
        sent, task_name = send_many(settle_bookings, chunks), f"settle_bookings({args.batch} ids)"
        expected = len(chunks)
    else:
        sent, task_name, expected = send_many(settle_booking, [(pk,) for pk in ids]), "settle_booking", len(ids)
    print(f"enqueued {sent} {task_name} tasks on {BROKER} in {time.perf_counter() - t0:.1f} s")
    if sent != expected:
        sys.exit("could not enqueue every task")

    def settled() -> int:
        return Booking.objects.filter(status=Booking.Status.SETTLED).count()

    workers = start_workers(env, args.pool)
    started = time.perf_counter()
    first = last = None
    done = 0
    try:
        while time.perf_counter() - started < args.timeout:
            done = settled()
            if done and first is None:
                first = (time.perf_counter(), done)
            if done == len(ids):
                last = time.perf_counter()
                break
            if any(w.poll() is not None for w in workers):
                sys.exit("a worker exited early")
            time.sleep(0.2)
    finally:
        stop_workers(workers)
    done = settled()
    end = last or time.perf_counter()
    if first is None:
        sys.exit("no booking was settled")
    rate = (done - first[1]) / max(end - first[0], 1e-9)
    label = (
        "2 × solo workers" if args.pool == "solo" else "1 prefork worker, concurrency 2"
    ) + f", {args.batch} booking(s) per message"
    print(
        f"{label}: {done}/{len(ids)} settled; drain {end - first[0]:.1f} s after the first settlement "
        f"(workers started {first[0] - started:.1f} s before it)"
    )
    print(f"bookings/s {rate:8.1f}   (target ≥ 200: {'met' if rate >= 200 else 'MISSED'})")
    record(
        "settlement",
        f"settled bookings/s, {len(ids)} bookings, 2 worker processes",
        rate,
        unit="/s",
        target="≥ 200",
        met=rate >= 200,
    )
    settles = JournalTransaction.objects.filter(kind="settle").count()
    records = BookingSettlement.objects.count()
    breaches = ledger_breaches()
    audit_sequence()  # what the beat task does every few seconds: the settled bookings' events into the log
    chain = audit_log_check(first_only=True).failures
    print(
        f"settle transactions {settles}, settlement records {records} (one each per settled booking: "
        f"{'yes' if settles == records == done else 'NO'}); ledger: {breaches or 'consistent'}; "
        f"audit log: {chain or 'intact'}"
    )
    connections.close_all()
    if not args.keep:
        drop_database(url, BENCH_DB)
    redis.Redis.from_url(BROKER).flushdb()
    if breaches or chain or not settles == records == done == len(ids):
        sys.exit("errors during the run (see above)")
    if args.strict and rate < 200:
        sys.exit(1)


if __name__ == "__main__":
    main()

"""Demo supply for ``manage.py seed_demo``: ~40 clusters across the 17 cities, each with an active listing for the
next 60 days at realistic prices. Idempotent (natural keys) and deterministic (seeded random). Runs after
``accounts.demo`` (the provider organizations)."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.models import CITIES, Organization
from listings.catalog import load_catalog
from listings.models import Accelerator, Cluster, DataCenter, Listing, ProvenanceDeclaration
from listings.services import nodes_ensure

CLUSTER_COUNT = 40
WINDOW_DAYS = 60
# slug → (price range ¥ per GPU-hour, weight, typical interconnect)
CHIPS = {
    "h100-sxm": ((15, 25), 5, "NVLink + 400G InfiniBand NDR"),
    "h200": ((22, 30), 2, "NVLink + 400G InfiniBand NDR"),
    "h800": ((14, 20), 3, "NVLink + 400G RoCE"),
    "h20": ((5, 8), 3, "NVLink + 200G RoCE"),
    "a100-80g": ((8, 12), 5, "NVLink + 200G InfiniBand HDR"),
    "a800": ((7, 11), 3, "NVLink + 200G RoCE"),
    "l40s": ((4, 7), 2, "100G RoCE"),
    "rtx-4090": ((2, 4), 2, "25G Ethernet"),
    "rtx-4090d": ((2, 3), 1, "25G Ethernet"),
    "ascend-910b": ((6, 10), 6, "HCCS + 200G RoCE"),
    "ascend-910c": ((12, 16), 2, "HCCS + 400G RoCE"),
    "mlu370": ((2, 4), 2, "MLU-Link + 100G RoCE"),
    "mlu590": ((5, 8), 1, "MLU-Link + 200G RoCE"),
}
REGIONS = {
    "Shanghai": "Yangtze River Delta hub", "Hangzhou": "Yangtze River Delta hub", "Suzhou": "Yangtze River Delta hub",
    "Nanjing": "Yangtze River Delta hub", "Ningbo": "Yangtze River Delta hub", "Wuhu": "Yangtze River Delta hub",
    "Hefei": "Yangtze River Delta hub", "Beijing": "Beijing-Tianjin-Hebei hub", "Tianjin": "Beijing-Tianjin-Hebei hub",
    "Qingdao": "Beijing-Tianjin-Hebei hub", "Shenzhen": "Guangdong-HK-Macao hub", "Guangzhou": "Guangdong-HK-Macao hub",
    "Chengdu": "Chengdu-Chongqing hub", "Chongqing": "Chengdu-Chongqing hub", "Wuhan": "Central China",
    "Xi'an": "Northwest", "Kunming": "Southwest",
}  # fmt: skip


def _price(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randint(low * 100, high * 100)) / 100


def _operator(provider: Organization) -> str:
    state = any("SASAC" in owner for owner in provider.owners)
    return DataCenter.Operator.STATE if state else DataCenter.Operator.PRIVATE


def _plan(rng: random.Random, providers: list[Organization]) -> list[tuple[Organization, str, str]]:
    """(provider, city, chip slug) for each demo cluster; every city gets at least two, Shanghai an Ascend 910B."""
    slugs = list(CHIPS)
    weights = [CHIPS[s][1] for s in slugs]
    plan = []
    for i in range(CLUSTER_COUNT):
        city = CITIES[i % len(CITIES)]
        home = [p for p in providers if p.city == city]
        provider = home[0] if home and i < len(CITIES) else providers[i % len(providers)]
        slug = "ascend-910b" if i == 0 else rng.choices(slugs, weights)[0]
        plan.append((provider, city, slug))
    return plan


@transaction.atomic
def seed(stdout=None) -> dict:
    """Create or update the demo data centres, clusters (with nodes and approved provenance) and active listings."""
    load_catalog(Accelerator)
    providers = list(Organization.objects.filter(kind=Organization.Kind.PROVIDER).order_by("credit_code"))
    if not providers:
        if stdout:
            stdout.write("  listings: no provider organizations (run accounts.demo first); skipped")
        return {}
    rng = random.Random(20260101)
    reviewer = get_user_model().objects.filter(username="sam").first()
    chips = {a.slug: a for a in Accelerator.objects.filter(slug__in=CHIPS)}
    start = timezone.now().astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    counts: dict[str, int] = {}
    for i, (provider, city, slug) in enumerate(_plan(rng, providers), start=1):
        accelerator = chips[slug]
        (low, high), _, interconnect = CHIPS[slug]
        data_center, _ = DataCenter.objects.update_or_create(
            provider=provider,
            name=f"{provider.name.split()[0]} {city} DC",
            defaults={"city": city, "operator": _operator(provider), "region": REGIONS.get(city, "")},
        )
        gpus = 8 if slug not in ("ascend-910c",) else 16
        cluster, _ = Cluster.objects.update_or_create(
            data_center=data_center,
            name=f"{accelerator.name} pod {i:02d}",
            defaults={
                "accelerator": accelerator,
                "gpus_per_node": gpus,
                "node_count": rng.choice([4, 8, 8, 16, 32]),
                "interconnect": interconnect,
            },
        )
        nodes_ensure(cluster)
        if accelerator.export_controlled:
            ProvenanceDeclaration.objects.update_or_create(
                cluster=cluster,
                defaults={
                    "invoice_number": f"INV-2025-{i:05d}",
                    "supplier": "Authorised distributor (demo)",
                    "serial_numbers": [f"SN{i:03d}{n:05d}" for n in range(1, 4)],
                    "import_documents": f"Customs declaration 2025-{i:06d}",
                    "status": ProvenanceDeclaration.Status.APPROVED,
                    "reviewed_by": reviewer,
                    "reviewed_at": start,
                    "review_note": "Demo: documents checked.",
                },
            )
        terms = {
            "price_per_gpu_hour": _price(rng, low, high),
            "available_from": start,
            "available_until": start + dt.timedelta(days=WINDOW_DAYS),
            "min_hours": rng.choice([1, 1, 4, 8]),
            "status": Listing.Status.ACTIVE,
        }
        listing = Listing.objects.filter(cluster=cluster).order_by("pk").first()
        if listing is None:
            Listing.objects.create(cluster=cluster, **terms)
        else:
            Listing.objects.filter(pk=listing.pk).update(**terms)
        counts[city] = counts.get(city, 0) + 1
    if stdout:
        stdout.write(
            f"  listings: {Cluster.objects.count()} clusters in {len(counts)} cities, "
            f"{Listing.objects.filter(status=Listing.Status.ACTIVE).count()} active listings"
        )
    return {}

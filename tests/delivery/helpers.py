"""Helpers of the delivery tests."""

import datetime as dt
from decimal import Decimal

from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.utils import timezone
from rest_framework.test import APIClient

from listings import agent_services
from listings.catalog import load_catalog
from listings.models import Accelerator, Node, ProvenanceDeclaration
from orders.models import Booking, NodeReservation
from tests import factories
from tests.agent.helpers import fixture_text

H100_SERIALS = [
    "1654922049871",
    "1654922051346",
    "1654922049012",
    "1654922050778",
    "1654922048533",
    "1654922051920",
    "1654922050104",
    "1654922049455",
]


def h100():
    """The catalog's H100 (from the data migration; reloaded after a transactional test flushed it)."""
    if not Accelerator.objects.filter(slug="h100-sxm").exists():
        load_catalog(Accelerator)
    return Accelerator.objects.get(slug="h100-sxm")


def h100_cluster(provider, *, node_count=2, serials=None, **kwargs):
    """An H100 cluster of 8-GPU nodes with an approved provenance declaration listing ``serials``."""
    data_center = factories.DataCenterFactory(provider=provider)
    cluster = factories.ClusterFactory(
        data_center=data_center, accelerator=h100(), gpus_per_node=8, node_count=node_count, **kwargs
    )
    ProvenanceDeclaration.objects.create(
        cluster=cluster,
        invoice_number=f"INV-{cluster.pk}",
        supplier="Supplier",
        serial_numbers=list(H100_SERIALS if serials is None else serials),
        import_documents="customs 1",
        status=ProvenanceDeclaration.Status.APPROVED,
    )
    return cluster


def agent_token(cluster, name="node token") -> str:
    _, raw = agent_services.agent_token_create(cluster=cluster, name=name)
    return raw


def agent_client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Agent {raw}")
    return client


def h100_inventory(hostname="gpu-node-01", fixture="nvidia_smi_8x_h100_80gb_hbm3.csv") -> dict:
    """The body the agent posts for the recorded 8×H100 nvidia-smi output."""
    from gpux_agent.inventory import NodeInventory, parse_nvidia_smi

    inventory = NodeInventory(hostname, "nvidia", parse_nvidia_smi(fixture_text(fixture)))
    return {**inventory.to_dict(), "agent_version": "0.1.0"}


def heartbeat(hostname="gpu-node-01", sequence=1, health="ok", gpus=8) -> dict:
    return {
        "hostname": hostname,
        "sent_at": timezone.now().isoformat(),
        "sequence": sequence,
        "gpus": [{"index": i, "health": health, "utilisation_pct": 90, "temperature_c": 60} for i in range(gpus)],
    }


def booking_on(cluster, buyer, *, start, end, nodes=(1,), status=Booking.Status.ACTIVE, listing=None) -> Booking:
    """A booking of ``cluster``'s node numbers ``nodes`` for ``[start, end)``, written directly (no money moves)."""
    listing = listing or factories.ListingFactory(
        cluster=cluster, available_from=start - dt.timedelta(days=1), available_until=end + dt.timedelta(days=1)
    )
    hours = int((end - start).total_seconds() // 3600)
    subtotal = Decimal(len(nodes) * cluster.gpus_per_node * hours) * listing.price_per_gpu_hour
    booking = Booking.objects.create(
        buyer=buyer,
        listing=listing,
        nodes=len(nodes),
        start=start,
        end=end,
        gpu_hours=len(nodes) * cluster.gpus_per_node * hours,
        price_per_gpu_hour=listing.price_per_gpu_hour,
        subtotal=subtotal.quantize(Decimal("0.01")),
        cash_amount=subtotal.quantize(Decimal("0.01")),
        status=status,
    )
    for index in nodes:
        NodeReservation.objects.create(
            booking=booking,
            node=Node.objects.get(cluster=cluster, index=index),
            period=DateTimeTZRange(start, end, "[)"),
        )
    return booking


def hour(offset_hours: int = 0) -> dt.datetime:
    """The start of the current UTC hour, shifted by ``offset_hours``."""
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    return now + dt.timedelta(hours=offset_hours)

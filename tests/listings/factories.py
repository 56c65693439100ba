"""Listings test helpers: provider-owned clusters and listings, and reservations written directly (the orders
booking service is not needed to occupy nodes)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from psycopg.types.range import Range

from listings.models import Listing, ProvenanceDeclaration
from orders.models import Booking, NodeReservation
from tests import factories


def listing_of(
    provider,
    *,
    accelerator=None,
    city=None,
    operator="state",
    nodes=4,
    gpus_per_node=8,
    price="10.0000",
    status=Listing.Status.ACTIVE,
    start=None,
    days=30,
    min_hours=1,
    provenance_status=None,
) -> Listing:
    """A listing of a new cluster in a new data centre of ``provider``; ``provenance_status`` adds a declaration."""
    data_center = factories.DataCenterFactory(provider=provider, city=city or provider.city, operator=operator)
    cluster_kwargs = {"data_center": data_center, "node_count": nodes, "gpus_per_node": gpus_per_node}
    if accelerator is not None:
        cluster_kwargs["accelerator"] = accelerator
    cluster = factories.ClusterFactory(**cluster_kwargs)
    if provenance_status:
        ProvenanceDeclaration.objects.create(
            cluster=cluster,
            invoice_number="INV-1",
            supplier="Distributor",
            serial_numbers=["SN1", "SN2"],
            import_documents="Customs 123",
            status=provenance_status,
        )
    start = start or factories.next_hour(1)
    return factories.ListingFactory(
        cluster=cluster,
        price_per_gpu_hour=Decimal(price),
        status=status,
        available_from=start,
        available_until=start + dt.timedelta(days=days),
        min_hours=min_hours,
    )


def reserve(
    listing: Listing, node_indexes, start: dt.datetime, end: dt.datetime, *, buyer=None, active: bool = True
) -> Booking:
    """A booking of ``listing`` holding nodes ``node_indexes`` for ``[start, end)`` (reservations active or not)."""
    buyer = buyer or factories.StartupFactory()
    hours = int((end - start).total_seconds() // 3600)
    gpu_hours = hours * len(node_indexes) * listing.cluster.gpus_per_node
    subtotal = (listing.price_per_gpu_hour * gpu_hours).quantize(Decimal("0.01"))
    booking = Booking.objects.create(
        buyer=buyer,
        listing=listing,
        nodes=len(node_indexes),
        start=start,
        end=end,
        gpu_hours=gpu_hours,
        price_per_gpu_hour=listing.price_per_gpu_hour,
        subtotal=subtotal,
        cash_amount=subtotal,
        status=Booking.Status.CONFIRMED if active else Booking.Status.CANCELLED,
    )
    nodes = listing.cluster.nodes.filter(index__in=node_indexes)
    NodeReservation.objects.bulk_create(
        NodeReservation(booking=booking, node=node, period=Range(start, end, "[)"), active=active) for node in nodes
    )
    return booking

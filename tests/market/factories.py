"""Raw market rows for the price index tests, written directly: listings offered on a past day, bookings made on
it (with their node reservations), bid fills. The index is then recomputed from these rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.utils import timezone

from listings.models import Listing
from orders.models import Bid, Booking, NodeReservation
from tests import factories


def at(day: dt.date, hour: int = 0) -> dt.datetime:
    """``hour`` o'clock UTC of ``day`` (hours past 23 run into the next days, negative ones into the previous)."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC) + dt.timedelta(hours=hour)


def cluster(*, accelerator, city: str, nodes: int = 4, gpus: int = 8):
    return factories.ClusterFactory(
        accelerator=accelerator, node_count=nodes, gpus_per_node=gpus, data_center__city=city
    )


def listing(*, cluster, price: str, start: dt.datetime, end: dt.datetime, status=Listing.Status.ACTIVE) -> Listing:
    return factories.ListingFactory(
        cluster=cluster, price_per_gpu_hour=Decimal(price), available_from=start, available_until=end, status=status
    )


def booking(
    *,
    listing: Listing,
    made: dt.datetime,
    start: dt.datetime,
    hours: int,
    nodes: int = 1,
    first_node: int = 1,
    price: str | None = None,
    status=Booking.Status.CONFIRMED,
    filled_bid: bool = False,
) -> Booking:
    """A booking of ``nodes`` nodes (from node ``first_node``) made at ``made``, with its reservations (inactive
    for cancelled and expired bookings, as the services leave them); with ``filled_bid`` the matched bid too."""
    cluster = listing.cluster
    price_value = Decimal(price) if price is not None else listing.price_per_gpu_hour
    gpu_hours = cluster.gpus_per_node * nodes * hours
    subtotal = (price_value * gpu_hours).quantize(Decimal("0.01"))
    end = start + dt.timedelta(hours=hours)
    row = Booking.objects.create(
        buyer=factories.StartupFactory(),
        listing=listing,
        nodes=nodes,
        start=start,
        end=end,
        gpu_hours=gpu_hours,
        price_per_gpu_hour=price_value,
        subtotal=subtotal,
        cash_amount=subtotal,
        status=status,
    )
    Booking.objects.filter(pk=row.pk).update(created_at=made)
    live = status not in (Booking.Status.CANCELLED, Booking.Status.EXPIRED)
    for node in cluster.nodes.filter(index__gte=first_node).order_by("index")[:nodes]:
        NodeReservation.objects.create(booking=row, node=node, period=DateTimeTZRange(start, end, "[)"), active=live)
    if filled_bid:
        bid = Bid.objects.create(
            buyer=row.buyer,
            nodes=nodes,
            duration_hours=hours,
            earliest_start=start,
            latest_end=end,
            max_price_per_gpu_hour=price_value,
            max_gpus_per_node=cluster.gpus_per_node,
            expires_at=timezone.now() + dt.timedelta(days=1),
            status=Bid.Status.MATCHED,
            booking=row,
        )
        bid.accelerators.add(cluster.accelerator)
    row.refresh_from_db()
    return row

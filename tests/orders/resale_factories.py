"""Helpers for resale tests: a confirmed booking paid partly with a voucher, and ready-made resale arguments."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from orders import services
from tests.factories import AcceleratorFactory, ClusterFactory, ListingFactory, StartupFactory, next_hour
from tests.orders.factories import fund
from tests.vouchers.factories import issued_voucher


def domestic_listing(*, node_count: int = 4, price: str = "10.0000"):
    """A listing of a domestic chip (30 % voucher tier), 8 GPUs per node."""
    chip = AcceleratorFactory(domestic=True)
    return ListingFactory(
        cluster=ClusterFactory(accelerator=chip, node_count=node_count, gpus_per_node=8),
        price_per_gpu_hour=Decimal(price),
    )


def voucher_booking(*, listing=None, nodes: int = 4, start_in_hours: int = 4, hours: int = 10, voucher=True):
    """A confirmed booking of ``nodes`` nodes for ``hours`` hours, 30 % paid by a voucher of its buyer (when
    ``voucher``). Returns (booking, voucher or None)."""
    listing = listing or domestic_listing(node_count=nodes)
    seller = StartupFactory()
    fund(seller, "1000000.00")
    issued = issued_voucher(holder=seller, face_value="1000000.00") if voucher else None
    start = next_hour(start_in_hours)
    booking = services.booking_create(
        buyer=seller,
        listing_id=listing.pk,
        nodes=nodes,
        start=start,
        end=start + dt.timedelta(hours=hours),
        vouchers=[issued.pk] if issued else (),
        confirm=True,
    )
    return booking, issued


def hours_after(moment: dt.datetime, hours: int) -> dt.datetime:
    return moment + dt.timedelta(hours=hours)

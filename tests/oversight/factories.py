"""Rows for audit tests, written directly (no ledger): vouchers and voucher-paid bookings in any shape, including
past months, which the booking services would refuse. Report tests that compare with the ledger use the services."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from orders.models import Booking
from tests import factories
from tests.vouchers.factories import VoucherProgramFactory
from vouchers.models import Redemption, Voucher


def voucher(*, holder, program=None, face_value="100000.00", issued_at=None, **program_kwargs) -> Voucher:
    issued_at = issued_at or timezone.now()
    return Voucher.objects.create(
        program=program or VoucherProgramFactory(**program_kwargs),
        holder=holder,
        face_value=Decimal(face_value),
        issued_at=issued_at,
        expires_at=issued_at + dt.timedelta(days=365),
    )


def booking(
    *,
    buyer,
    listing=None,
    start=None,
    hours=1,
    price=None,
    voucher_part="0.00",
    vouchers=(),
    status=Booking.Status.CONFIRMED,
) -> Booking:
    """A booking of one node; ``voucher_part`` is split evenly over ``vouchers`` as held redemptions."""
    listing = listing or factories.ListingFactory()
    start = start or factories.next_hour(2)
    price = Decimal(price if price is not None else listing.price_per_gpu_hour)
    gpu_hours = listing.cluster.gpus_per_node * hours
    subtotal = (price * gpu_hours).quantize(Decimal("0.01"))
    voucher_part = Decimal(voucher_part)
    row = Booking.objects.create(
        buyer=buyer,
        listing=listing,
        nodes=1,
        start=start,
        end=start + dt.timedelta(hours=hours),
        gpu_hours=gpu_hours,
        price_per_gpu_hour=price,
        subtotal=subtotal,
        voucher_amount=voucher_part,
        cash_amount=subtotal - voucher_part,
        status=status,
    )
    for v in vouchers:
        Redemption.objects.create(voucher=v, booking=row, amount=voucher_part / len(vouchers), bound_by="test")
    return row

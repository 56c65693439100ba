"""Bookings in any lifecycle status with their payment held in the ledger, built without the booking service
(whose times must be in the future), for settlement and sweep tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from ledger.models import LedgerAccount
from ledger.services import wallet_hold
from orders.disputes import DISPUTE_WINDOW
from orders.models import Booking
from tests import factories
from tests.orders.factories import fund
from vouchers import services as voucher_services

WINDOW_HOURS = int(DISPUTE_WINDOW.total_seconds()) // 3600


def booking_in(
    status: str, *, buyer=None, listing=None, subtotal="1000.00", vouchers=(), start=None, hours=1, hold_expires_at=None
) -> Booking:
    """A booking in ``status`` whose cash part sits in the buyer's wallet hold and whose voucher parts
    (``vouchers``: Voucher objects of the buyer) are held as redemptions. By default it ended an hour ago, or, when
    ``completed`` or ``settled``, an hour after its dispute window closed (``DISPUTE_WINDOW`` + 1 h ago): due for
    settlement now. Pass ``start`` for a booking still in its window."""
    buyer = buyer or factories.StartupFactory()
    listing = listing or factories.ListingFactory()
    if start is None:
        ago = 1 + hours + (WINDOW_HOURS if status in (Booking.Status.COMPLETED, Booking.Status.SETTLED) else 0)
        start = factories.next_hour(-ago)
    subtotal = Decimal(subtotal)
    with transaction.atomic():
        booking = Booking.objects.create(
            buyer=buyer,
            listing=listing,
            nodes=1,
            start=start,
            end=start + dt.timedelta(hours=hours),
            gpu_hours=listing.cluster.gpus_per_node * hours,
            price_per_gpu_hour=listing.price_per_gpu_hour,
            subtotal=subtotal,
            voucher_amount=Decimal("0.00"),
            cash_amount=subtotal,
            status=status,
            hold_expires_at=hold_expires_at,
        )
        if vouchers:
            parts = voucher_services.vouchers_hold_for_booking(booking=booking, voucher_ids=[v.pk for v in vouchers])
            voucher_amount = sum((p.amount for p in parts), Decimal("0.00"))
            Booking.objects.filter(pk=booking.pk).update(
                voucher_amount=voucher_amount, cash_amount=subtotal - voucher_amount
            )
            booking.refresh_from_db()
        fund(buyer, booking.cash_amount)
        wallet_hold(
            organization_id=buyer.pk,
            amount=booking.cash_amount,
            idempotency_key=f"booking:{booking.pk}:hold",
            reference=f"booking:{booking.pk}",
        )
    return booking


def completed_booking(**kwargs) -> Booking:
    return booking_in(Booking.Status.COMPLETED, **kwargs)


def held_expired_booking(**kwargs) -> Booking:
    return booking_in(
        Booking.Status.HELD,
        start=factories.next_hour(3),
        hold_expires_at=timezone.now() - dt.timedelta(minutes=1),
        **kwargs,
    )


def balance(kind, owner_id=None) -> Decimal:
    """The balance of the account ``(kind, owner_id)``; zero when it does not exist yet."""
    account = LedgerAccount.objects.filter(kind=kind, owner_id=owner_id).first()
    return account.balance if account else Decimal("0.00")


def provider_of(booking) -> int:
    return booking.listing.cluster.data_center.provider_id

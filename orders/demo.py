"""Demo wallets and bookings for ``manage.py seed_demo`` (idempotent: fixed ledger keys, bookings checked first)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.models import Organization
from ledger.services import wallet_deposit
from listings.models import Listing
from marketplace.core.exceptions import ApplicationError
from orders import services
from orders.models import Booking
from vouchers.models import Voucher

DEMO_DEPOSIT = Decimal("500000.00")
DEMO_NODES, DEMO_HOURS = 2, 24  # a day on two nodes: a few thousand yuan, the voucher part in the thousands


@transaction.atomic
def seed(stdout=None) -> dict:
    """Fund every demo startup's wallet with a recorded bank transfer, and give each one without an upcoming
    booking a confirmed one, 2–12 days ahead."""
    startups = list(Organization.objects.filter(kind=Organization.Kind.STARTUP).order_by("pk"))
    for startup in startups:
        wallet_deposit(
            organization_id=startup.pk,
            amount=DEMO_DEPOSIT,
            idempotency_key=f"demo:deposit:{startup.pk}",
            reference=f"DEMO-TRANSFER-{startup.pk:04d}",
        )
    listings = list(
        Listing.objects.filter(status=Listing.Status.ACTIVE)
        .select_related("cluster__data_center")
        .order_by("price_per_gpu_hour", "pk")
    )
    showcase_ids = set(
        Organization.objects.filter(kind=Organization.Kind.PROVIDER, memberships__isnull=False).values_list(
            "pk", flat=True
        )
    )
    shown = [lst for lst in listings if lst.cluster.data_center.provider_id in showcase_ids]
    booked = 0
    if listings:
        day_start = timezone.now().astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        for offset, startup in enumerate(startups):
            if Booking.objects.filter(buyer=startup, start__gt=timezone.now()).exists():
                continue  # it has its upcoming booking (the clock may be set back: see seed_demo)
            vouchers = list(
                Voucher.objects.filter(holder=startup, status=Voucher.Status.ACTIVE).select_related("program")
            )
            # A startup with a voucher books in its program's city and pays with it, so the demo shows the split.
            local = [lst for lst in listings if vouchers and lst.cluster.data_center.city == vouchers[0].program.city]
            # Every other one books from a provider with a demo login, so its dashboard and payouts show bookings.
            listing = (
                local[0]
                if local
                else (shown[offset % len(shown)] if shown and offset % 2 else listings[(offset * 7) % len(listings)])
            )
            # A day apart from tomorrow on: a history booking (see seed_demo) then ends well over the 48-hour
            # dispute window before today, so the replay has settled it (settlement waits for that window).
            start = max(listing.available_from, day_start + dt.timedelta(days=1 + offset))
            end = start + dt.timedelta(hours=max(listing.min_hours, DEMO_HOURS))
            try:
                with transaction.atomic():
                    services.booking_create(
                        buyer=startup,
                        listing_id=listing.pk,
                        nodes=DEMO_NODES,
                        start=start,
                        end=end,
                        vouchers=[v.pk for v in vouchers] if local else [],
                        confirm=True,
                    )
            except ApplicationError:  # the voucher's rules refuse this listing: book it in cash
                services.booking_create(
                    buyer=startup, listing_id=listing.pk, nodes=DEMO_NODES, start=start, end=end, confirm=True
                )
            booked += 1
    if stdout:
        stdout.write(f"  orders: {len(startups)} wallets funded with {DEMO_DEPOSIT} each, {booked} bookings made")
    return {}

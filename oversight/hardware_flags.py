"""The hardware-mismatch anomaly rule (issue 20): a node reported hardware other than its cluster declared.

``listings`` sends ``listings.signals.inventory_mismatched`` once such an inventory report commits; ``oversight``
(``oversight.tasks.on_inventory_mismatched``) calls ``flag_hardware_mismatch``. Flags are about voucher spend: one
per voucher-paid booking on that cluster that is not dead yet (held, confirmed, active, completed, settled), in the
unique (kind, booking, voucher) slot, so a repeated signal adds nothing. New voucher bookings cannot follow: a
mismatch blocks the cluster's vouchers (``listings.agent_selectors``).
"""

from __future__ import annotations

from django.db import transaction

from orders.models import Booking
from oversight.models import AnomalyFlag
from vouchers.models import Redemption

LIVE = (
    Booking.Status.HELD,
    Booking.Status.CONFIRMED,
    Booking.Status.ACTIVE,
    Booking.Status.COMPLETED,
    Booking.Status.SETTLED,
)


@transaction.atomic
def flag_hardware_mismatch(*, cluster_id: int, node_id: int, mismatches: list) -> int:
    """Flag each live voucher-paid booking of cluster ``cluster_id``; returns how many flags were added."""
    bookings = list(
        Booking.objects.filter(listing__cluster_id=cluster_id, voucher_amount__gt=0, status__in=LIVE)
        .order_by("pk")
        .values_list("pk", "buyer_id")
    )
    if not bookings:
        return 0
    programs: dict[int, int] = {}
    for booking_id, program_id in (
        Redemption.objects.filter(booking_id__in=[pk for pk, _ in bookings])
        .order_by("booking_id", "voucher__program_id")
        .values_list("booking_id", "voucher__program_id")
    ):
        programs.setdefault(booking_id, program_id)
    existing = set(
        AnomalyFlag.objects.filter(
            kind=AnomalyFlag.Kind.HARDWARE_MISMATCH, booking_id__in=[pk for pk, _ in bookings], voucher__isnull=True
        ).values_list("booking_id", flat=True)
    )
    flags = [
        AnomalyFlag(
            kind=AnomalyFlag.Kind.HARDWARE_MISMATCH,
            booking_id=booking_id,
            organization_id=buyer_id,
            program_id=programs.get(booking_id),
            details={"cluster": cluster_id, "node": node_id, "mismatches": mismatches},
        )
        for booking_id, buyer_id in bookings
        if booking_id not in existing
    ]
    AnomalyFlag.objects.bulk_create(flags, ignore_conflicts=True)
    return len(flags)

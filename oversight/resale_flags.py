"""The resale anomaly rule (issue 21): voucher-paid time resold above the price paid for it.

``orders`` sends ``orders.signals.resale_above_price`` after such a purchase commits; ``oversight.tasks``
receives it and calls ``flag_resale_above_price``. One flag per resale buyer's booking (the unique
(kind, booking, voucher) constraint, ``INSERT … ON CONFLICT DO NOTHING``), so a repeated signal adds nothing.
"""

from __future__ import annotations

from django.db import transaction

from orders.models import ResaleSale
from oversight.models import AnomalyFlag
from vouchers.models import Redemption


@transaction.atomic
def flag_resale_above_price(*, sale_id: int) -> int:
    """Flag resale ``sale_id`` when the booking first paid with vouchers (the origin of its chain of resales) was
    priced below the resale price. Returns 1 when a flag was added, 0 otherwise (unknown sale, not above the price,
    no voucher part, or flagged before)."""
    sale = ResaleSale.objects.select_related("seller_booking", "booking").filter(pk=sale_id).first()
    if sale is None:
        return 0
    origin = sale.seller_booking
    seen = set()
    while origin.pk not in seen:
        seen.add(origin.pk)
        parent = ResaleSale.objects.select_related("seller_booking").filter(booking_id=origin.pk).first()
        if parent is None:
            break
        origin = parent.seller_booking
    if not origin.voucher_amount or sale.price_per_gpu_hour <= origin.price_per_gpu_hour:
        return 0
    program_id = (
        Redemption.objects.filter(booking_id=origin.pk)
        .order_by("voucher__program_id")
        .values_list("voucher__program_id", flat=True)
        .first()
    )
    flag = AnomalyFlag(
        kind=AnomalyFlag.Kind.RESALE_ABOVE_PRICE,
        booking_id=sale.booking_id,
        organization_id=sale.seller_booking.buyer_id,
        program_id=program_id,
        details={
            "sale": sale.pk,
            "ask": sale.ask_id,
            "origin_booking": origin.pk,
            "origin_price_per_gpu_hour": str(origin.price_per_gpu_hour),
            "origin_voucher_amount": str(origin.voucher_amount),
            "resale_price_per_gpu_hour": str(sale.price_per_gpu_hour),
            "seller": sale.seller_booking.buyer_id,
            "buyer": sale.buyer_id,
        },
    )
    if AnomalyFlag.objects.filter(kind=flag.kind, booking_id=flag.booking_id, voucher__isnull=True).exists():
        return 0
    AnomalyFlag.objects.bulk_create([flag], ignore_conflicts=True)
    return 1

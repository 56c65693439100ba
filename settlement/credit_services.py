"""Service credits at settlement (issue 20): what a completed booking credits back to its buyer for node-hours it
did not deliver beyond its listing's SLA, plus what staff granted on a dispute.

The SLA credit. A listing promises ``sla_percent`` (default 99 %) availability. A booking's reserved node-hours
``R`` (nodes × hours) may lose ``R × (100 - sla) / 100`` node-hours to incidents without a credit (the allowance);
the incident node-hours ``I`` beyond it (``orders.handovers.booking_delivery``: the union per node of the counted
incidents) are credited pro rata to the price: ``credit = subtotal × max(0, I - allowance) / R``, rounded half-up
to the fen. A 2-hour outage of one node of a 24-hour booking at 99 %: allowance 0.24 h, 1.76 h credited,
``subtotal × 1.76 / 24``.

A dispute resolved with a credit adds its amount; the total is capped at the subtotal.

How it is paid: credit BEFORE capture, in the settlement's own transaction (``settlement.services``), rather than
settling in full and posting a reversal afterwards. A settled booking's money is then never taken back from a
provider payable that may already be paid out, and the city's claim is written once, at its final amount. The
credit is split pro rata to how the booking was paid: the voucher share ``credit × voucher_amount / subtotal``
and the cash share (the rest). Per booking, one ledger posting of kind ``service_credit`` with the key
``booking:{id}:service_credit``: wallet_hold(-cash share) → wallet(+), voucher_hold(-voucher share) → voucher(+)
(or → the program budget once the voucher expired or was revoked; ``vouchers.services.redemptions_capture_many``).
What settlement then captures, posts and claims is what is left: the voucher parts less their credit are captured
to the provider, the cash hold less its credit is settled, the platform fee is taken on the subtotal less the
credit, the provider is owed ``subtotal - credit - fee`` and the city's claim is the voucher money of the hours
paid for (its voucher part less the voucher share of the credit). One ``ServiceCredit`` row per booking (unique)
and one ``settlement.service_credit`` audit event record it. Exactly once, like the rest of settlement: the
booking row lock, ``completed → settled``, the unique posting key and the unique row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from marketplace.core.money import ZERO, to_amount
from orders.handovers import booking_delivery
from orders.models import Booking, BookingDispute, DeliveryIncident

HOURS = Decimal("0.01")


@dataclass(frozen=True)
class CreditPlan:
    """What one booking credits at settlement; ``voucher_share + cash_share == amount``."""

    booking_id: int
    sla_percent: Decimal
    reserved_node_hours: Decimal
    incident_node_hours: Decimal
    credited_node_hours: Decimal
    sla_amount: Decimal
    dispute_amount: Decimal
    amount: Decimal
    voucher_share: Decimal
    cash_share: Decimal


def sla_credited_hours(*, reserved: Decimal, incident: Decimal, sla_percent: Decimal) -> Decimal:
    """Incident node-hours beyond the SLA allowance ``reserved × (100 - sla_percent) / 100`` (never negative)."""
    allowance = (Decimal(reserved) * (Decimal(100) - Decimal(sla_percent)) / Decimal(100)).quantize(HOURS)
    return max(ZERO, Decimal(incident) - allowance).quantize(HOURS)


def credit_split(*, amount: Decimal, subtotal: Decimal, voucher_amount: Decimal) -> tuple[Decimal, Decimal]:
    """``(voucher share, cash share)`` of a credit of ``amount``, pro rata to how the subtotal was paid."""
    if amount <= ZERO or subtotal <= ZERO:
        return ZERO, ZERO
    voucher_share = min(to_amount(amount * voucher_amount / subtotal), voucher_amount)
    return voucher_share, amount - voucher_share


def credit_plans(bookings: list[Booking], *, now: dt.datetime | None = None) -> dict[int, CreditPlan]:
    """``{booking id: plan}`` for the bookings among ``bookings`` (locked by the caller) that credit something.
    Two queries for the whole batch find the bookings with counted incidents or a credited dispute; only those
    have their delivery computed. Call after taking the bookings' row locks: an incident report and a dispute
    take the same lock, so what is read here is final for these bookings."""
    ids = [b.pk for b in bookings]
    with_incidents = set(
        DeliveryIncident.objects.filter(booking_id__in=ids, status__in=DeliveryIncident.COUNTED)
        .values_list("booking_id", flat=True)
        .distinct()
    )
    disputes = dict(
        BookingDispute.objects.filter(booking_id__in=ids, status=BookingDispute.Status.CREDITED).values_list(
            "booking_id", "credit_amount"
        )
    )
    due = [b for b in bookings if b.pk in with_incidents or b.pk in disputes]
    if not due:
        return {}
    sla = dict(Booking.objects.filter(pk__in=[b.pk for b in due]).values_list("pk", "listing__sla_percent"))
    plans = {}
    for booking in due:
        delivery = booking_delivery(booking, now=now)
        reserved, incident = delivery.reserved_node_hours, delivery.incident_node_hours
        credited = sla_credited_hours(reserved=reserved, incident=incident, sla_percent=sla[booking.pk])
        sla_amount = to_amount(booking.subtotal * credited / reserved) if reserved > ZERO else ZERO
        dispute_amount = disputes.get(booking.pk, ZERO)
        amount = min(booking.subtotal, sla_amount + dispute_amount)
        if amount <= ZERO:
            continue
        voucher_share, cash_share = credit_split(
            amount=amount, subtotal=booking.subtotal, voucher_amount=booking.voucher_amount
        )
        plans[booking.pk] = CreditPlan(
            booking_id=booking.pk,
            sla_percent=sla[booking.pk],
            reserved_node_hours=reserved,
            incident_node_hours=incident,
            credited_node_hours=credited,
            sla_amount=sla_amount,
            dispute_amount=dispute_amount,
            amount=amount,
            voucher_share=voucher_share,
            cash_share=cash_share,
        )
    return plans

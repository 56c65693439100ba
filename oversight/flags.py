"""Anomaly flags over voucher spend: the rules, ``flags_compute`` / ``flags_for_booking`` and ``flag_review``.

Reporting layer: unlike the audit core (models, services, selectors), this module reads the vouchers, orders,
listings and accounts models. Every rule looks only at *live voucher spend*: bookings with a voucher part that
were not cancelled or expired. Each rule returns unsaved ``AnomalyFlag`` rows; ``_insert`` writes them with
``INSERT … ON CONFLICT DO NOTHING`` against the (kind, booking, voucher) unique constraint, so running the rules
again (the periodic task, the settlement hook, a retry) never duplicates a flag nor touches a reviewed one.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.db.models import DecimalField, ExpressionWrapper, F, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext

from accounts.selectors import is_auditor
from audit.services import audit_record
from market import selectors as market_selectors
from marketplace.core.exceptions import ApplicationError, Conflict, NotFound
from orders.models import Booking
from oversight import sql
from oversight.models import AnomalyFlag
from vouchers.models import Redemption, Voucher

# A booking priced above this multiple of the price index (its accelerator and city, the day it was made; where the
# index has no fixing, the market median of the same accelerator and month) is flagged.
PRICE_MEDIAN_MULTIPLE = Decimal("1.5")
# A voucher of which at least this share of the face value was spent within VELOCITY_WINDOW of issue is flagged.
VELOCITY_SHARE = Decimal("0.90")
VELOCITY_WINDOW = dt.timedelta(hours=48)

LIVE_REDEMPTION = (Redemption.Status.HELD, Redemption.Status.CAPTURED)
DEAD_BOOKING = (Booking.Status.CANCELLED, Booking.Status.EXPIRED)
FlagKind = AnomalyFlag.Kind


def voucher_bookings(*, since: dt.datetime | None = None, booking_ids=None) -> QuerySet[Booking]:
    """Bookings with live voucher spend, created at or after ``since`` and/or among ``booking_ids``."""
    qs = Booking.objects.filter(voucher_amount__gt=0).exclude(status__in=DEAD_BOOKING)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if booking_ids is not None:
        qs = qs.filter(pk__in=list(booking_ids))
    return qs


def _program_by_booking(booking_ids: list[int]) -> dict[int, int]:
    """Each booking's voucher program (the lowest program id when it stacks vouchers of several)."""
    rows = (
        Redemption.objects.filter(booking_id__in=booking_ids, status__in=LIVE_REDEMPTION)
        .values_list("booking_id", "voucher__program_id")
        .order_by("booking_id", "voucher__program_id")
    )
    found: dict[int, int] = {}
    for booking_id, program_id in rows:
        found.setdefault(booking_id, program_id)
    return found


def _booking_flags(kind: str, bookings: list[Booking], details: dict[int, dict]) -> list[AnomalyFlag]:
    programs = _program_by_booking([b.pk for b in bookings])
    return [
        AnomalyFlag(
            kind=kind, booking_id=b.pk, organization_id=b.buyer_id, program_id=programs.get(b.pk), details=details[b.pk]
        )
        for b in bookings
    ]


# --- rules ---------------------------------------------------------------------------------------------------


def rule_related_party(bookings: QuerySet[Booking]) -> list[AnomalyFlag]:
    """Buyer and provider share an owner or legal representative (``Organization.related_party_names``)."""
    hits, details = [], {}
    for booking in bookings.select_related("buyer", "listing__cluster__data_center__provider"):
        provider = booking.listing.cluster.data_center.provider
        shared = booking.buyer.related_party_names() & provider.related_party_names()
        if shared:
            hits.append(booking)
            details[booking.pk] = {
                "provider": provider.pk,
                "shared_names": sorted(shared),
                "voucher_amount": str(booking.voucher_amount),
            }
    return _booking_flags(FlagKind.RELATED_PARTY, hits, details)


def rule_price_above_median(bookings: QuerySet[Booking]) -> list[AnomalyFlag]:
    """Price per GPU-hour above ``PRICE_MEDIAN_MULTIPLE`` × the price index: the trimmed ask mean of the fixing of
    the booking's accelerator and city on the day it was made (``market.selectors.reference_fixings``); where the
    index has no such fixing, × the market median of live bookings of that accelerator and month."""
    rows = list(
        bookings.values_list("pk", "price_per_gpu_hour", "listing__accelerator_id", "listing__city", "created_at")
    )
    if not rows:
        return []
    fixings = market_selectors.reference_fixings(
        [(pk, accelerator, city, made.astimezone(dt.UTC).date()) for pk, _, accelerator, city, made in rows]
    )
    details = {
        pk: {
            "price_per_gpu_hour": str(price),
            "index_price": str(fixings[pk].ask_mean),
            "index_day": fixings[pk].day.isoformat(),
            "index_asks": fixings[pk].asks,
            "city": fixings[pk].city,
            "multiple": str(PRICE_MEDIAN_MULTIPLE),
        }
        for pk, price, *_ in rows
        if pk in fixings and price > fixings[pk].ask_mean * PRICE_MEDIAN_MULTIPLE
    }
    ids = [pk for pk, *_ in rows if pk not in fixings]  # the fallback: the market median
    found = (
        sql.prices_above_median(booking_ids=ids, dead_statuses=list(DEAD_BOOKING), multiple=PRICE_MEDIAN_MULTIPLE)
        if ids
        else []
    )
    details |= {
        pk: {
            "price_per_gpu_hour": str(price),
            "market_median": str(median),
            "market_bookings": n,
            "month": month,
            "multiple": str(PRICE_MEDIAN_MULTIPLE),
        }
        for pk, price, median, n, month in found
    }
    hits = list(Booking.objects.filter(pk__in=details).order_by("pk"))
    return _booking_flags(FlagKind.PRICE_ABOVE_MEDIAN, hits, details)


def rule_spend_velocity(voucher_ids) -> list[AnomalyFlag]:
    """Vouchers of which ≥ ``VELOCITY_SHARE`` of the face value went to live redemptions within
    ``VELOCITY_WINDOW`` of issue. One flag per voucher (no booking)."""
    early = Sum(
        "redemptions__amount",
        filter=Q(
            redemptions__status__in=LIVE_REDEMPTION, redemptions__created_at__lte=F("issued_at") + VELOCITY_WINDOW
        ),
    )
    threshold = ExpressionWrapper(F("face_value") * VELOCITY_SHARE, output_field=DecimalField())
    vouchers = (
        Voucher.objects.filter(pk__in=list(voucher_ids))
        .annotate(early=early)
        .filter(early__gte=threshold)
        .order_by("pk")
    )
    return [
        AnomalyFlag(
            kind=FlagKind.SPEND_VELOCITY,
            voucher_id=v.pk,
            program_id=v.program_id,
            organization_id=v.holder_id,
            details={
                "face_value": str(v.face_value),
                "spent_within_window": str(v.early),
                "window_hours": int(VELOCITY_WINDOW.total_seconds() // 3600),
                "share": str(VELOCITY_SHARE),
            },
        )
        for v in vouchers
    ]


def rule_split_booking(bookings: QuerySet[Booking]) -> list[AnomalyFlag]:
    """Adjacent bookings (same buyer and cluster, one ends when the next starts) whose voucher parts from one
    capped program add up above its per-booking cap: both bookings are flagged, each naming the other."""
    ids = list(bookings.values_list("pk", flat=True))
    if not ids:
        return []
    rows = sql.split_pairs_over_cap(
        booking_ids=ids, live_statuses=list(LIVE_REDEMPTION), dead_statuses=list(DEAD_BOOKING)
    )
    flags: dict[int, AnomalyFlag] = {}
    for first, second, program_id, cap, first_amount, second_amount in rows:
        for booking_id, other in ((first, second), (second, first)):
            flag = flags.get(booking_id)
            if flag is None:
                flag = flags[booking_id] = AnomalyFlag(
                    kind=FlagKind.SPLIT_BOOKING,
                    booking_id=booking_id,
                    program_id=program_id,
                    details={"per_booking_cap": str(cap), "adjacent": []},
                )
            flag.details["adjacent"].append(other)
            flag.details.setdefault("pairs", []).append(
                {"earlier": first, "later": second, "voucher_parts": str(first_amount + second_amount)}
            )
    buyers = dict(Booking.objects.filter(pk__in=flags).values_list("pk", "buyer_id"))
    for booking_id, flag in flags.items():
        flag.organization_id = buyers[booking_id]
    return [flags[pk] for pk in sorted(flags)]


def rule_export_controlled(bookings: QuerySet[Booking]) -> list[AnomalyFlag]:
    """Voucher spend on export-controlled accelerators; the details say whether the provenance was approved."""
    hits, details = [], {}
    qs = bookings.filter(listing__cluster__accelerator__export_controlled=True).select_related(
        "listing__cluster__accelerator", "listing__cluster__provenance"
    )
    for booking in qs:
        cluster = booking.listing.cluster
        provenance = getattr(cluster, "provenance", None)
        hits.append(booking)
        details[booking.pk] = {
            "accelerator": cluster.accelerator.slug,
            "cluster": cluster.pk,
            "provenance_status": provenance.status if provenance else "missing",
            "voucher_amount": str(booking.voucher_amount),
        }
    return _booking_flags(FlagKind.EXPORT_CONTROLLED, hits, details)


# --- services ------------------------------------------------------------------------------------------------


def _insert(flags: list[AnomalyFlag]) -> int:
    """INSERT … ON CONFLICT DO NOTHING (the unique constraint decides, even against a concurrent run); returns how
    many of ``flags`` were not stored before (under a concurrent run both may count the same flag)."""
    if not flags:
        return 0
    existing = set(
        AnomalyFlag.objects.filter(
            Q(booking_id__in={f.booking_id for f in flags if f.booking_id})
            | Q(voucher_id__in={f.voucher_id for f in flags if f.voucher_id})
        ).values_list("kind", "booking_id", "voucher_id")
    )
    AnomalyFlag.objects.bulk_create(flags, ignore_conflicts=True)
    return sum((f.kind, f.booking_id, f.voucher_id) not in existing for f in flags)


def _run_rules(bookings: QuerySet[Booking]) -> int:
    voucher_ids = (
        Redemption.objects.filter(booking__in=bookings, status__in=LIVE_REDEMPTION)
        .values_list("voucher_id", flat=True)
        .distinct()
    )
    flags = (
        rule_related_party(bookings)
        + rule_price_above_median(bookings)
        + rule_spend_velocity(voucher_ids)
        + rule_split_booking(bookings)
        + rule_export_controlled(bookings)
    )
    return _insert(flags)


@transaction.atomic
def flags_compute(*, since: dt.datetime | None = None) -> int:
    """Run every rule over live voucher bookings created at or after ``since`` (all when None) and store the new
    flags. Idempotent: existing flags (whatever their status) are left alone. Returns the number of new flags."""
    created = _run_rules(voucher_bookings(since=since))
    if created:
        audit_record(
            action="audit.flags_computed",
            object_type="audit.anomalyflag",
            data={"since": since.isoformat() if since else None, "created": created},
        )
    return created


@transaction.atomic
def flags_for_booking(booking_id: int) -> int:
    """Run every rule for one booking (the settlement hook; call it after the booking settled). Idempotent;
    returns the number of new flags (0 for an unknown booking or one without live voucher spend)."""
    return _run_rules(voucher_bookings(booking_ids=[booking_id]))


def flag_review(*, flag: AnomalyFlag | int, actor, decision: str, note: str = "") -> AnomalyFlag:
    """An auditor dismisses or confirms an open flag, with a note; writes an ``audit.flag_reviewed`` event.

    Raises ``ApplicationError`` 403 when ``actor`` is not an auditor, 400 with a field error for a bad decision,
    ``NotFound`` (404) for an unknown flag, and ``Conflict`` (409) when the flag was already reviewed.
    """
    if not is_auditor(actor):
        raise ApplicationError(gettext("Only auditors can review flags."), status=403, code="permission_denied")
    if decision not in (AnomalyFlag.Status.DISMISSED, AnomalyFlag.Status.CONFIRMED):
        raise ApplicationError(
            gettext("Invalid decision."), errors={"decision": [gettext("Choose dismissed or confirmed.")]}
        )
    note = (note or "").strip()
    flag_id = flag.pk if isinstance(flag, AnomalyFlag) else flag
    with transaction.atomic():
        now = timezone.now()
        # Conditional update: of two concurrent reviews exactly one finds the flag open.
        updated = AnomalyFlag.objects.filter(pk=flag_id, status=AnomalyFlag.Status.OPEN).update(
            status=decision, reviewer=actor, reviewed_at=now, review_note=note
        )
        if not updated:
            if not AnomalyFlag.objects.filter(pk=flag_id).exists():
                raise NotFound(gettext("No such flag."))
            raise Conflict(gettext("This flag was already reviewed."), code="already_reviewed")
        reviewed = AnomalyFlag.objects.get(pk=flag_id)
        audit_record(
            action="audit.flag_reviewed",
            obj=reviewed,
            actor=actor,
            organization_id=reviewed.organization_id,
            data={
                "kind": reviewed.kind,
                "decision": decision,
                "note": note,
                "booking": reviewed.booking_id,
                "voucher": reviewed.voucher_id,
            },
        )
    return reviewed

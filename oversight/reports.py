"""Voucher spend reports for auditors and issuers, and who may see what.

Reporting layer: unlike the audit core (models, services, selectors), this module reads the vouchers, orders,
listings, settlement and accounts models. A report is one SQL query over live redemptions (held or captured;
released parts were never spent) joined through booking → listing → cluster → data centre / accelerator, grouped
by one dimension. Amounts per row:

- ``held``: parts still held (they sit in the vouchers' ``voucher_hold`` ledger accounts);
- ``captured``: parts captured at settlement (they left ``voucher_hold`` for the provider's payable);
- ``reimbursed``: captured parts whose (program, booking) reimbursement claim is paid;
- ``spent`` = held + captured: what the vouchers took out of the programs' budgets;
- for ``group_by=program``: ``budget_total`` and ``budget_used`` (spent / budget_total, 4 places).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Count, DecimalField, Exists, F, OuterRef, Q, Sum, Value
from django.db.models.functions import Coalesce, TruncMonth
from django.utils.translation import gettext

from accounts.selectors import audited_issuers, is_auditor
from marketplace.core.exceptions import ApplicationError
from marketplace.core.money import ZERO
from settlement.models import ReimbursementClaim
from vouchers.models import Redemption

GROUPS = ("city", "program", "provider", "accelerator", "month")
COLUMNS = ("key", "label", "bookings", "held", "captured", "reimbursed", "spent", "budget_total", "budget_used")
_LIVE = (Redemption.Status.HELD, Redemption.Status.CAPTURED)
_CLUSTER = "booking__listing__cluster__"

# group_by → (key expression, label expression, extra grouped columns)
_DIMENSIONS = {
    "city": (F("voucher__program__city"), F("voucher__program__city"), {}),
    "program": (
        F("voucher__program_id"),
        F("voucher__program__name"),
        {"budget_total": F("voucher__program__budget_total")},
    ),
    "provider": (F(_CLUSTER + "data_center__provider_id"), F(_CLUSTER + "data_center__provider__name"), {}),
    "accelerator": (
        F(_CLUSTER + "accelerator__slug"),
        F(_CLUSTER + "accelerator__name"),
        {"domestic": F(_CLUSTER + "accelerator__domestic")},
    ),
    "month": (TruncMonth("booking__start", tzinfo=dt.UTC), TruncMonth("booking__start", tzinfo=dt.UTC), {}),
}


def spend_scope(user) -> list[int] | None:
    """The program issuers whose spend ``user`` may see: ``None`` = every program (auditors), else the ids of the
    issuer organizations the user acts for. Raises ``ApplicationError`` 403 for anyone else."""
    if is_auditor(user):
        return None
    issuers = list(audited_issuers(user).values_list("pk", flat=True))
    if not issuers:
        raise ApplicationError(
            gettext("Only auditors and voucher issuers can see spend reports."), status=403, code="permission_denied"
        )
    return issuers


def _amount(condition: Q) -> Coalesce:
    return Coalesce(Sum("amount", filter=condition), Value(ZERO), output_field=DecimalField())


def spend_report(*, group_by: str, issuer_ids: list[int] | None = None) -> list[dict]:
    """Voucher spend grouped by ``group_by`` (one of ``GROUPS``), sorted by key; only programs of ``issuer_ids``
    when given (see ``spend_scope``). One SQL query. Raises ``ApplicationError`` 400 (field ``group_by``) for an
    unknown grouping."""
    if group_by not in _DIMENSIONS:
        raise ApplicationError(
            gettext("Unknown grouping."),
            errors={"group_by": [gettext("Choose one of: %(names)s.") % {"names": ", ".join(GROUPS)}]},
        )
    key, label, extra = _DIMENSIONS[group_by]
    paid_claim = ReimbursementClaim.objects.filter(
        program_id=OuterRef("voucher__program_id"),
        booking_id=OuterRef("booking_id"),
        status=ReimbursementClaim.Status.PAID,
    )
    qs = Redemption.objects.filter(status__in=_LIVE)
    if issuer_ids is not None:
        qs = qs.filter(voucher__program__issuer_id__in=issuer_ids)
    rows = (
        qs.values(key=key, label=label, **extra)
        .annotate(
            bookings=Count("booking_id", distinct=True),
            held=_amount(Q(status=Redemption.Status.HELD)),
            captured=_amount(Q(status=Redemption.Status.CAPTURED)),
            reimbursed=_amount(Q(status=Redemption.Status.CAPTURED) & Q(Exists(paid_claim))),
        )
        .order_by("key")
    )
    report = []
    for row in rows:
        row["spent"] = row["held"] + row["captured"]
        if group_by == "month":
            row["key"] = row["label"] = row["key"].strftime("%Y-%m")
        row["key"] = str(row["key"])
        budget = row.get("budget_total")
        row["budget_used"] = (row["spent"] / budget).quantize(Decimal("0.0001")) if budget else None
        row.setdefault("budget_total", None)
        report.append(row)
    return report


def spend_totals(rows: list[dict]) -> dict[str, Decimal | int]:
    """Column sums of a report (bookings are counted per row, so a booking stacking vouchers of several groups
    counts in each)."""
    return {
        name: sum((row[name] for row in rows), ZERO if name != "bookings" else 0)
        for name in ("bookings", "held", "captured", "reimbursed", "spent")
    }

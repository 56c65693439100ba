"""Plain words for values stored as codes: ``{{ tx.kind|tx_kind }}`` ("voucher_hold" → "Voucher held"),
``{{ value|choice_label:booking.Status }}`` (a ``TextChoices`` value → its label in the active language)."""

from django import template
from django.utils.translation import gettext_lazy as _

register = template.Library()

# JournalTransaction kinds (free text in the ledger; these are the ones the apps post).
TX_KINDS = {
    "deposit": _("Deposit"),
    "hold": _("Payment held"),
    "release": _("Hold released"),
    "capture": _("Payment captured"),
    "settle": _("Settlement"),
    "payout": _("Payout"),
    "reimburse": _("Reimbursement"),
    "program_funding": _("Program funded"),
    "voucher_issue": _("Voucher issued"),
    "voucher_hold": _("Voucher held"),
    "voucher_capture": _("Voucher captured"),
    "voucher_release": _("Voucher released"),
    "voucher_expire": _("Voucher expired"),
    "voucher_revoke": _("Voucher revoked"),
}


@register.filter
def tx_kind(kind: str) -> str:
    return TX_KINDS.get(kind, (kind or "").replace("_", " "))


@register.filter
def choice_label(value, choices) -> str:
    """``value``'s label in ``choices`` (a ``TextChoices`` class or a list of pairs); the value itself if unknown."""
    pairs = getattr(choices, "choices", choices) or []
    return dict(pairs).get(value, value)


# The limit that bound a voucher part (``vouchers.rules.LIMIT_EXPLANATIONS``, by code), in the active language.
LIMIT_TEXTS = {
    "coverage_ratio": _("the program pays at most its coverage ratio of the booking"),
    "balance": _("all that is left on the voucher"),
    "annual_cap": _("the program's yearly cap for your organization is reached"),
    "per_booking_cap": _("the program's cap for one booking is reached"),
    "stacking_limit": _("a program limits the share all vouchers together may pay for one booking"),
    "stacking_rule": _("this program may not be combined with another voucher used here"),
}


@register.filter
def limit_text(code: str, default: str = "") -> str:
    """``{{ part.rule|limit_text:part.explanation }}``: the bound limit in plain words (``default`` if unknown)."""
    return LIMIT_TEXTS.get(code, default or code)

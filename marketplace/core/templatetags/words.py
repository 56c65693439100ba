"""Plain words for values stored as codes: ``{{ tx.kind|tx_kind }}`` ("voucher_hold" → "Voucher held"),
``{{ value|choice_label:booking.Status }}`` (a ``TextChoices`` value → its label in the active language)."""

import json

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
    "service_credit": _("Service credit"),
    "resale": _("Resale of booked time"),
    "resale_voucher_return": _("Voucher share of resold time returned"),
}


@register.filter
def tx_kind(kind: str) -> str:
    return TX_KINDS.get(kind, (kind or "").replace("_", " "))


# What a ledger transaction's reference ("booking:12") is about, in words ("Booking 12"); "bank:<ref>" is the bank's.
REFERENCES = {
    "booking": _("Booking %(id)s"),
    "bid": _("Bid %(id)s"),
    "payout": _("Payout %(id)s"),
    "statement": _("Statement %(id)s"),
    "voucher": _("Voucher %(id)s"),
    "voucher_program": _("Voucher program %(id)s"),
    "bank": _("Bank transfer %(id)s"),
}


@register.filter
def ledger_reference(reference: str) -> str:
    kind, _sep, rest = (reference or "").partition(":")
    text = REFERENCES.get(kind)
    return str(text) % {"id": rest} if text is not None and rest else reference


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


# Audit event actions (``audit_record(action=...)`` across the apps), in plain words; an unknown one shows its code.
AUDIT_ACTIONS = {
    "booking.held": _("Booking held"),
    "booking.confirmed": _("Booking confirmed"),
    "booking.active": _("Booking started"),
    "booking.completed": _("Booking ended"),
    "booking.settled": _("Booking settled"),
    "booking.cancelled": _("Booking cancelled"),
    "booking.expired": _("Booking hold expired"),
    "bid.open": _("Bid placed"),
    "bid.matched": _("Bid matched"),
    "bid.cancelled": _("Bid cancelled"),
    "bid.expired": _("Bid expired"),
    "voucher.hold": _("Voucher part held"),
    "voucher.release": _("Voucher part released"),
    "voucher.capture": _("Voucher part spent"),
    "voucher.expire": _("Voucher expired"),
    "voucher.revoke": _("Voucher revoked"),
    "voucher.revoke_reason": _("Voucher revoked"),
    "voucher_application.submit": _("Voucher application submitted"),
    "voucher_application.approve": _("Voucher application approved"),
    "voucher_application.reject": _("Voucher application rejected"),
    "voucher_program.create": _("Voucher program created"),
    "voucher_program.update": _("Voucher program changed"),
    "voucher_program.fund": _("Voucher program funded"),
    "settlement.booking_settled": _("Booking paid out to the provider's payable"),
    "settlement.payout_created": _("Payout created"),
    "settlement.payout_paid": _("Payout paid"),
    "settlement.claim_paid": _("Reimbursement claim paid"),
    "settlement.statement_issued": _("Reimbursement statement issued"),
    "settlement.statement_paid": _("Reimbursement statement paid"),
    "wallet.deposit": _("Bank transfer credited to a wallet"),
    "listings.listing_created": _("Listing created"),
    "listings.listing_submitted": _("Listing submitted for review"),
    "listings.listing_approved": _("Listing approved"),
    "listings.listing_rejected": _("Listing rejected"),
    "listings.listing_paused": _("Listing paused"),
    "listings.listing_resumed": _("Listing resumed"),
    "listings.listing_updated": _("Listing changed"),
    "listings.listing_closed": _("Listing closed"),
    "listings.data_center_created": _("Data centre added"),
    "listings.cluster_created": _("Cluster added"),
    "listings.provenance_approved": _("Hardware provenance approved"),
    "accounts.signed_up": _("Organization signed up"),
    "accounts.email_confirmed": _("E-mail address confirmed"),
    "accounts.organization_verified": _("Organization verified"),
    "accounts.organization_rejected": _("Organization not verified"),
    "accounts.invitation_created": _("Member invited"),
    "accounts.invitation_accepted": _("Invitation accepted"),
    "accounts.member_left": _("Member removed"),
    "model_filing.create": _("Model filing recorded"),
    "model_filing.verified": _("Model filing verified"),
    "model_filing.rejected": _("Model filing rejected"),
    "audit.flag_reviewed": _("Anomaly flag reviewed"),
    "audit.flags_computed": _("Anomaly flags computed"),
}

# What an audit event is about (``AuditEvent.object_type``: app label and model), in plain words.
AUDIT_OBJECTS = {
    "orders.booking": _("Booking"),
    "orders.bid": _("Bid"),
    "vouchers.voucher": _("Voucher"),
    "vouchers.redemption": _("Voucher redemption"),
    "vouchers.voucherprogram": _("Voucher program"),
    "vouchers.voucherapplication": _("Voucher application"),
    "settlement.payout": _("Payout"),
    "settlement.bookingsettlement": _("Settlement"),
    "settlement.reimbursementclaim": _("Reimbursement claim"),
    "settlement.reimbursementstatement": _("Reimbursement statement"),
    "ledger.journaltransaction": _("Ledger transaction"),
    "listings.listing": _("Listing"),
    "listings.cluster": _("Cluster"),
    "listings.datacenter": _("Data centre"),
    "accounts.organization": _("Organization"),
    "accounts.invitation": _("Invitation"),
    "accounts.modelfiling": _("Model filing"),
    "oversight.anomalyflag": _("Anomaly flag"),
}


@register.filter
def audit_action(code: str) -> str:
    """``{{ event.action|audit_action }}``: "booking.confirmed" → "Booking confirmed" in the active language."""
    return AUDIT_ACTIONS.get(code, code or "")


@register.filter
def audit_object(event) -> str:
    """``{{ event|audit_object }}``: "Booking 7" for ``orders.booking`` / ``7``; the codes when the type is unknown."""
    label = AUDIT_OBJECTS.get(event.object_type)
    return f"{label} {event.object_id}" if label else f"{event.object_type}:{event.object_id}"


@register.filter
def audit_data(data) -> list[tuple[str, str]]:
    """An event's ``data`` as (key, value) pairs to list, nested values as compact JSON."""
    if not isinstance(data, dict):
        return [("", str(data))] if data not in (None, "") else []
    return [
        (str(key), value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":")))
        for key, value in data.items()
    ]


@register.filter
def labelled(label) -> str:
    """A translated label that ends in a colon, with the gap its language puts before the value:
    ``{% translate "Providers:" as label %}{{ label|labelled }}`` gives "Providers: " in English and "服务商：" (no
    space after the full-width colon) in Chinese."""
    label = str(label)
    return label if label.endswith("：") else f"{label} "

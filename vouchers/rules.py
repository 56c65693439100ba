"""The voucher rules engine: pure (dataclasses in, parts out, no ORM), so every rule is table-testable.

``compute_parts(context, candidates)`` checks each voucher's eligibility for one booking and splits the booking
between them, soonest expiry first. A voucher's part is the smallest of its limits::

    coverage_ratio   ratio × subtotal (domestic or other tier, plus the SME bonus, at most 1)
    balance          what is left on the voucher
    annual_cap       the program's per-organization annual cap less what the buyer already used or holds
    per_booking_cap  the program's cap for one booking
    stacking_limit   max_stacked_share × subtotal less the parts of the vouchers before it

and ``bound_by`` names the limit that was smallest (on a tie, the first in that order). The minimum is rounded
half-up to fen once. Ineligibility raises ``RulesError`` listing one ``Violation`` per refused voucher.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from marketplace.core.money import ZERO, to_amount

ONE = Decimal(1)

# Limits in tie-break order: a cap is reported only when it is strictly below the coverage ratio part.
LIMITS = ("coverage_ratio", "balance", "annual_cap", "per_booking_cap", "stacking_limit")

# Eligibility rules, in the order they are checked; the messages name the rule for the API's 400.
RULE_MESSAGES = {
    "organization": "belongs to another organization",
    "revoked": "has been revoked",
    "expired": "has expired",
    "unreviewed_listing": "cannot pay for a listing whose hardware has not passed the platform review",
    "provider_not_eligible": "is not valid with this provider (not on the program's provider list)",
    "data_center_city": "only pays for data centres in the program's city",
    "accelerator_not_eligible": "does not cover this accelerator",
    "model_filing_required": "requires a registered model filing",
    "related_party": "cannot pay a provider related to the buyer (shared owner or legal representative)",
}


@dataclass(frozen=True)
class ProgramRules:
    program_id: int
    city: str
    domestic_ratio: Decimal
    other_ratio: Decimal
    sme_bonus_ratio: Decimal = ZERO
    model_filing_earns_domestic_ratio: bool = False
    annual_cap_per_org: Decimal | None = None
    per_booking_cap: Decimal | None = None
    eligible_provider_ids: frozenset[int] = field(default_factory=frozenset)
    city_data_centers_only: bool = False
    eligible_accelerator_ids: frozenset[int] = field(default_factory=frozenset)
    requires_model_filing: bool = False
    ban_related_party: bool = True
    max_stacked_share: Decimal = ONE
    require_reviewed_listing: bool = True


@dataclass(frozen=True)
class BookingContext:
    subtotal: Decimal
    buyer_id: int
    provider_id: int
    data_center_city: str
    accelerator_id: int
    accelerator_domestic: bool = False
    accelerator_export_controlled: bool = False
    listing_reviewed: bool = True
    buyer_is_sme: bool = False
    buyer_has_model_filing: bool = False
    related_party: bool = False
    now: dt.datetime | None = None


@dataclass(frozen=True)
class VoucherCandidate:
    voucher_id: int
    holder_id: int
    expires_at: dt.datetime
    balance: Decimal
    rules: ProgramRules
    status: str = "active"
    annual_used: Decimal = ZERO  # the holder's redemptions held or captured in this program this year


@dataclass(frozen=True)
class VoucherPart:
    voucher_id: int
    amount: Decimal
    bound_by: str
    ratio: Decimal


@dataclass(frozen=True)
class Violation:
    voucher_id: int
    rule: str

    @property
    def message(self) -> str:
        return f"Voucher {self.voucher_id} {RULE_MESSAGES[self.rule]} (rule: {self.rule})."


class RulesError(Exception):
    """One or more vouchers are not eligible for the booking; ``violations`` names each voucher and rule."""

    def __init__(self, violations: list[Violation]):
        self.violations = violations
        super().__init__(" ".join(v.message for v in violations))

    @property
    def messages(self) -> list[str]:
        return [v.message for v in self.violations]


def violated_rule(context: BookingContext, candidate: VoucherCandidate) -> str | None:
    """The first eligibility rule ``candidate`` breaks for ``context``, or ``None`` when it may pay."""
    rules = candidate.rules
    checks = {
        "organization": candidate.holder_id != context.buyer_id,
        "revoked": candidate.status == "revoked",
        "expired": candidate.status == "expired" or (context.now is not None and candidate.expires_at <= context.now),
        "unreviewed_listing": rules.require_reviewed_listing and not context.listing_reviewed,
        "provider_not_eligible": bool(rules.eligible_provider_ids)
        and context.provider_id not in rules.eligible_provider_ids,
        "data_center_city": rules.city_data_centers_only and context.data_center_city != rules.city,
        "accelerator_not_eligible": bool(rules.eligible_accelerator_ids)
        and context.accelerator_id not in rules.eligible_accelerator_ids,
        "model_filing_required": rules.requires_model_filing and not context.buyer_has_model_filing,
        "related_party": rules.ban_related_party and context.related_party,
    }
    return next((rule for rule, broken in checks.items() if broken), None)


def coverage_ratio(context: BookingContext, rules: ProgramRules) -> Decimal:
    """The share of the subtotal the program pays: the domestic or other tier plus the SME bonus, at most 1."""
    domestic_tier = context.accelerator_domestic or (
        rules.model_filing_earns_domestic_ratio and context.buyer_has_model_filing
    )
    ratio = rules.domestic_ratio if domestic_tier else rules.other_ratio
    if context.buyer_is_sme:
        ratio += rules.sme_bonus_ratio
    return min(ratio, ONE)


def compute_parts(context: BookingContext, candidates: list[VoucherCandidate]) -> list[VoucherPart]:
    """Each candidate's part of ``context.subtotal``, soonest expiry first (then lowest id).

    Raises ``RulesError`` (every ineligible voucher with its rule) before computing anything. Parts may be zero
    (an empty voucher, an exhausted cap); the caller decides whether to hold them.
    """
    violations = [Violation(c.voucher_id, rule) for c in candidates if (rule := violated_rule(context, c))]
    if violations:
        raise RulesError(violations)
    subtotal = context.subtotal
    parts: list[VoucherPart] = []
    assigned = ZERO
    used_by_program: dict[int, Decimal] = {}
    for candidate in sorted(candidates, key=lambda c: (c.expires_at, c.voucher_id)):
        rules = candidate.rules
        ratio = coverage_ratio(context, rules)
        limits: dict[str, Decimal] = {"coverage_ratio": ratio * subtotal, "balance": candidate.balance}
        if rules.annual_cap_per_org is not None:
            used = candidate.annual_used + used_by_program.get(rules.program_id, ZERO)
            limits["annual_cap"] = rules.annual_cap_per_org - used
        if rules.per_booking_cap is not None:
            limits["per_booking_cap"] = rules.per_booking_cap
        limits["stacking_limit"] = rules.max_stacked_share * subtotal - assigned
        # min() keeps the first of equal values, so LIMITS order breaks ties.
        bound_by = min((name for name in LIMITS if name in limits), key=limits.__getitem__)
        amount = max(to_amount(limits[bound_by]), ZERO)
        parts.append(VoucherPart(candidate.voucher_id, amount, bound_by, ratio))
        assigned += amount
        used_by_program[rules.program_id] = used_by_program.get(rules.program_id, ZERO) + amount
    return parts

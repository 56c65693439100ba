"""The voucher rules engine: pure (dataclasses in, parts out, no ORM), so every rule is table-testable.

``compute_parts(context, candidates)`` checks each voucher's eligibility for one booking, then returns the split of
the booking between the vouchers that pays the most under every limit at once:

    balance          each voucher pays at most what is left on it
    coverage_ratio   a program pays at most ratio × subtotal over all its vouchers in the booking (the domestic or
                     other tier, plus the SME bonus, or the SME contract-size tier, plus the idle-capacity extra
                     ratio on a cluster used below the program's threshold over the last 7 days, at most 1)
    annual_cap       … at most its per-organization annual cap less what the buyer already used or holds
    per_booking_cap  … at most its cap for one booking, over all its vouchers together
    stacking_limit   the booking's total voucher part is at most max_stacked_share × subtotal of EVERY program that
                     pays a part (Hangzhou: compute voucher + other vouchers ≤ 60 %)
    stacking_rule    two programs pay parts of one booking only if each allows the other's level and neither
                     excludes the other (Beijing: no other city-level subsidy)

The result never depends on the order vouchers are named or expire: every set of mutually stackable programs is
tried and the one paying the most wins; within it the parts are filled soonest expiry first (then lowest id), and
among equally good splits the one spending the soonest-expiring vouchers most is chosen. Limits are rounded half-up
to fen once. ``bound_by`` names the limit that stopped each voucher (on a tie, the first in ``LIMITS`` order).
Ineligibility raises ``RulesError`` listing one ``Violation`` per refused voucher.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from marketplace.core.money import ZERO, to_amount

ONE = Decimal(1)

# Limits in tie-break order: a cap is reported only when it is strictly below the coverage ratio part.
LIMITS = ("coverage_ratio", "balance", "annual_cap", "per_booking_cap", "stacking_limit", "stacking_rule")

# What each limit means, in plain words, for quotes and the voucher pages.
LIMIT_EXPLANATIONS = {
    "coverage_ratio": "the program pays at most its coverage ratio of the booking",
    "balance": "all that is left on the voucher",
    "annual_cap": "the program's yearly cap for your organization is reached",
    "per_booking_cap": "the program's cap for one booking is reached",
    "stacking_limit": "a program limits the share all vouchers together may pay for one booking",
    "stacking_rule": "this program may not be combined with another voucher used here",
}

LEVELS = ("national", "provincial", "city", "district")
# The most programs one booking may name: every set of them is tried (2^n), so keep n small.
MAX_PROGRAMS = 8

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
    "buyer_city": "is only for organizations registered in the program's cities",
    "subsidy_period_over": "has reached the end of the program's subsidy period for your organization",
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
    level: str = "city"
    stack_levels: frozenset[str] = frozenset(LEVELS)  # levels of other programs it may be combined with
    stack_excluded_program_ids: frozenset[int] = field(default_factory=frozenset)
    eligible_buyer_cities: frozenset[str] = field(default_factory=frozenset)  # empty = any registered city
    subsidy_period_days: int | None = None  # counted from the buyer's first subsidised booking in the program
    sme_contract_limit: Decimal | None = None  # SMEs whose booking is at most this much get ``sme_contract_ratio``
    sme_contract_ratio: Decimal = ZERO
    # Idle capacity: a cluster whose utilisation over the last 7 days is below ``idle_threshold_percent`` (0–100)
    # earns ``idle_extra_ratio`` on top of the ratio above; both None = no such rule.
    idle_threshold_percent: Decimal | None = None
    idle_extra_ratio: Decimal | None = None

    def stacks_with(self, other: ProgramRules) -> bool:
        """Whether this program and ``other`` (another program) may pay parts of one booking: each allows the
        other's level and neither excludes the other."""
        return (
            other.level in self.stack_levels
            and self.level in other.stack_levels
            and other.program_id not in self.stack_excluded_program_ids
            and self.program_id not in other.stack_excluded_program_ids
        )


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
    buyer_city: str = ""
    # The cluster's reserved share of its listed node-hours over the last 7 days (0–1); None when nothing was
    # listed then (unknown: the idle-capacity rule does not apply).
    cluster_utilisation: Decimal | None = None


@dataclass(frozen=True)
class VoucherCandidate:
    voucher_id: int
    holder_id: int
    expires_at: dt.datetime
    balance: Decimal
    rules: ProgramRules
    status: str = "active"
    annual_used: Decimal = ZERO  # the holder's redemptions held or captured in this program this year
    first_subsidised_at: dt.datetime | None = None  # the holder's first redemption in this program


@dataclass(frozen=True)
class VoucherPart:
    voucher_id: int
    amount: Decimal
    bound_by: str
    ratio: Decimal

    @property
    def explanation(self) -> str:
        """The limit that bound this part, in plain words."""
        return LIMIT_EXPLANATIONS[self.bound_by]


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
        "buyer_city": bool(rules.eligible_buyer_cities) and context.buyer_city not in rules.eligible_buyer_cities,
        "subsidy_period_over": _subsidy_period_over(context, candidate),
    }
    return next((rule for rule, broken in checks.items() if broken), None)


def _subsidy_period_over(context: BookingContext, candidate: VoucherCandidate) -> bool:
    period = candidate.rules.subsidy_period_days
    if period is None or candidate.first_subsidised_at is None or context.now is None:
        return False
    return context.now >= candidate.first_subsidised_at + dt.timedelta(days=period)


def idle_cluster(context: BookingContext, rules: ProgramRules) -> bool:
    """Whether the program's idle-capacity rule applies: it has one, the cluster's utilisation is known and it is
    strictly below the threshold."""
    return (
        rules.idle_threshold_percent is not None
        and rules.idle_extra_ratio is not None
        and context.cluster_utilisation is not None
        and context.cluster_utilisation * 100 < rules.idle_threshold_percent
    )


def coverage_ratio(context: BookingContext, rules: ProgramRules) -> Decimal:
    """The share of the subtotal the program pays: the domestic or other tier plus the SME bonus, at most 1; an SME
    whose booking is within the program's contract-size tier gets that tier's ratio when it is higher; a cluster
    below the program's idle-capacity threshold adds the program's extra ratio (still at most 1)."""
    domestic_tier = context.accelerator_domestic or (
        rules.model_filing_earns_domestic_ratio and context.buyer_has_model_filing
    )
    ratio = rules.domestic_ratio if domestic_tier else rules.other_ratio
    if context.buyer_is_sme:
        ratio += rules.sme_bonus_ratio
        if rules.sme_contract_limit is not None and context.subtotal <= rules.sme_contract_limit:
            ratio = max(ratio, rules.sme_contract_ratio)
    if idle_cluster(context, rules):
        ratio += rules.idle_extra_ratio
    return min(ratio, ONE)


@dataclass(frozen=True)
class _Program:
    """One program's share of a booking: its ratio and the limits that bound all its vouchers together."""

    rules: ProgramRules
    ratio: Decimal
    limits: dict[str, Decimal]  # coverage_ratio, annual_cap, per_booking_cap (those the program has), in fen
    balance: Decimal  # what its vouchers named here hold together
    stacking_limit: Decimal  # max_stacked_share × subtotal, in fen

    @property
    def capacity(self) -> Decimal:
        return max(min([*self.limits.values(), self.balance]), ZERO)


def _spending_order(candidate: VoucherCandidate) -> tuple:
    return candidate.expires_at, candidate.voucher_id


def _programs(context: BookingContext, ordered: list[VoucherCandidate]) -> dict[int, _Program]:
    """The programs of ``ordered`` (in the order of their first voucher) with their limits for this booking."""
    grouped: dict[int, list[VoucherCandidate]] = {}
    for candidate in ordered:
        grouped.setdefault(candidate.rules.program_id, []).append(candidate)
    programs = {}
    for program_id, vouchers in grouped.items():
        rules = vouchers[0].rules
        ratio = coverage_ratio(context, rules)
        limits = {"coverage_ratio": to_amount(ratio * context.subtotal)}
        if rules.annual_cap_per_org is not None:
            limits["annual_cap"] = rules.annual_cap_per_org - vouchers[0].annual_used
        if rules.per_booking_cap is not None:
            limits["per_booking_cap"] = rules.per_booking_cap
        programs[program_id] = _Program(
            rules=rules,
            ratio=ratio,
            limits=limits,
            balance=sum((v.balance for v in vouchers), ZERO),
            stacking_limit=to_amount(rules.max_stacked_share * context.subtotal),
        )
    return programs


def _stackable_sets(programs: dict[int, _Program]) -> list[tuple[int, ...]]:
    """Every non-empty set of program ids whose programs may all be combined, pairwise."""
    ids = list(programs)
    clash = {(a, b) for a in ids for b in ids if a != b and not programs[a].rules.stacks_with(programs[b].rules)}
    sets = []
    for mask in range(1, 1 << len(ids)):
        chosen = tuple(pid for bit, pid in enumerate(ids) if mask >> bit & 1)
        if not any((a, b) in clash for a in chosen for b in chosen):
            sets.append(chosen)
    return sets


def _fill(
    programs: dict[int, _Program], chosen: tuple[int, ...], ordered: list[VoucherCandidate]
) -> dict[int, tuple[Decimal, str]]:
    """Parts of the vouchers of the ``chosen`` programs, soonest expiry first, each the smallest of its limits
    given the parts before it: ``{voucher id: (amount, bound_by)}``. Greedy is optimal here: the limits nest
    (voucher within program within booking), so any filling order reaches the same total."""
    booking_limit = min(programs[pid].stacking_limit for pid in chosen)
    used: dict[int, Decimal] = dict.fromkeys(chosen, ZERO)
    assigned = ZERO
    parts = {}
    for candidate in ordered:
        program_id = candidate.rules.program_id
        if program_id not in used:
            continue
        program = programs[program_id]
        limits = {name: value - used[program_id] for name, value in program.limits.items()}
        limits["balance"] = candidate.balance
        limits["stacking_limit"] = booking_limit - assigned
        # min() keeps the first of equal values, so LIMITS order breaks ties.
        bound_by = min((name for name in LIMITS if name in limits), key=limits.__getitem__)
        amount = max(limits[bound_by], ZERO)
        parts[candidate.voucher_id] = (amount, bound_by)
        used[program_id] += amount
        assigned += amount
    return parts


def _left_out(programs: dict[int, _Program], chosen: tuple[int, ...], program_id: int) -> str:
    """Why a program outside the chosen set pays nothing: it may not be combined with one chosen, or adding it
    would have lowered the booking's total through its own stacking limit."""
    rules = programs[program_id].rules
    if all(rules.stacks_with(programs[pid].rules) for pid in chosen):
        return "stacking_limit"
    return "stacking_rule"


def compute_parts(context: BookingContext, candidates: list[VoucherCandidate]) -> list[VoucherPart]:
    """Each candidate's part of ``context.subtotal``, listed soonest expiry first (then lowest id): the split that
    pays the most under every limit at once (see the module docstring), whatever order ``candidates`` come in.

    Raises ``RulesError`` (every ineligible voucher with its rule) before computing anything, and ``ValueError``
    for more than ``MAX_PROGRAMS`` programs (callers bound the number of vouchers). Parts may be zero (an empty
    voucher, an exhausted cap, a program that may not be combined); the caller decides whether to hold them.
    """
    violations = [Violation(c.voucher_id, rule) for c in candidates if (rule := violated_rule(context, c))]
    if violations:
        raise RulesError(violations)
    ordered = sorted(candidates, key=_spending_order)
    programs = _programs(context, ordered)
    if len(programs) > MAX_PROGRAMS:
        raise ValueError(f"at most {MAX_PROGRAMS} voucher programs in one booking")
    best_key, best = None, ((), {})
    for chosen in _stackable_sets(programs):
        parts = _fill(programs, chosen, ordered)
        amounts = tuple(parts.get(c.voucher_id, (ZERO, ""))[0] for c in ordered)
        # The most in total; then spend the soonest-expiring vouchers first; then name the most programs.
        key = (sum(amounts, ZERO), amounts, len(chosen))
        if best_key is None or key > best_key:
            best_key, best = key, (chosen, parts)
    chosen, parts = best
    result = []
    for candidate in ordered:
        program_id = candidate.rules.program_id
        amount, bound_by = parts.get(candidate.voucher_id) or (ZERO, _left_out(programs, chosen, program_id))
        result.append(VoucherPart(candidate.voucher_id, amount, bound_by, programs[program_id].ratio))
    return result

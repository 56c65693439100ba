"""The pure rules engine: one table per rule type, each with its boundary (exactly at the limit, one fen over)."""

import datetime as dt
from dataclasses import replace
from decimal import Decimal as D  # noqa: N817 - the tables read better

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vouchers.rules import BookingContext, ProgramRules, RulesError, VoucherCandidate, compute_parts, coverage_ratio

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
PROGRAM = ProgramRules(program_id=1, city="Shanghai", domestic_ratio=D("0.30"), other_ratio=D("0.20"))
CONTEXT = BookingContext(
    subtotal=D("1000.00"), buyer_id=10, provider_id=20, data_center_city="Shanghai", accelerator_id=30, now=NOW
)


def candidate(voucher_id=1, *, balance=D("100000.00"), rules=PROGRAM, days=30, **kwargs) -> VoucherCandidate:
    return VoucherCandidate(
        voucher_id=voucher_id,
        holder_id=10,
        expires_at=NOW + dt.timedelta(days=days),
        balance=balance,
        rules=rules,
        **kwargs,
    )


def one_part(context=CONTEXT, **candidate_kwargs):
    (part,) = compute_parts(context, [candidate(**candidate_kwargs)])
    return part.amount, part.bound_by


# --- limits: coverage ratio tiers, balance, caps ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("program", "context", "ratio"),
    [
        (PROGRAM, CONTEXT, D("0.20")),  # other accelerator
        (PROGRAM, replace(CONTEXT, accelerator_domestic=True), D("0.30")),  # domestic chip tier
        (PROGRAM, replace(CONTEXT, buyer_has_model_filing=True), D("0.20")),  # filing alone earns nothing here
        (
            replace(PROGRAM, model_filing_earns_domestic_ratio=True),
            replace(CONTEXT, buyer_has_model_filing=True),
            D("0.30"),
        ),  # Hangzhou: domestic chips OR a registered model
        (replace(PROGRAM, model_filing_earns_domestic_ratio=True), CONTEXT, D("0.20")),  # no filing → other tier
        (replace(PROGRAM, sme_bonus_ratio=D("0.10")), replace(CONTEXT, buyer_is_sme=True), D("0.30")),  # SME bonus
        (replace(PROGRAM, sme_bonus_ratio=D("0.10")), CONTEXT, D("0.20")),  # bonus only for SMEs
        (
            replace(PROGRAM, other_ratio=D("0.95"), sme_bonus_ratio=D("0.10")),
            replace(CONTEXT, buyer_is_sme=True),
            D("1"),
        ),  # never above the whole subtotal
    ],
)
def test_coverage_ratio_tiers(program, context, ratio):
    # when / then
    assert coverage_ratio(context, program) == ratio
    amount, bound_by = one_part(context, rules=program)
    assert (amount, bound_by) == (ratio * context.subtotal, "coverage_ratio")


@pytest.mark.parametrize(
    ("balance", "expected"),
    [
        (D("200.01"), (D("200.00"), "coverage_ratio")),  # one fen more than the ratio part: the ratio binds
        (D("200.00"), (D("200.00"), "coverage_ratio")),  # exactly at it: the ratio (tie-break order)
        (D("199.99"), (D("199.99"), "balance")),  # one fen under: the balance binds
        (D("0.00"), (D("0.00"), "balance")),  # an empty voucher pays nothing
    ],
)
def test_balance_limit(balance, expected):
    assert one_part(balance=balance) == expected


@pytest.mark.parametrize(
    ("cap", "used", "expected"),
    [
        (D("1000.00"), D("800.00"), (D("200.00"), "coverage_ratio")),  # remaining exactly the ratio part
        (D("1000.00"), D("800.01"), (D("199.99"), "annual_cap")),  # one fen over the cap if paid in full
        (D("1000.00"), D("1000.00"), (D("0.00"), "annual_cap")),  # cap used up
        (D("1000.00"), D("1200.00"), (D("0.00"), "annual_cap")),  # already above (cap lowered): never negative
        (None, D("99999999.00"), (D("200.00"), "coverage_ratio")),  # no cap
    ],
)
def test_annual_cap(cap, used, expected):
    rules = replace(PROGRAM, annual_cap_per_org=cap)
    assert one_part(rules=rules, annual_used=used) == expected


@pytest.mark.parametrize(
    ("cap", "expected"),
    [
        (D("200.00"), (D("200.00"), "coverage_ratio")),  # exactly at the cap
        (D("199.99"), (D("199.99"), "per_booking_cap")),  # one fen under the ratio part
        (D("0.00"), (D("0.00"), "per_booking_cap")),
        (None, (D("200.00"), "coverage_ratio")),
    ],
)
def test_per_booking_cap(cap, expected):
    assert one_part(rules=replace(PROGRAM, per_booking_cap=cap)) == expected


@pytest.mark.parametrize(
    ("max_share", "expected_second"),
    [
        (D("0.40"), (D("200.00"), "coverage_ratio")),  # 200 + 200 = exactly 40 %
        (D("0.3999"), (D("199.90"), "stacking_limit")),  # a lower share: the stacking limit binds
        (D("0.20"), (D("0.00"), "stacking_limit")),  # the first voucher used the whole share
    ],
)
def test_stacking_limit_across_vouchers(max_share, expected_second):
    # given two vouchers of programs paying 20 % each
    rules = replace(PROGRAM, max_stacked_share=max_share)
    first, second = candidate(1, rules=rules, days=10), candidate(2, rules=replace(rules, program_id=2), days=20)
    # when
    parts = compute_parts(CONTEXT, [second, first])
    # then the sooner-expiring voucher pays first; the second is limited by the remaining share
    assert [p.voucher_id for p in parts] == [1, 2]
    assert (parts[0].amount, parts[0].bound_by) == (D("200.00"), "coverage_ratio")
    assert (parts[1].amount, parts[1].bound_by) == expected_second


@pytest.mark.parametrize(
    ("first_balance", "expected_second"),
    [
        (D("150.00"), (D("250.00"), "coverage_ratio")),  # 150 + 250 = exactly the 40 % share
        (D("150.01"), (D("249.99"), "stacking_limit")),  # a full second part would be one fen over
    ],
)
def test_stacking_limit_boundary(first_balance, expected_second):
    # given a 40 % stacking limit; the first voucher is bound by its balance, the second pays 25 %
    rules = replace(PROGRAM, max_stacked_share=D("0.40"))
    first = candidate(1, rules=rules, days=10, balance=first_balance)
    second = candidate(2, rules=replace(rules, program_id=2, other_ratio=D("0.25")), days=20)
    # when
    parts = compute_parts(CONTEXT, [first, second])
    # then
    assert (parts[0].amount, parts[0].bound_by) == (first_balance, "balance")
    assert (parts[1].amount, parts[1].bound_by) == expected_second
    assert sum(p.amount for p in parts) <= D("400.00")


def test_annual_cap_counts_earlier_vouchers_of_the_same_program_in_one_booking():
    # given two vouchers of one 20 % program with 150 left under the annual cap
    rules = replace(PROGRAM, annual_cap_per_org=D("1150.00"))
    first = candidate(1, rules=rules, days=10, balance=D("100.00"), annual_used=D("1000.00"))
    second = candidate(2, rules=rules, days=20, annual_used=D("1000.00"))
    # when
    parts = compute_parts(CONTEXT, [second, first])
    # then the second may only take what the first left under the cap: 150 − 100
    assert [(p.amount, p.bound_by) for p in parts] == [(D("100.00"), "balance"), (D("50.00"), "annual_cap")]


def test_rounds_half_up_to_fen_once():
    # given 0.30 × 1000.05 = 300.015
    context = replace(CONTEXT, subtotal=D("1000.05"), accelerator_domestic=True)
    # when / then
    assert one_part(context) == (D("300.02"), "coverage_ratio")


# --- eligibility: each rule refuses with its name; the boundary is the rule just satisfied ----------------------


@pytest.mark.parametrize(
    ("rules_change", "context_change", "candidate_change", "rule"),
    [
        ({}, {"buyer_id": 11}, {}, "organization"),
        ({}, {}, {"status": "revoked"}, "revoked"),
        ({}, {}, {"status": "expired"}, "expired"),
        ({}, {"now": NOW + dt.timedelta(days=30)}, {}, "expired"),  # exactly at expires_at: expired
        ({}, {"listing_reviewed": False, "accelerator_export_controlled": True}, {}, "unreviewed_listing"),
        ({"eligible_provider_ids": frozenset({21, 22})}, {}, {}, "provider_not_eligible"),
        ({"city_data_centers_only": True}, {"data_center_city": "Beijing"}, {}, "data_center_city"),
        ({"eligible_accelerator_ids": frozenset({31})}, {}, {}, "accelerator_not_eligible"),
        ({"requires_model_filing": True}, {}, {}, "model_filing_required"),
        ({}, {"related_party": True}, {}, "related_party"),
    ],
)
def test_ineligible_voucher_names_the_rule(rules_change, context_change, candidate_change, rule):
    # given
    context = replace(CONTEXT, **context_change)
    voucher = candidate(rules=replace(PROGRAM, **rules_change), **candidate_change)
    # when
    with pytest.raises(RulesError) as excinfo:
        compute_parts(context, [voucher])
    # then
    assert [v.rule for v in excinfo.value.violations] == [rule]
    assert f"rule: {rule}" in excinfo.value.messages[0]


@pytest.mark.parametrize(
    ("rules_change", "context_change"),
    [
        ({}, {"now": NOW + dt.timedelta(days=30, microseconds=-1)}),  # one instant before expiry
        ({"require_reviewed_listing": False}, {"listing_reviewed": False}),  # the program allows it
        ({"eligible_provider_ids": frozenset({20})}, {}),  # on the whitelist
        ({"city_data_centers_only": True}, {"data_center_city": "Shanghai"}),
        ({"eligible_accelerator_ids": frozenset({30, 31})}, {}),
        ({"requires_model_filing": True}, {"buyer_has_model_filing": True}),
        ({"ban_related_party": False}, {"related_party": True}),
    ],
)
def test_eligible_at_the_boundary(rules_change, context_change):
    context = replace(CONTEXT, **context_change)
    assert one_part(context, rules=replace(PROGRAM, **rules_change)) == (D("200.00"), "coverage_ratio")


def test_every_ineligible_voucher_is_reported():
    # given one good voucher and two bad ones
    filing_rules = replace(PROGRAM, requires_model_filing=True)
    vouchers = [candidate(1), candidate(2, status="revoked"), candidate(3, rules=filing_rules)]
    # when
    with pytest.raises(RulesError) as excinfo:
        compute_parts(CONTEXT, vouchers)
    # then
    assert [(v.voucher_id, v.rule) for v in excinfo.value.violations] == [(2, "revoked"), (3, "model_filing_required")]


@given(
    subtotal=st.decimals(min_value=0, max_value=10**7, places=2),
    balances=st.lists(st.decimals(min_value=0, max_value=10**6, places=2), min_size=1, max_size=4),
    share=st.decimals(min_value=0, max_value=1, places=4),
    cap=st.decimals(min_value=0, max_value=10**6, places=2),
)
def test_parts_never_exceed_any_limit(subtotal, balances, share, cap):
    # given several vouchers of one program
    rules = replace(PROGRAM, max_stacked_share=share, annual_cap_per_org=cap, per_booking_cap=cap)
    vouchers = [candidate(i, balance=b, rules=rules, days=i + 1) for i, b in enumerate(balances)]
    # when
    parts = compute_parts(replace(CONTEXT, subtotal=subtotal), vouchers)
    # then
    total = sum(p.amount for p in parts)
    assert all(D(0) <= p.amount <= v.balance for p, v in zip(parts, vouchers, strict=True))
    assert all(p.amount <= cap for p in parts)
    assert total <= cap + D("0.005")
    assert total <= (share * subtotal).quantize(D("0.01")) + D("0.01") * len(parts)
    assert total <= subtotal


# --- several vouchers: the split that pays the most, whatever their order (issue 17, defects 1 and 2) -------------


def test_a_later_vouchers_stacking_limit_bounds_the_earlier_ones():
    # given P1 pays 20 % (no stacking limit) and P2 pays 30 % but caps the booking's voucher total at 30 %
    p1 = replace(PROGRAM, program_id=1, other_ratio=D("0.20"))
    p2 = replace(PROGRAM, program_id=2, other_ratio=D("0.30"), max_stacked_share=D("0.30"))
    for p1_days, p2_days in [(10, 20), (20, 10)]:
        vouchers = [candidate(1, rules=p1, days=p1_days), candidate(2, rules=p2, days=p2_days)]
        # when
        parts = compute_parts(CONTEXT, vouchers)
        # then 30 % in total whichever expires first
        assert sum(p.amount for p in parts) == D("300.00"), (p1_days, p2_days)


def test_two_vouchers_of_one_program_share_its_ratio():
    # given two vouchers of one 30 % program, subtotal 800
    rules = replace(PROGRAM, other_ratio=D("0.30"))
    context = replace(CONTEXT, subtotal=D("800.00"))
    # when
    parts = compute_parts(context, [candidate(1, rules=rules, days=10), candidate(2, rules=rules, days=20)])
    # then 240 (30 %), not 480: the first pays it all, the second has nothing left under the ratio
    assert [(p.amount, p.bound_by) for p in parts] == [(D("240.00"), "coverage_ratio"), (D("0.00"), "coverage_ratio")]


def test_two_vouchers_of_one_program_share_its_per_booking_cap():
    # given two vouchers of one 30 % program capped at 200 per booking, subtotal 800
    rules = replace(PROGRAM, other_ratio=D("0.30"), per_booking_cap=D("200.00"))
    context = replace(CONTEXT, subtotal=D("800.00"))
    first = candidate(1, rules=rules, days=10, balance=D("150.00"))
    # when
    parts = compute_parts(context, [candidate(2, rules=rules, days=20), first])
    # then 200 together, the sooner-expiring first
    assert [(p.amount, p.bound_by) for p in parts] == [(D("150.00"), "balance"), (D("50.00"), "per_booking_cap")]


def test_a_program_with_a_low_stacking_limit_is_left_out_when_that_pays_more():
    # given P1 pays 50 % and P2 pays 10 % but allows only 10 % of vouchers in total
    p1 = replace(PROGRAM, program_id=1, other_ratio=D("0.50"))
    p2 = replace(PROGRAM, program_id=2, other_ratio=D("0.10"), max_stacked_share=D("0.10"))
    # when
    parts = compute_parts(CONTEXT, [candidate(2, rules=p2, days=5), candidate(1, rules=p1, days=10)])
    # then P1 alone pays 500; P2 pays nothing and says why
    assert [(p.voucher_id, p.amount, p.bound_by) for p in parts] == [
        (2, D("0.00"), "stacking_limit"),
        (1, D("500.00"), "coverage_ratio"),
    ]


# --- program levels and the real stacking rules ----------------------------------------------------------------


def test_no_other_city_level_subsidy():
    # given Beijing's program stacks with national and district programs only; another city program pays 30 %
    beijing = replace(
        PROGRAM,
        program_id=1,
        other_ratio=D("0.40"),
        level="city",
        stack_levels=frozenset({"national", "provincial", "district"}),
    )
    other_city = replace(PROGRAM, program_id=2, other_ratio=D("0.30"), level="city")
    national = replace(PROGRAM, program_id=3, other_ratio=D("0.10"), level="national")
    vouchers = [
        candidate(1, rules=beijing, days=10),
        candidate(2, rules=other_city, days=5),
        candidate(3, rules=national, days=20),
    ]
    # when
    parts = {p.voucher_id: (p.amount, p.bound_by) for p in compute_parts(CONTEXT, vouchers)}
    # then Beijing (40 %) + national (10 %) beat the other city (30 %) + national (10 %)
    assert parts == {
        1: (D("400.00"), "coverage_ratio"),
        2: (D("0.00"), "stacking_rule"),
        3: (D("100.00"), "coverage_ratio"),
    }


def test_a_program_may_exclude_another_by_id():
    # given P1 excludes P2 by name
    p1 = replace(PROGRAM, program_id=1, other_ratio=D("0.20"), stack_excluded_program_ids=frozenset({2}))
    p2 = replace(PROGRAM, program_id=2, other_ratio=D("0.25"))
    # when
    parts = compute_parts(CONTEXT, [candidate(1, rules=p1), candidate(2, rules=p2)])
    # then only the better one pays
    assert [(p.voucher_id, p.amount, p.bound_by) for p in parts] == [
        (1, D("0.00"), "stacking_rule"),
        (2, D("250.00"), "coverage_ratio"),
    ]


def test_hangzhou_combined_cap_of_sixty_percent():
    # given Hangzhou's voucher pays 50 % and caps all vouchers together at 60 %; another pays 30 %
    hangzhou = replace(PROGRAM, program_id=1, other_ratio=D("0.50"), max_stacked_share=D("0.60"))
    other = replace(PROGRAM, program_id=2, other_ratio=D("0.30"))
    # when
    parts = compute_parts(CONTEXT, [candidate(2, rules=other, days=20), candidate(1, rules=hangzhou, days=10)])
    # then 600 in total: Hangzhou's 500 first (it expires first), the other the rest
    assert [(p.voucher_id, p.amount, p.bound_by) for p in parts] == [
        (1, D("500.00"), "coverage_ratio"),
        (2, D("100.00"), "stacking_limit"),
    ]


@pytest.mark.parametrize(
    ("subtotal", "sme", "ratio"),
    [
        (D("500000.00"), True, D("0.50")),  # exactly at the contract-size limit: the SME tier
        (D("500000.01"), True, D("0.20")),  # one fen over: the ordinary tier
        (D("100000.00"), False, D("0.20")),  # not an SME
    ],
)
def test_sme_contract_size_tier(subtotal, sme, ratio):
    # given Hangzhou: SMEs with contracts up to ¥500k get 50 %
    rules = replace(PROGRAM, sme_contract_limit=D("500000.00"), sme_contract_ratio=D("0.50"))
    context = replace(CONTEXT, subtotal=subtotal, buyer_is_sme=sme)
    # when / then
    assert coverage_ratio(context, rules) == ratio


@pytest.mark.parametrize(
    ("first", "now_offset_days", "refused"),
    [
        (None, 0, False),  # never subsidised: the period has not started
        (NOW - dt.timedelta(days=365), 0, True),  # exactly one year since the first subsidised booking
        (NOW - dt.timedelta(days=364), 0, False),
    ],
)
def test_subsidy_period_from_the_first_subsidised_booking(first, now_offset_days, refused):
    # given Shanghai: subsidised for at most one year
    rules = replace(PROGRAM, subsidy_period_days=365)
    voucher = candidate(rules=rules, first_subsidised_at=first)
    # when / then
    if refused:
        with pytest.raises(RulesError) as excinfo:
            compute_parts(CONTEXT, [voucher])
        assert [v.rule for v in excinfo.value.violations] == ["subsidy_period_over"]
    else:
        assert compute_parts(CONTEXT, [voucher])[0].amount == D("200.00")


@pytest.mark.parametrize(("city", "refused"), [("Beijing", False), ("Shanghai", True), ("", True)])
def test_buyer_registered_city(city, refused):
    # given a program for organizations registered in Beijing or Yangzhou's neighbours
    rules = replace(PROGRAM, eligible_buyer_cities=frozenset({"Beijing", "Tianjin"}))
    context = replace(CONTEXT, buyer_city=city)
    # when / then
    if refused:
        with pytest.raises(RulesError, match="registered"):
            compute_parts(context, [candidate(rules=rules)])
    else:
        assert compute_parts(context, [candidate(rules=rules)])[0].amount == D("200.00")


def test_each_part_explains_its_limit_in_plain_words():
    (part,) = compute_parts(CONTEXT, [candidate(balance=D("10.00"))])
    assert part.explanation == "all that is left on the voucher"


# --- properties: order-independent, within every limit, never below any greedy order ----------------------------

LEVEL = st.sampled_from(["national", "provincial", "city", "district"])


@st.composite
def programs_and_vouchers(draw):
    n_programs = draw(st.integers(1, 4))
    programs = []
    for pid in range(1, n_programs + 1):
        programs.append(
            replace(
                PROGRAM,
                program_id=pid,
                other_ratio=draw(st.decimals(min_value=0, max_value=1, places=2)),
                max_stacked_share=draw(st.decimals(min_value=0, max_value=1, places=2)),
                per_booking_cap=draw(st.none() | st.decimals(min_value=0, max_value=2000, places=2)),
                annual_cap_per_org=draw(st.none() | st.decimals(min_value=0, max_value=2000, places=2)),
                level=draw(LEVEL),
                stack_levels=frozenset(draw(st.lists(LEVEL, min_size=1, max_size=4))),
            )
        )
    used = {p.program_id: draw(st.decimals(min_value=0, max_value=1000, places=2)) for p in programs}
    vouchers = []
    for vid in range(1, draw(st.integers(1, 6)) + 1):
        program = draw(st.sampled_from(programs))
        vouchers.append(
            candidate(
                vid,
                rules=program,
                days=draw(st.integers(1, 5)),
                balance=draw(st.decimals(min_value=0, max_value=1500, places=2)),
                annual_used=used[program.program_id],
            )
        )
    subtotal = draw(st.decimals(min_value=0, max_value=5000, places=2))
    return replace(CONTEXT, subtotal=subtotal), vouchers


def within_every_limit(context, vouchers, parts) -> bool:
    by_id = {v.voucher_id: v for v in vouchers}
    paid = {p.voucher_id: p.amount for p in parts}
    total = sum(paid.values(), D(0))
    by_program: dict[int, D] = {}
    for vid, amount in paid.items():
        assert D(0) <= amount <= by_id[vid].balance
        by_program[by_id[vid].rules.program_id] = by_program.get(by_id[vid].rules.program_id, D(0)) + amount
    paying = {by_id[vid].rules for vid, amount in paid.items() if amount > 0}
    for rules in paying:
        spent = by_program[rules.program_id]
        assert spent <= (coverage_ratio(context, rules) * context.subtotal).quantize(D("0.01"), "ROUND_HALF_UP")
        assert rules.per_booking_cap is None or spent <= rules.per_booking_cap
        used = next(v.annual_used for v in vouchers if v.rules.program_id == rules.program_id)
        assert rules.annual_cap_per_org is None or spent <= rules.annual_cap_per_org - used
        assert total <= (rules.max_stacked_share * context.subtotal).quantize(D("0.01"), "ROUND_HALF_UP")
        assert all(rules.stacks_with(other) for other in paying if other.program_id != rules.program_id)
    return True


def greedy_total(context, ordered) -> D:
    """A reference: each voucher in turn takes what every limit still allows, given the programs already paying;
    one whose program may not be combined with them, or whose stacking limit is already passed, pays nothing."""
    paying: dict[int, tuple] = {}
    total = D(0)
    for voucher in ordered:
        annual_room = (
            voucher.rules.annual_cap_per_org - voucher.annual_used
            if voucher.rules.annual_cap_per_org is not None
            else D("1e9")
        )
        rules = voucher.rules
        others = [r for pid, (r, _) in paying.items() if pid != rules.program_id]
        if not all(rules.stacks_with(r) for r in others):
            continue
        spent = paying.get(rules.program_id, (rules, D(0)))[1]
        limit_share = min([rules.max_stacked_share, *(r.max_stacked_share for r in others)])
        room = min(
            voucher.balance,
            (coverage_ratio(context, rules) * context.subtotal).quantize(D("0.01"), "ROUND_HALF_UP") - spent,
            (rules.per_booking_cap if rules.per_booking_cap is not None else D("1e9")) - spent,
            annual_room - spent,
            (limit_share * context.subtotal).quantize(D("0.01"), "ROUND_HALF_UP") - total,
        )
        if room <= 0:
            continue
        paying[rules.program_id] = (rules, spent + room)
        total += room
    return total


@given(case=programs_and_vouchers(), data=st.data())
def test_split_is_order_independent_within_limits_and_beats_every_greedy_order(case, data):
    # given
    context, vouchers = case
    # when
    parts = compute_parts(context, vouchers)
    shuffled = data.draw(st.permutations(vouchers))
    # then the same split whatever the order
    assert compute_parts(context, shuffled) == parts
    assert within_every_limit(context, vouchers, parts)
    total = sum(p.amount for p in parts)
    assert total >= greedy_total(context, shuffled)
    assert total >= greedy_total(context, sorted(vouchers, key=lambda v: (v.expires_at, v.voucher_id)))


# --- idle capacity: extra ratio on clusters under-used over the last 7 days ---------------------------------------

IDLE = replace(PROGRAM, idle_threshold_percent=D("30.00"), idle_extra_ratio=D("0.1000"))


@pytest.mark.parametrize(
    ("program", "utilisation", "ratio"),
    [
        (IDLE, D("0.2999"), D("0.30")),  # just below 30 %: the extra 10 % on top of the 20 % tier
        (IDLE, D("0.3000"), D("0.20")),  # exactly at the threshold: not below it, no extra
        (IDLE, D("0"), D("0.30")),  # an idle cluster
        (IDLE, None, D("0.20")),  # nothing listed over the week: unknown, no extra
        (PROGRAM, D("0"), D("0.20")),  # a program without the rule
        (replace(IDLE, idle_threshold_percent=D("0")), D("0"), D("0.20")),  # a 0 % threshold: nothing is below
        (replace(IDLE, idle_threshold_percent=D("100")), D("0.9999"), D("0.30")),
        (replace(IDLE, other_ratio=D("0.95")), D("0"), D("1")),  # never above the whole subtotal
    ],
)
def test_idle_capacity_extra_ratio(program, utilisation, ratio):
    # given a booking on a cluster with that 7-day utilisation
    context = replace(CONTEXT, cluster_utilisation=utilisation)
    # when / then the ratio, and the part it pays
    assert coverage_ratio(context, program) == ratio
    assert one_part(context, rules=program) == (ratio * context.subtotal, "coverage_ratio")


def test_idle_capacity_extra_adds_to_the_sme_and_domestic_tiers():
    # given a domestic chip, an SME buyer with a 5 % bonus and a cluster at 10 %
    rules = replace(IDLE, sme_bonus_ratio=D("0.05"))
    context = replace(CONTEXT, accelerator_domestic=True, buyer_is_sme=True, cluster_utilisation=D("0.10"))
    # when / then 30 % + 5 % + 10 %
    assert coverage_ratio(context, rules) == D("0.45")


@given(
    threshold=st.decimals(min_value=0, max_value=100, places=2),
    extra=st.decimals(min_value=0, max_value=1, places=4),
    utilisation=st.one_of(st.none(), st.decimals(min_value=0, max_value=1, places=4)),
)
def test_idle_capacity_extra_applies_exactly_below_the_threshold(threshold, extra, utilisation):
    # given any rule and any utilisation
    rules = replace(PROGRAM, idle_threshold_percent=threshold, idle_extra_ratio=extra)
    context = replace(CONTEXT, cluster_utilisation=utilisation)
    # when
    ratio = coverage_ratio(context, rules)
    # then the extra is added exactly when the utilisation is known and below the threshold, capped at 1
    below = utilisation is not None and utilisation * 100 < threshold
    assert ratio == min(PROGRAM.other_ratio + (extra if below else 0), 1)
    assert ratio >= coverage_ratio(replace(context, cluster_utilisation=None), rules)

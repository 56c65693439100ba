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
CONTEXT = BookingContext(subtotal=D("1000.00"), buyer_id=10, provider_id=20, data_center_city="Shanghai",
                         accelerator_id=30, now=NOW)


def candidate(voucher_id=1, *, balance=D("100000.00"), rules=PROGRAM, days=30, **kwargs) -> VoucherCandidate:
    return VoucherCandidate(voucher_id=voucher_id, holder_id=10, expires_at=NOW + dt.timedelta(days=days),
                            balance=balance, rules=rules, **kwargs)


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
        (replace(PROGRAM, model_filing_earns_domestic_ratio=True), replace(CONTEXT, buyer_has_model_filing=True),
         D("0.30")),  # Hangzhou: domestic chips OR a registered model
        (replace(PROGRAM, model_filing_earns_domestic_ratio=True), CONTEXT, D("0.20")),  # no filing → other tier
        (replace(PROGRAM, sme_bonus_ratio=D("0.10")), replace(CONTEXT, buyer_is_sme=True), D("0.30")),  # SME bonus
        (replace(PROGRAM, sme_bonus_ratio=D("0.10")), CONTEXT, D("0.20")),  # bonus only for SMEs
        (replace(PROGRAM, other_ratio=D("0.95"), sme_bonus_ratio=D("0.10")), replace(CONTEXT, buyer_is_sme=True),
         D("1")),  # never above the whole subtotal
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
    # given two vouchers of one program with 300 left under the annual cap
    rules = replace(PROGRAM, annual_cap_per_org=D("1300.00"))
    first = candidate(1, rules=rules, days=10, annual_used=D("1000.00"))
    second = candidate(2, rules=rules, days=20, annual_used=D("1000.00"))
    # when
    parts = compute_parts(CONTEXT, [first, second])
    # then the second may only take what the first left: 300 − 200
    assert [(p.amount, p.bound_by) for p in parts] == [(D("200.00"), "coverage_ratio"), (D("100.00"), "annual_cap")]


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

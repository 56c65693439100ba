"""orders.matching_lp: the LP relaxation by column generation, checked against the full enumerated LP and the exact
integer optimum (scipy ``milp``) on small random markets (no database)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from hypothesis import HealthCheck, given, settings
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import coo_matrix

from bench.matching_lp import aggregate_bound, lp_relaxation, lp_upper_bound
from orders.matching import Ask, Bid, clear, total_surplus
from tests.orders.test_matching import ALL, ask, bid, busy, markets, voucher_markets


def _slots(bids, asks):
    """Every column of the full model, by plain enumeration (independent of the numpy code under test):
    (bid index, ask, start, value, free nodes throughout), each with at least ``nodes`` such nodes. A bid with
    vouchers: only the listings of its net-price table, valued at its net price there."""
    masks = {}
    for a in asks:
        masks.setdefault(a.cluster_id, a.node_free)
    slots = []
    for i, b in enumerate(bids):
        for a in asks:
            if b.net_prices is not None and a.listing_id not in b.net_prices:
                continue
            price = a.price if b.net_prices is None else b.net_prices[a.listing_id]
            if (
                a.accelerator not in b.accelerators
                or not price < b.max_price
                or b.duration_hours < a.min_hours
                or (b.max_gpus_per_node and a.gpus_per_node > b.max_gpus_per_node)
            ):
                continue
            for start in range(max(b.earliest_start, a.start), min(b.latest_end, a.end) - b.duration_hours + 1):
                window = ((1 << b.duration_hours) - 1) << start
                free = [n for n, m in enumerate(masks[a.cluster_id]) if m & window == window]
                if len(free) >= b.nodes:
                    value = float((b.max_price - price) * a.gpus_per_node * b.nodes * b.duration_hours)
                    slots.append((i, a, start, value, free))
    return slots


def _full_lp(bids, asks) -> float:
    """The LP relaxation on the fully enumerated model: Σ x ≤ 1 per bid, Σ nodes·x ≤ free nodes per cluster-hour."""
    slots = _slots(bids, asks)
    if not slots:
        return 0.0
    masks = {}
    for a in asks:
        masks.setdefault(a.cluster_id, a.node_free)
    rows, cols, vals, rhs, capacity_row = [], [], [], [float(1)] * len(bids), {}
    for j, (i, a, start, _value, _free) in enumerate(slots):
        rows.append(i)
        cols.append(j)
        vals.append(1.0)
        for hour in range(start, start + bids[i].duration_hours):
            key = (a.cluster_id, hour)
            if key not in capacity_row:
                capacity_row[key] = len(rhs)
                rhs.append(float(sum(1 for m in masks[a.cluster_id] if m >> hour & 1)))
            rows.append(capacity_row[key])
            cols.append(j)
            vals.append(float(bids[i].nodes))
    matrix = coo_matrix((vals, (rows, cols)), shape=(len(rhs), len(slots))).tocsc()
    result = linprog([-s[3] for s in slots], A_ub=matrix, b_ub=rhs, bounds=(0, None), method="highs")
    assert result.status == 0
    return -result.fun


def _ip_optimum(bids, asks) -> float:
    """The exact optimum of the matching problem (all-or-nothing, one cluster, the same nodes all along, no node
    hour used twice) by scipy ``milp``: x per slot, y per (slot, node free throughout), Σ y = nodes·x."""
    slots = _slots(bids, asks)
    if not slots:
        return 0.0
    n_x = len(slots)
    y_index = [(j, n) for j, s in enumerate(slots) for n in s[4]]
    rows, cols, vals, lower, upper = [], [], [], [], []

    def row(entries, lo, hi):
        for col, val in entries:
            rows.append(len(lower))
            cols.append(col)
            vals.append(val)
        lower.append(lo)
        upper.append(hi)

    for i in range(len(bids)):  # each bid at most once
        row([(j, 1.0) for j, s in enumerate(slots) if s[0] == i], -np.inf, 1.0)
    for j, s in enumerate(slots):  # all-or-nothing: exactly ``nodes`` nodes when chosen
        row(
            [(j, -float(bids[s[0]].nodes))] + [(n_x + k, 1.0) for k, (jj, _) in enumerate(y_index) if jj == j], 0.0, 0.0
        )
    node_hours: dict[tuple, list[int]] = {}
    for k, (j, n) in enumerate(y_index):
        i, a, start, _value, _free = slots[j]
        for hour in range(start, start + bids[i].duration_hours):
            node_hours.setdefault((a.cluster_id, n, hour), []).append(n_x + k)
    for columns in node_hours.values():  # a node-hour once
        row([(c, 1.0) for c in columns], -np.inf, 1.0)
    n = n_x + len(y_index)
    matrix = coo_matrix((vals, (rows, cols)), shape=(len(lower), n)).tocsc()
    result = milp(
        np.r_[[-s[3] for s in slots], np.zeros(len(y_index))],
        integrality=np.ones(n),
        bounds=Bounds(0, 1),
        constraints=LinearConstraint(matrix, lower, upper),
    )
    assert result.status == 0
    return -result.fun


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def _at_least(bound: float, value) -> bool:
    # HiGHS solves to a relative tolerance (~1e-7): allow for it, relative to the size of the bound.
    return bound >= float(value) - 1e-6 * max(1.0, abs(bound))


# --- hand-checked ------------------------------------------------------------------------------------------------


def test_bound_counts_capacity_per_cluster_not_per_price_class():
    # given: two 1-node clusters at the same price (one class for the aggregate LP), each free for one of two
    # halves of the horizon; a 4-hour bid that only fits if the two halves could be joined
    asks = [ask(1, "5", nodes=1, end=4, masks=[busy([2, 3])]), ask(2, "5", nodes=1, end=4, masks=[busy([0, 1])])]
    bids = [bid(1, "9", hours=4, latest=4)]
    # when
    exact = lp_relaxation(bids, asks)
    # then: no cluster has the node for 4 hours, so the LP (and any plan) has nothing; the class LP sees 1/hour
    assert exact.bound == 0.0
    assert aggregate_bound(bids, asks) > 0


def test_bound_of_two_listings_sharing_one_cluster():
    # given: one 1-node cluster listed twice (5 and 6 per GPU-hour) for hours 0..2; two 2-hour bids
    asks = [ask(1, "5", cluster_id=7, nodes=1, end=2), ask(2, "6", cluster_id=7, nodes=1, end=2)]
    bids = [bid(1, "9", hours=2), bid(2, "8", hours=2)]
    # when
    result = lp_relaxation(bids, asks)
    # then: the node serves one bid only: the best is the 9-bid on the 5-listing, 4 × 16 GPU-hours
    assert result.exact
    assert _close(result.bound, 64.0)
    assert _close(result.lower, 64.0)


def test_stopped_early_the_bound_is_still_an_upper_bound():
    # given: a market where one round of column generation is not enough
    asks = [ask(c, str(4 + c % 3), nodes=2, end=12, masks=[busy([c % 5]), ALL]) for c in range(1, 7)]
    bids = [bid(b, str(8 + b % 4), nodes=1 + b % 2, hours=2 + b % 3, earliest=b % 4, latest=12) for b in range(1, 25)]
    # when
    early = lp_relaxation(bids, asks, max_rounds=1, columns_per_bid=1)
    full = _full_lp(bids, asks)
    # then
    assert not early.exact
    assert _at_least(early.bound, full)
    assert early.lower <= full + 1e-6 * full


# --- properties on random small markets --------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markets())
def test_column_generation_reaches_the_full_lp(market):
    # given
    bids, asks = market
    # when
    result = lp_relaxation(bids, asks)
    # then: converged, and equal to the LP on every column at once; warm-started too
    assert result.exact
    full = _full_lp(bids, asks)
    assert _close(result.bound, full)
    assert _close(lp_relaxation(bids, asks, warm_start=True).bound, full)
    assert _at_least(aggregate_bound(bids, asks), full)  # the class LP is a looser relaxation


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markets())
def test_bound_is_at_least_the_integer_optimum_and_the_heuristic(market):
    # given
    bids, asks = market
    # when
    bound = lp_upper_bound(bids, asks)
    optimum = _ip_optimum(bids, asks)
    plan = total_surplus(clear(bids, asks, time_budget_s=1.0))
    # then
    assert _at_least(bound, optimum)
    assert _at_least(optimum, plan)  # clear's plan is feasible, so never above the optimum


def test_decimal_prices_are_bounded_like_floats():
    # given: the service passes Decimal prices
    asks = [
        Ask(
            listing_id=1,
            cluster_id=1,
            accelerator="h100",
            price=Decimal("5.5"),
            gpus_per_node=8,
            start=0,
            end=4,
            node_free=(ALL,),
        )
    ]
    bids = [
        Bid(
            bid_id=1,
            accelerators=frozenset({"h100"}),
            nodes=1,
            duration_hours=2,
            earliest_start=0,
            latest_end=4,
            max_price=Decimal("7.25"),
        )
    ]
    # when / then: two 2-hour slots fit the node one after the other, but there is only one bid
    assert _close(lp_upper_bound(bids, asks), 1.75 * 16)


def test_a_warm_start_that_prices_every_column_out_still_solves_a_master():
    # given (found by hypothesis) two 2-hour bids that can only share one node's two free hours in a row, and two
    # bids priced at the ask: the class LP's duals price every column out, yet its value is not the LP optimum
    bids = [
        bid(1, "2", hours=2, latest=7),
        bid(2, "1", hours=1, latest=1),
        bid(3, "1", hours=1, latest=1),
        bid(4, "2", hours=2, latest=7),
    ]
    asks = [ask(10, "1", cluster_id=1, gpus=4, end=7, masks=[0b100, 0b1101000])]
    full = _full_lp(bids, asks)
    # when
    warm = lp_relaxation(bids, asks, warm_start=True)
    # then a first master is solved whatever the starting duals say, and the bound is the LP optimum
    assert warm.exact
    assert _close(warm.bound, full)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(voucher_markets())
def test_with_voucher_bids_column_generation_reaches_the_full_lp_above_the_optimum(market):
    # given: some bids carry net-price tables
    bids, asks = market
    # when
    result = lp_relaxation(bids, asks)
    # then: the LP over their eligible listings at their net prices, warm-started or not, bounds the optimum
    full = _full_lp(bids, asks)
    assert result.exact
    assert _close(result.bound, full)
    assert _close(lp_relaxation(bids, asks, warm_start=True).bound, full)
    assert _at_least(aggregate_bound(bids, asks), full)
    assert _at_least(full, _ip_optimum(bids, asks))


def test_class_bound_counts_voucher_bids_against_the_capacity_where_they_may_pay():
    # given: two 1-node clusters at one price (one class); two voucher bids may only use listing 1 (their city),
    # for the whole window each: one of them fits; pooling the class would let both in
    asks = [ask(1, "5", nodes=1, end=4), ask(2, "5", nodes=1, end=4)]
    bids = [bid(1, "9", hours=4, latest=4, net_prices={1: "4"}), bid(2, "9", hours=4, latest=4, net_prices={1: "4"})]
    # when
    bound = aggregate_bound(bids, asks)
    # then: one bid, (9 − 4) × 8 GPUs × 4 h
    assert _close(bound, 160.0)
    assert _close(lp_relaxation(bids, asks, warm_start=True).bound, 160.0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(voucher_markets())
def test_seeded_bounds_stay_above_the_lp_and_converge(market):
    # given: a plan to seed the first master with
    bids, asks = market
    plan = clear(bids, asks, time_budget_s=0.2)
    full = _full_lp(bids, asks)
    # when: one round only; and to the end
    early = lp_relaxation(bids, asks, warm_start=True, seed=plan, max_rounds=1)
    converged = lp_relaxation(bids, asks, warm_start=True, seed=plan)
    # then: every bound is an upper bound of the LP, the first master at least the seeded plan's surplus
    assert _at_least(early.bound, full)
    assert _at_least(early.lower, total_surplus(plan))
    assert converged.exact
    assert _close(converged.bound, full)

"""orders.matching_exact and batch clearing's use of it: hand-made markets with known optima, and property tests
(every plan books as planned; the exact value is the brute-force optimum and never below the heuristic's). No
database."""

from __future__ import annotations

import itertools
import random
from decimal import Decimal
from unittest import mock

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from orders import matching, matching_exact
from orders.matching import Ask, Bid, clear, total_surplus
from tests.orders.test_matching import _check_feasible, ask, bid, busy, markets, voucher_markets


def heuristic(bids, asks, budget=1.0):
    """``clear`` as it was before the exact engine: greedy and local search only."""
    with mock.patch.object(matching, "_exactly_improved", lambda plan, *args, **kwargs: plan):
        return clear(bids, asks, time_budget_s=budget)


def _books_as_planned(plan, asks) -> bool:
    """Booked in order, each on the lowest-numbered nodes free for its window (as ``booking_create`` does), every
    assignment of ``plan`` gets exactly its planned nodes."""
    masks = {}
    for a in asks:
        masks.setdefault(a.cluster_id, list(a.node_free))
    for a in plan:
        window = ((1 << (a.end - a.start)) - 1) << a.start
        free = [i for i, m in enumerate(masks[a.cluster_id]) if m & window == window][: a.nodes]
        if tuple(i + 1 for i in free) != a.node_indexes:
            return False
        for i in free:
            masks[a.cluster_id][i] &= ~window
    return True


def _as_assignments(placements):
    return [matching._assignment(p.bid, p.ask, p.start, p.positions) for p in placements]


# --- hand-made markets ------------------------------------------------------------------------------------------


def test_exact_seats_two_bids_where_the_heuristic_keeps_one_larger():
    # given: one 2-node cluster at 2 (node 1 busy at hour 0, node 2 at hours 5–6); bid 1 wants both nodes for 4
    # hours in [0, 5), bid 2 both nodes for 1 hour in [2, 5), bid 3 one node for [4, 7): bid 1 collides with
    # both others, which fit together (bid 2 at hour 2 or 3, bid 3 on node 1)
    asks = [ask(1, "2", masks=[busy([0]), busy([5, 6])])]
    bids = [
        bid(1, "4", nodes=2, hours=4, earliest=0, latest=5),  # (4 − 2) × 8 × 2 × 4 = 128
        bid(2, "9", nodes=2, hours=1, earliest=2, latest=5),  # 7 × 8 × 2 = 112
        bid(3, "6", nodes=1, hours=3, earliest=4, latest=7),  # 4 × 8 × 3 = 96
    ]
    # when
    before = heuristic(bids, asks)
    exact = matching_exact.solve(bids, asks)
    plan = clear(bids, asks)
    # then: the heuristic keeps the largest bid (128); the optimum seats the other two (208)
    assert total_surplus(before) == 128
    assert exact.optimal and exact.value == 208
    assert sorted(a.bid_id for a in plan) == [2, 3]
    assert total_surplus(plan) == 208
    assert _books_as_planned(plan, asks)


def test_two_bookings_that_fit_node_by_node_but_not_as_booked_are_not_both_planned():
    # given: six nodes; A needs 2 nodes for [4, 7) (free then: nodes 2, 4, 6), B 2 nodes for [0, 6) (nodes 2, 4,
    # 5). Node by node both fit (A on 4 and 6, B on 2 and 5), but booked in either order the first takes nodes 2
    # and 4 (the lowest free), and the second finds one node left
    masks = [busy([5, 6]), busy([7]), busy([0, 2, 5]), busy([]), busy([6]), busy([3, 7])]
    asks = [ask(1, "1", masks=masks)]
    a = bid(1, "3", nodes=2, hours=3, earliest=4, latest=7)  # 2 × 8 × 2 × 3 = 96
    b = bid(2, "3", nodes=2, hours=6, earliest=0, latest=6)  # 2 × 8 × 2 × 6 = 192
    # when
    exact = matching_exact.solve([a, b], asks)
    plan = clear([a, b], asks)
    # then: only the more valuable one; the per-hour counts alone would have planned both (288)
    assert exact.optimal and exact.value == 192
    assert [x.bid_id for x in plan] == [2]
    assert _books_as_planned(plan, asks)


def test_a_third_booking_that_steers_the_other_two_apart_is_planned_with_them():
    # given: six nodes over hours 0–4; A: 2 nodes for [1, 4), B: 4 nodes for [0, 3), C: 3 nodes for [3, 4).
    # A and B alone cannot be booked in either order (whichever goes first takes nodes the other needs), but
    # booking C first (nodes 1–3 at hour 3) makes A take nodes 4–5 and leaves B nodes 1, 2, 3 and 6
    masks = [busy([]), busy([4]), busy([]), busy([]), busy([0, 4]), busy([3, 4])]
    asks = [ask(1, "1", masks=masks)]
    a = bid(1, "2", nodes=2, hours=3, earliest=1, latest=4)  # 1 × 8 × 2 × 3 = 48
    b = bid(2, "2", nodes=4, hours=3, earliest=0, latest=3)  # 1 × 8 × 4 × 3 = 96
    c = bid(3, "2", nodes=3, hours=1, earliest=3, latest=4)  # 1 × 8 × 3 × 1 = 24
    # when
    all_three = matching_exact.solve([a, b, c], asks)
    only_two = matching_exact.solve([a, b], asks)
    plan = clear([a, b, c], asks)
    # then: all three (168); without C only one of A and B (96): being unbookable is not inherited by supersets
    assert all_three.optimal and all_three.value == 168
    assert only_two.optimal and only_two.value == 96
    assert sorted(x.bid_id for x in plan) == [1, 2, 3]
    assert _books_as_planned(plan, asks)
    assert _books_as_planned(_as_assignments(all_three.placements), asks)


def test_a_market_with_no_slot_clears_to_nothing():
    # given: the only bid cannot afford the only ask
    asks = [ask(1, "10")]
    # when / then
    assert matching_exact.solve([bid(1, "9")], asks).placements == ()
    assert clear([bid(1, "9")], asks) == []


def test_a_market_past_the_size_limit_is_refused():
    # given
    asks = [ask(1, "1", nodes=4)]
    bids = [bid(i, "5", hours=2) for i in range(1, 4)]
    # when / then: 3 bids × 47 starts
    try:
        matching_exact.solve(bids, asks, max_slots=100)
    except matching_exact.TooLarge:
        pass
    else:
        raise AssertionError("expected TooLarge")


def test_neighbourhood_search_finds_the_pair_the_heuristic_misses():
    # given: the first market above, improved from the heuristic's plan by neighbourhoods only
    asks = [ask(1, "2", masks=[busy([0]), busy([5, 6])])]
    bids = [
        bid(1, "4", nodes=2, hours=4, earliest=0, latest=5),
        bid(2, "9", nodes=2, hours=1, earliest=2, latest=5),
        bid(3, "6", nodes=1, hours=3, earliest=4, latest=7),
    ]
    start = heuristic(bids, asks)
    # when
    improved = _as_assignments(matching_exact.improve(bids, asks, start, deadline=_in(5.0)))
    # then
    assert total_surplus(improved) == 208
    assert _books_as_planned(improved, asks)


def _in(seconds: float) -> float:
    import time

    return time.monotonic() + seconds


# --- properties -------------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markets())
def test_clear_plans_are_feasible_node_by_node_and_book_as_planned(market):
    # given
    bids, asks = market
    # when
    plan = clear(bids, asks, time_budget_s=1.0)
    # then
    _check_feasible(plan, bids, asks)
    assert _books_as_planned(plan, asks)
    assert total_surplus(plan) >= total_surplus(heuristic(bids, asks))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(voucher_markets())
def test_clear_plans_with_voucher_bids_are_feasible_and_book_as_planned(market):
    # given
    bids, asks = market
    # when
    plan = clear(bids, asks, time_budget_s=1.0)
    # then
    _check_feasible(plan, bids, asks)
    assert _books_as_planned(plan, asks)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markets())
def test_the_exact_value_is_never_below_the_heuristics(market):
    # given
    bids, asks = market
    before = heuristic(bids, asks)
    # when: solved from scratch, and warm-started with the heuristic's plan
    cold = matching_exact.solve(bids, asks)
    warm = matching_exact.solve(bids, asks, start=before)
    # then: both optimal, the same value, never below the heuristic's; and their plans book as planned
    value = float(total_surplus(before))
    assert cold.optimal and warm.optimal
    assert cold.value >= value - 1e-6 and abs(cold.value - warm.value) <= 1e-6
    for exact in (cold, warm):
        plan = _as_assignments(exact.placements)
        _check_feasible(plan, bids, asks)
        assert _books_as_planned(plan, asks)
        assert abs(float(total_surplus(plan)) - exact.value) <= 1e-6


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markets())
def test_the_neighbourhood_search_never_loses_surplus_and_books_as_planned(market):
    # given
    bids, asks = market
    before = heuristic(bids, asks)
    # when
    improved = _as_assignments(matching_exact.improve(bids, asks, before, deadline=_in(0.5)))
    # then
    _check_feasible(improved, bids, asks)
    assert _books_as_planned(improved, asks)
    assert total_surplus(improved) >= total_surplus(before)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markets())
def test_clear_past_the_size_limit_improves_by_neighbourhoods_and_books_as_planned(market):
    # given: every market counts as too large for the whole-market MILP
    bids, asks = market
    # when
    with mock.patch.object(matching, "EXACT_SLOTS", 0):
        plan = clear(bids, asks, time_budget_s=0.5)
    # then
    _check_feasible(plan, bids, asks)
    assert _books_as_planned(plan, asks)
    assert total_surplus(plan) >= total_surplus(heuristic(bids, asks))


def test_stopped_by_its_time_limit_the_exact_solver_still_returns_a_plan_that_books_as_planned():
    # given: 60 bids on 4 clusters with busy nodes, far too many to prove optimal in 20 ms
    rng = random.Random(3)
    asks = [
        ask(c, str(rng.randint(5, 9)), masks=[busy(rng.sample(range(48), 6)) for _ in range(rng.randint(2, 8))])
        for c in range(1, 5)
    ]
    bids = []
    for i in range(1, 61):
        hours = rng.randint(2, 12)
        earliest = rng.randint(0, 48 - hours)
        bids.append(
            bid(
                i,
                str(rng.randint(6, 15)),
                nodes=rng.randint(1, 4),
                hours=hours,
                earliest=earliest,
                latest=min(48, earliest + hours + rng.randint(0, 6)),
            )
        )
    start = heuristic(bids, asks, budget=0.0)
    # when
    exact = matching_exact.solve(bids, asks, time_limit_s=0.02, start=start)
    # then: whatever it found in time, at least its start, booking as planned
    plan = _as_assignments(exact.placements)
    _check_feasible(plan, bids, asks)
    assert _books_as_planned(plan, asks)
    assert exact.value >= float(total_surplus(start)) - 1e-6


TINY_HORIZON = 6
tiny_masks = st.integers(min_value=0, max_value=(1 << TINY_HORIZON) - 1)


@st.composite
def tiny_markets(draw):
    """1–2 clusters of 1–4 nodes over 6 hours (a cluster may carry two listings sharing its nodes) and 1–4
    bids: small enough to enumerate every plan."""
    asks = []
    for c in range(1, draw(st.integers(1, 2)) + 1):
        node_masks = tuple(draw(tiny_masks) for _ in range(draw(st.integers(1, 4))))
        for listing in range(draw(st.integers(1, 2))):
            start = draw(st.integers(0, TINY_HORIZON - 1))
            asks.append(
                Ask(
                    listing_id=c * 10 + listing,
                    cluster_id=c,
                    accelerator="h100",
                    price=draw(st.integers(1, 6)),
                    gpus_per_node=1,
                    start=start,
                    end=draw(st.integers(start + 1, TINY_HORIZON)),
                    node_free=node_masks,
                    created=c * 10 + listing,
                )
            )
    bids = []
    for b in range(1, draw(st.integers(1, 4)) + 1):
        hours = draw(st.integers(1, 3))
        earliest = draw(st.integers(0, TINY_HORIZON - hours))
        bids.append(
            Bid(
                bid_id=b,
                accelerators=frozenset({"h100"}),
                nodes=draw(st.integers(1, 3)),
                duration_hours=hours,
                earliest_start=earliest,
                latest_end=draw(st.integers(earliest + hours, TINY_HORIZON)),
                max_price=draw(st.integers(1, 9)),
                created=b,
            )
        )
    return bids, asks


def _brute_force_optimum(bids, asks) -> int:
    """The most surplus of any plan that books as planned, by enumeration: every choice of a slot (listing and
    start) or none per bid, kept when each cluster's share books in some order on the lowest-numbered free
    nodes. Independent of the engine's code."""
    options = []
    for b in bids:
        slots = [None]
        for a in asks:
            if a.price < b.max_price:
                first, last = max(b.earliest_start, a.start), min(b.latest_end, a.end) - b.duration_hours
                slots += [(a, s) for s in range(first, last + 1)]
        options.append(slots)
    assume(sum(len(o) for o in options) <= 40)
    best = 0
    for choice in itertools.product(*options):
        fills = [(b, slot) for b, slot in zip(bids, choice, strict=True) if slot is not None]
        value = sum((b.max_price - a.price) * b.nodes * b.duration_hours for b, (a, _) in fills)
        if value > best and all(
            _bookable(asks, [f for f in fills if f[1][0].cluster_id == c]) for c in {f[1][0].cluster_id for f in fills}
        ):
            best = value
    return best


def _bookable(asks, fills) -> bool:
    masks = next(a.node_free for a in asks if a.cluster_id == fills[0][1][0].cluster_id)
    for order in itertools.permutations(fills):
        state = list(masks)
        for b, (_, start) in order:
            window = ((1 << b.duration_hours) - 1) << start
            free = [i for i, m in enumerate(state) if m & window == window][: b.nodes]
            if len(free) < b.nodes:
                break
            for i in free:
                state[i] &= ~window
        else:
            return True
    return False


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(tiny_markets())
def test_the_exact_value_is_the_brute_force_optimum(market):
    # given
    bids, asks = market
    # when
    exact = matching_exact.solve(bids, asks)
    # then
    assert exact.optimal
    assert abs(exact.value - _brute_force_optimum(bids, asks)) <= 1e-6
    assert _books_as_planned(_as_assignments(exact.placements), asks)


def test_decimal_prices_give_the_same_plan_value():
    # given: the first hand-made market with Decimal prices (the service's kind)
    asks = [ask(1, "2.5", masks=[busy([0]), busy([5, 6])])]
    bids = [bid(1, "4.5", nodes=2, hours=4, latest=5), bid(2, "9.25", nodes=2, hours=1, earliest=2, latest=5)]
    # when
    plan = clear(bids, asks)
    # then: the surplus stays exact (Decimal)
    assert isinstance(total_surplus(plan), Decimal)
    assert total_surplus(plan) == max(Decimal("2") * 64, Decimal("6.75") * 16)

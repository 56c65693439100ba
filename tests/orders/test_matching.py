"""orders.matching: hand-checked small markets and property tests (no database)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.matching_lp import lp_upper_bound
from orders.matching import Ask, Bid, clear, continuous, match_one, total_surplus

ALL = (1 << 48) - 1  # free for the whole horizon


def ask(
    listing_id,
    price,
    *,
    cluster_id=None,
    accelerator="h100",
    nodes=2,
    gpus=8,
    start=0,
    end=48,
    masks=None,
    created=None,
    min_hours=1,
):
    return Ask(
        listing_id=listing_id,
        cluster_id=cluster_id or listing_id,
        accelerator=accelerator,
        price=Decimal(price),
        gpus_per_node=gpus,
        start=start,
        end=end,
        node_free=tuple(masks) if masks is not None else (ALL,) * nodes,
        created=created if created is not None else listing_id,
        min_hours=min_hours,
    )


def bid(
    bid_id, max_price, *, nodes=1, hours=2, earliest=0, latest=48, accelerators=("h100",), created=None, net_prices=None
):
    return Bid(
        bid_id=bid_id,
        accelerators=frozenset(accelerators),
        nodes=nodes,
        duration_hours=hours,
        earliest_start=earliest,
        latest_end=latest,
        max_price=Decimal(max_price),
        created=created if created is not None else bid_id,
        net_prices=None if net_prices is None else {k: Decimal(v) for k, v in net_prices.items()},
    )


def busy(hours) -> int:
    mask = ALL
    for hour in hours:
        mask &= ~(1 << hour)
    return mask


# --- continuous mode --------------------------------------------------------------------------------------------


def test_match_one_takes_the_cheapest_feasible_ask_at_the_ask_price():
    # given
    asks = [ask(1, "12"), ask(2, "9"), ask(3, "10")]
    # when
    result = match_one(bid(1, "11", nodes=2, hours=3), asks)
    # then
    assert (result.listing_id, result.start, result.end, result.price) == (2, 0, 3, Decimal("9"))
    assert result.gpu_hours == 8 * 2 * 3
    assert result.surplus == (Decimal("11") - Decimal("9")) * 48
    assert result.node_indexes == (1, 2)


def test_match_one_never_pays_above_the_bid_max():
    # given: the only ask is dearer than the bid
    asks = [ask(1, "10.0001")]
    # when / then
    assert match_one(bid(1, "10"), asks) is None


def test_match_one_is_all_or_nothing_on_one_cluster():
    # given: two clusters with one node each; the bid wants two nodes
    asks = [ask(1, "5", nodes=1), ask(2, "5", nodes=1)]
    # when / then
    assert match_one(bid(1, "10", nodes=2), asks) is None


def test_match_one_ties_prefer_earliest_start_then_oldest_listing():
    # given: same price; listing 1 (older) is busy at hour 0, listing 2 is free at once, listing 3 too but newer
    asks = [
        ask(1, "5", nodes=1, masks=[busy([0])], created=1),
        ask(3, "5", nodes=1, created=3),
        ask(2, "5", nodes=1, created=2),
    ]
    # when
    result = match_one(bid(1, "9", hours=2), asks)
    # then: earliest start (0) wins over the older listing; among those, the older listing (2) wins
    assert (result.listing_id, result.start) == (2, 0)


def test_match_one_finds_a_window_that_only_fits_late():
    # given: node 1 busy hours 0..9, node 2 busy hours 0..5 and 12..13; the bid needs 2 nodes for 3 hours
    asks = [ask(1, "5", masks=[busy(range(10)), busy([*range(6), 12, 13])])]
    # when
    result = match_one(bid(1, "9", nodes=2, hours=3, earliest=0, latest=20), asks)
    # then: hours 14..16 are the first where both nodes are free for 3 contiguous hours
    assert (result.start, result.end) == (14, 17)


def test_match_one_respects_the_bid_window_and_the_listing_window():
    # given: the listing opens at hour 10; the bid must end by hour 11
    asks = [ask(1, "5", start=10, end=48)]
    # when / then
    assert match_one(bid(1, "9", hours=2, latest=11), asks) is None
    assert match_one(bid(1, "9", hours=2, latest=12), asks).start == 10


def test_match_one_skips_other_accelerators_and_short_bids_below_min_hours():
    # given
    asks = [ask(1, "1", accelerator="ascend-910b"), ask(2, "6", min_hours=4), ask(3, "7")]
    # when
    result = match_one(bid(1, "9", hours=2), asks)
    # then
    assert result.listing_id == 3


def test_contiguous_hours_need_the_same_nodes_all_along():
    # given: each hour has one free node, but no node is free for both hours
    asks = [ask(1, "5", masks=[busy([1]), busy([0])])]
    # when / then
    assert match_one(bid(1, "9", nodes=1, hours=2, latest=2), asks) is None


# --- batch clearing ---------------------------------------------------------------------------------------------


def test_clear_gives_scarce_capacity_to_the_higher_surplus_bid():
    # given: one node for hours 0..2; an early low bid and a later high bid want it
    asks = [ask(1, "5", nodes=1, end=2)]
    bids = [bid(1, "6", hours=2, created=1), bid(2, "9", hours=2, created=2)]
    # when
    plan = clear(bids, asks)
    continuous_plan = continuous(bids, asks)
    # then
    assert [a.bid_id for a in plan] == [2]
    assert [a.bid_id for a in continuous_plan] == [1]
    assert total_surplus(plan) == Decimal("4") * 16


def test_clear_improvement_seats_two_bids_where_greedy_seats_one():
    # given: a high bid that could use either cluster grabs the cheap one that the second bid needs
    asks = [ask(1, "5", accelerator="h100", nodes=1, end=2), ask(2, "6", accelerator="a800", nodes=1, end=2)]
    flexible = bid(1, "20", hours=2, accelerators=("h100", "a800"))
    picky = bid(2, "15", hours=2, accelerators=("h100",))
    # when
    plan = {a.bid_id: a.listing_id for a in clear([flexible, picky], asks)}
    # then
    assert plan == {1: 2, 2: 1}


def test_clear_packs_a_bid_into_the_snuggest_gap_at_the_cheapest_price():
    # given: two 1-node clusters at one price; the older is free all along, the newer only for hours 0..3
    asks = [ask(1, "5", nodes=1), ask(2, "5", nodes=1, masks=[busy(range(4, 48))])]
    short = bid(1, "9", hours=4)
    # when
    planned = clear([short], asks)
    continuous_choice = match_one(short, asks)
    # then: continuous mode takes the oldest listing (same price and start); the clearing takes the exact gap,
    # which leaves the free cluster whole for a long bid
    assert continuous_choice.listing_id == 1
    assert [(a.listing_id, a.start) for a in planned] == [(2, 0)]
    long_too = clear([short, bid(2, "6", hours=48)], asks)
    assert sorted((a.bid_id, a.listing_id) for a in long_too) == [(1, 2), (2, 1)]


def test_clear_seats_the_bid_with_more_surplus_at_stake_first():
    # given: one node for 4 hours; a long bid at 9 and a short one at 10 that would block it
    asks = [ask(1, "5", nodes=1, end=4)]
    long_bid, short_bid = bid(1, "9", hours=4), bid(2, "10", hours=2, latest=3)
    # when
    plan = clear([long_bid, short_bid], asks, time_budget_s=0.0)
    # then: (9 − 5) × 8 × 4 = 128 beats (10 − 5) × 8 × 2 = 80, so the long bid is seated
    assert [a.bid_id for a in plan] == [1]
    assert total_surplus(plan) == Decimal("128")


def test_clear_gives_the_cheap_ask_to_the_bid_that_would_lose_most_elsewhere():
    # given: a cheap and a dearer 1-node cluster for hours 0..4; a rich 2-hour bid that can pay either and a
    # 4-hour bid that can only pay the cheap one
    asks = [ask(1, "5", nodes=1, end=4), ask(2, "6", nodes=1, end=4)]
    rich, poor = bid(1, "20", hours=2, latest=4), bid(2, "5.9", hours=4, latest=4)
    # when: the greedy plan alone (no budget for the improvement pass)
    plan = clear([rich, poor], asks, time_budget_s=0.0)
    # then: by surplus at stake the rich bid (15 × 16 = 240) would take the cheap ask and leave the poor one out;
    # its regret (pushed to 6: 1 × 16 = 16) is below the poor bid's (0.9 × 32 = 28.8: all of it), so both are
    # seated: 14 × 16 + 0.9 × 32 = 252.8
    assert sorted((a.bid_id, a.listing_id) for a in plan) == [(1, 2), (2, 1)]
    assert total_surplus(plan) == Decimal("252.8")
    _check_feasible(plan, [rich, poor], asks)


def test_clear_improvement_seats_a_bid_that_first_fit_left_out_and_books_as_planned():
    # given: 2 nodes for hours 0..3 and four 1-node bids with fixed windows, [0,1) [2,3) [1,3) [0,2), in that
    # order of surplus: booked in that order (lowest-numbered free nodes), the last finds no node free in both
    # of its hours, though at most 2 bids overlap in any hour
    asks = [ask(1, "1", nodes=2, end=3)]
    bids = [
        bid(1, "100", hours=1, earliest=0, latest=1),
        bid(2, "90", hours=1, earliest=2, latest=3),
        bid(3, "30", hours=2, earliest=1, latest=3),
        bid(4, "20", hours=2, earliest=0, latest=2),
    ]
    # when
    greedy_only = clear(bids, asks, time_budget_s=0.0)
    improved = clear(bids, asks)
    # then: the greedy seats three (99 × 8 + 89 × 8 + 29 × 16 = 1968); the improvement pass (re-ordering the
    # cluster by start, or evicting and re-seating the first bid) seats
    # all four (+ 19 × 16 = 2272), and booking the plan in its order reserves exactly the planned nodes
    assert sorted(a.bid_id for a in greedy_only) == [1, 2, 3]
    assert total_surplus(greedy_only) == Decimal("1968")
    assert sorted(a.bid_id for a in improved) == [1, 2, 3, 4]
    assert total_surplus(improved) == Decimal("2272")
    _check_feasible(improved, bids, asks)
    masks = list(asks[0].node_free)
    for a in improved:
        window = ((1 << (a.end - a.start)) - 1) << a.start
        free = tuple(i + 1 for i, m in enumerate(masks) if m & window == window)[: a.nodes]
        assert free == a.node_indexes
        for node in free:
            masks[node - 1] &= ~window


# --- bids that carry vouchers: net prices ---------------------------------------------------------------------


def test_a_voucher_bid_takes_the_cheapest_net_price_not_the_cheapest_ask():
    # given: Hangzhou at 8 and Shanghai at 10; the bid's voucher pays half in Shanghai only (net 5 there)
    hangzhou, shanghai = ask(1, "8"), ask(2, "10")
    voucher_bid = bid(1, "12", hours=3, net_prices={2: "5"})
    # when
    result = match_one(voucher_bid, [hangzhou, shanghai])
    # then: Shanghai, counted at the net price
    assert (result.listing_id, result.price) == (2, Decimal("5"))
    assert result.surplus == (Decimal("12") - Decimal("5")) * 8 * 3


def test_a_voucher_bid_skips_the_asks_its_vouchers_may_not_pay():
    # given: the only ask its vouchers may pay is full; a cheaper free ask is not in its table
    asks = [ask(1, "1"), ask(2, "10", nodes=1, masks=[0])]
    voucher_bid = bid(1, "12", net_prices={2: "5"})
    # when / then: nothing, rather than an ask the vouchers would refuse; an empty table takes nothing at all
    assert match_one(voucher_bid, asks) is None
    assert match_one(bid(1, "12", net_prices={}), asks) is None
    assert clear([voucher_bid], asks) == []


def test_a_voucher_bids_limit_bounds_the_net_price_not_the_ask():
    # given: both asks above the limit of 12; the voucher brings one of them to 11.5 and the other to 12.5
    asks = [ask(1, "20"), ask(2, "23")]
    # when
    result = match_one(bid(1, "12", net_prices={1: "12.5", 2: "11.5"}), asks)
    # then: the one whose net price is within the limit
    assert (result.listing_id, result.price) == (2, Decimal("11.5"))
    assert match_one(bid(1, "12", net_prices={1: "12.5"}), asks) is None


def test_a_voucher_bids_table_ignores_listings_of_other_accelerators():
    # given: its table names an a800 listing, but the bid only accepts h100
    asks = [ask(1, "10", accelerator="a800"), ask(2, "10")]
    # when
    result = match_one(bid(1, "12", net_prices={1: "1", 2: "9"}), asks)
    # then
    assert result.listing_id == 2


def test_clear_seats_a_plain_and_a_voucher_bid_where_each_pays_least():
    # given: one node each in Hangzhou (8) and Shanghai (10) for 3 hours; a plain bid that can only afford
    # Hangzhou, and a voucher bid (net 5 in Shanghai, nothing in Hangzhou)
    asks = [ask(1, "8", nodes=1, end=3), ask(2, "10", nodes=1, end=3)]
    plain, voucher_bid = bid(1, "9", hours=3, latest=3), bid(2, "12", hours=3, latest=3, net_prices={2: "5"})
    # when
    plan = clear([plain, voucher_bid], asks)
    # then: (9 − 8) × 24 + (12 − 5) × 24
    assert sorted((a.bid_id, a.listing_id, a.price) for a in plan) == [(1, 1, Decimal("8")), (2, 2, Decimal("5"))]
    assert total_surplus(plan) == Decimal("192")
    assert lp_upper_bound([plain, voucher_bid], asks) >= 192 - 1e-6


def test_lp_bound_on_a_hand_checked_market():
    # given: one 1-node cluster for 2 hours; two 2-hour bids
    asks = [ask(1, "5", nodes=1, end=2)]
    bids = [bid(1, "6", hours=2), bid(2, "9", hours=2)]
    # when / then: the LP can only fill one node-hour pair: best is the 9-bid, 4 × 16 GPU-hours
    assert abs(lp_upper_bound(bids, asks) - 64.0) < 1e-6


# --- properties -------------------------------------------------------------------------------------------------

HORIZON = 12
masks = st.integers(min_value=0, max_value=(1 << HORIZON) - 1)


@st.composite
def markets(draw):
    n_clusters = draw(st.integers(1, 4))
    asks = []
    for c in range(1, n_clusters + 1):
        nodes = draw(st.integers(1, 3))
        node_masks = tuple(draw(masks) for _ in range(nodes))
        gpus = draw(st.sampled_from([4, 8]))
        accelerator = draw(st.sampled_from(["h100", "910b"]))
        for listing in range(draw(st.integers(1, 2))):
            start = draw(st.integers(0, HORIZON - 1))
            end = draw(st.integers(start + 1, HORIZON))
            asks.append(
                Ask(
                    listing_id=c * 10 + listing,
                    cluster_id=c,
                    accelerator=accelerator,
                    price=draw(st.integers(1, 10)),
                    gpus_per_node=gpus,
                    start=start,
                    end=end,
                    node_free=node_masks,
                    created=c * 10 + listing,
                )
            )
    bids = []
    for b in range(1, draw(st.integers(1, 8)) + 1):
        hours = draw(st.integers(1, 4))
        earliest = draw(st.integers(0, HORIZON - hours))
        latest = draw(st.integers(earliest + hours, HORIZON))
        accs = draw(st.sets(st.sampled_from(["h100", "910b"]), min_size=1))
        bids.append(
            Bid(
                bid_id=b,
                accelerators=frozenset(accs),
                nodes=draw(st.integers(1, 3)),
                duration_hours=hours,
                earliest_start=earliest,
                latest_end=latest,
                max_price=draw(st.integers(1, 12)),
                created=draw(st.integers(0, 100)),
            )
        )
    return bids, asks


@st.composite
def voucher_markets(draw):
    """``markets()`` where some bids carry vouchers: a net-price table over a random subset of the listings of
    their accelerators, each at 50–100 % of the ask price (some above the bid's limit)."""
    bids, asks = draw(markets())
    with_vouchers = []
    for b in bids:
        if draw(st.booleans()):
            eligible = [a for a in asks if a.accelerator in b.accelerators and draw(st.booleans())]
            table = {a.listing_id: a.price * draw(st.sampled_from([0.5, 0.6, 0.8, 1.0])) for a in eligible}
            b = Bid(**{**b.__dict__, "net_prices": table})
        with_vouchers.append(b)
    return with_vouchers, asks


def _check_feasible(plan, bids, asks):
    bid_by_id = {b.bid_id: b for b in bids}
    ask_by_id = {a.listing_id: a for a in asks}
    masks_by_cluster = {}
    for a in asks:
        masks_by_cluster.setdefault(a.cluster_id, a.node_free)
    used = defaultdict(set)
    assert len({a.bid_id for a in plan}) == len(plan)  # each bid at most once
    for a in plan:
        b, listing = bid_by_id[a.bid_id], ask_by_id[a.listing_id]
        # pay-as-ask (a voucher bid: its net price there, only where its vouchers pay), never above the max
        net = listing.price if b.net_prices is None else b.net_prices[listing.listing_id]
        assert a.price == net <= b.max_price
        assert listing.accelerator in b.accelerators
        assert b.earliest_start <= a.start and a.end <= b.latest_end  # inside the bid's window
        assert listing.start <= a.start and a.end <= listing.end  # inside the listing's window
        assert a.end - a.start == b.duration_hours  # contiguous, full duration
        assert len(a.node_indexes) == b.nodes  # all-or-nothing
        for node in a.node_indexes:
            for hour in range(a.start, a.end):
                assert masks_by_cluster[a.cluster_id][node - 1] >> hour & 1  # the node was free
                assert (hour, node) not in used[a.cluster_id]  # no capacity used twice
                used[a.cluster_id].add((hour, node))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markets())
def test_clear_plans_are_feasible_and_beat_continuous(market):
    # given
    bids, asks = market
    # when
    plan = clear(bids, asks, time_budget_s=1.0)
    arrival = continuous(bids, asks)
    # then
    _check_feasible(plan, bids, asks)
    _check_feasible(arrival, bids, asks)
    assert total_surplus(plan) >= total_surplus(arrival)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markets())
def test_clear_local_search_never_lowers_the_greedy_total(market):
    # given
    bids, asks = market
    # when: the greedy plans alone (no budget) and with the local search
    greedy_only = clear(bids, asks, time_budget_s=0.0)
    improved = clear(bids, asks, time_budget_s=1.0)
    # then: what booking the improved plan yields is at least the greedy's (the old pass could lose fills when
    # its moves shifted later assignments' nodes)
    _check_feasible(improved, bids, asks)
    assert total_surplus(improved) >= total_surplus(greedy_only)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markets())
def test_clear_surplus_never_exceeds_the_lp_bound(market):
    # given
    bids, asks = market
    # when
    plan = clear(bids, asks, time_budget_s=1.0)
    # then
    bound = lp_upper_bound(bids, asks)
    # HiGHS solves to a relative tolerance (~1e-7): allow for it, relative to the size of the bound.
    assert total_surplus(plan) <= bound + 1e-6 * max(1.0, abs(bound))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markets())
def test_clear_plans_applied_in_order_book_exactly_the_planned_nodes(market):
    # given
    bids, asks = market
    masks = {}
    for a in asks:
        masks.setdefault(a.cluster_id, list(a.node_free))
    # when: each assignment is booked in order the way booking_create does (lowest-numbered nodes free)
    plan = clear(bids, asks, time_budget_s=1.0)
    booked = []
    for a in plan:
        window = ((1 << (a.end - a.start)) - 1) << a.start
        free = [i for i, m in enumerate(masks[a.cluster_id]) if m & window == window][: a.nodes]
        for i in free:
            masks[a.cluster_id][i] &= ~window
        booked.append(tuple(i + 1 for i in free))
    # then: every planned fill is booked, on its planned nodes
    assert booked == [a.node_indexes for a in plan]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(voucher_markets())
def test_clear_with_voucher_bids_is_feasible_beats_continuous_and_stays_under_the_lp_bound(market):
    # given
    bids, asks = market
    # when
    plan = clear(bids, asks, time_budget_s=1.0)
    arrival = continuous(bids, asks)
    # then: only where their vouchers pay, at net prices within their limits; never above the LP bound
    _check_feasible(plan, bids, asks)
    _check_feasible(arrival, bids, asks)
    assert total_surplus(plan) >= total_surplus(arrival)
    bound = lp_upper_bound(bids, asks)
    assert total_surplus(plan) <= bound + 1e-6 * max(1.0, abs(bound))

"""The matching engine: bids against asks (listings), pure Python (dataclasses in, assignments out, no ORM).

Time is counted in whole hours from an origin the caller picks (hour index 0 = the first hour of the horizon).
Capacity is exact per node: each ask carries, for every node of its cluster, a bit mask of the hours in which the
node is free (bit ``h`` set = free during hour ``h``). A bid is filled all-or-nothing on ONE cluster, by
``nodes`` nodes that are each free for the same contiguous ``duration_hours`` — exactly what
``orders.services.booking_create`` needs (it takes the lowest-numbered nodes free for the whole window; so do we,
so a plan applied in order reserves the very nodes it planned). Several asks (listings) of one cluster share the
cluster's capacity: the engine keys node state by ``cluster_id`` (the first ask of a cluster provides the masks).

Pricing is pay-as-ask: an assignment's price is the ask price, never above the bid's maximum.
Surplus of an assignment = (bid max − ask price) × GPUs × nodes × hours.

Vouchers: a bid that carries vouchers comes with a net-price table (``Bid.net_prices``: listing id → what it pays
per GPU-hour there after its vouchers, precomputed by the caller, who knows the rules and the balances). It is
paired only with the listings in its table (where its vouchers may pay), ranks them by that net price, its
``max_price`` bounds the net price, and its surplus and the assignment's ``price`` are counted at the net price.
The engine sees such a bid's asks as copies carrying its net prices (``_Capacity.candidates``), so every search
below works on them unchanged.

- ``match_one(bid, asks)``: continuous mode — the cheapest feasible slot (ties: earliest start, then oldest ask).
- ``clear(bids, asks, time_budget_s)``: batch — maximise total surplus. A greedy plan (bids by regret: what they
  lose if pushed from their cheapest price to the next one, largest first; each at the cheapest price, in the
  best-fitting slot), and, budget permitting, the continuous arrival-order plan, the better one kept; then a local
  search (seat a bid, or move it to a cheaper ask, where it fits, where re-ordering a cluster's bookings makes
  room, or by evicting one assignment and re-seating that one; kept only when the total rises and the plan still
  books exactly as planned); then, with what the budget leaves, the exact clearing of ``orders.matching_exact``
  (a node-exact MILP on HiGHS for markets of at most ``EXACT_SLOTS`` slots, MILP neighbourhoods on larger
  ones), whose plan replaces the heuristic's only when booking it in order yields more.

The LP bound that measures it (scipy, a dev-only dependency) lives next to the benchmark: ``bench/matching_lp.py``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Ask:
    """A listing: ``price`` per GPU-hour, open for hours ``[start, end)``, ``node_free`` = one free-hour bit mask per
    node of the cluster, in node-index order (index 1 first). ``created`` orders ties (smaller = older)."""

    listing_id: int
    cluster_id: int
    accelerator: str
    price: object  # Decimal in the service, float or int in the bench; one kind per call
    gpus_per_node: int
    start: int
    end: int
    node_free: tuple[int, ...]
    created: int = 0
    min_hours: int = 1


@dataclass(frozen=True)
class Bid:
    """``nodes`` whole nodes for ``duration_hours`` contiguous hours inside ``[earliest_start, latest_end)``, on a
    cluster of one of ``accelerators``, at most ``max_price`` per GPU-hour. ``created`` orders arrivals.

    ``net_prices``: None for a plain bid. For a bid that carries vouchers, listing id → its net price per GPU-hour
    on that listing (the ask price less its vouchers' part ÷ the fill's GPU-hours: nodes, duration and the cluster's
    GPUs per node are fixed per pair, so one number per listing); only those listings may fill it (the others are
    where its vouchers may not pay), and ``max_price`` bounds the net price."""

    bid_id: int
    accelerators: frozenset
    nodes: int
    duration_hours: int
    earliest_start: int
    latest_end: int
    max_price: object
    created: int = 0
    max_gpus_per_node: int = 0  # 0: any; else only clusters with at most this many GPUs per node (the hold's basis)
    net_prices: Mapping[int, object] | None = field(default=None, hash=False)


@dataclass(frozen=True)
class Assignment:
    """``price``: what the bid pays per GPU-hour as the engine counts it: the ask price, or for a bid with
    ``net_prices`` its net price on that listing."""

    bid_id: int
    listing_id: int
    cluster_id: int
    start: int
    end: int
    nodes: int
    price: object
    gpu_hours: int
    surplus: object
    node_indexes: tuple[int, ...]  # 1-based node numbers in the cluster


def price_for(bid: Bid, ask: Ask):
    """What ``bid`` pays per GPU-hour on ``ask``: the ask price, or its net price there (KeyError when the bid's
    vouchers may not pay for that listing)."""
    return ask.price if bid.net_prices is None else bid.net_prices[ask.listing_id]


def surplus_of(bid: Bid, ask: Ask):
    """(bid max − the price it pays there, ``price_for``) × GPU-hours of the bid on that ask's cluster."""
    return (bid.max_price - price_for(bid, ask)) * ask.gpus_per_node * bid.nodes * bid.duration_hours


def _priced(ask: Ask, price) -> Ask:
    """A copy of ``ask`` at ``price`` (a voucher bid's view of it). Built from its ``__dict__`` rather than with
    ``dataclasses.replace``, which costs several times more: batch clearing makes one per (voucher bid, eligible
    ask)."""
    fields = ask.__dict__.copy()
    fields["price"] = price
    copy = _new_ask(Ask)
    _set_dict(copy, "__dict__", fields)
    return copy


_new_ask, _set_dict = object.__new__, object.__setattr__  # (the dataclass is frozen: its own __setattr__ refuses)


def _assignment(bid: Bid, ask: Ask, start: int, positions: Iterable[int]) -> Assignment:
    gpu_hours = ask.gpus_per_node * bid.nodes * bid.duration_hours
    price = price_for(bid, ask)
    return Assignment(
        bid_id=bid.bid_id,
        listing_id=ask.listing_id,
        cluster_id=ask.cluster_id,
        start=start,
        end=start + bid.duration_hours,
        nodes=bid.nodes,
        price=price,
        gpu_hours=gpu_hours,
        surplus=(bid.max_price - price) * gpu_hours,
        node_indexes=tuple(i + 1 for i in positions),
    )


# How many "at least k nodes free" masks each cluster keeps for the quick reject (bids rarely want more nodes).
ATLEAST_LEVELS = 16
# Batch clearing compares the fit on at most this many clusters at the cheapest price (more: slower, barely better).
FIT_CLUSTERS = 4


def _or(masks: Iterable[int]) -> int:
    union = 0
    for mask in masks:
        union |= mask
    return union


def _run_starts(mask: int, duration: int) -> int:
    """Bits ``s`` of ``mask`` where ``duration`` set bits begin (``s .. s + duration - 1`` all set), by doubling."""
    run, k = mask, 1
    while k < duration and run:
        step = k if k < duration - k else duration - k
        run &= run >> step
        k += step
    return run


class _Capacity:
    """Mutable node masks per cluster, plus the asks grouped by accelerator, cheapest (then oldest) first."""

    def __init__(self, asks: Iterable[Ask]):
        self.masks: dict[int, list[int]] = {}
        self.union: dict[int, int] = {}  # per cluster: hours in which at least one node is free (a quick reject)
        # per cluster: atleast[k - 1] = hours in which at least k nodes are free, k = 1..ATLEAST_LEVELS (a
        # necessary condition for a k-node bid, checked before the exact per-group test)
        self.atleast: dict[int, list[int]] = {}
        self.longest: dict[int, int] = {}  # per cluster: the longest run of hours in ``union`` (a quicker one)
        # per cluster: nodes grouped by identical free-hour mask, (mask, [0-based node positions ascending]); a
        # cluster's nodes mostly share a few masks, so the fit test runs per group rather than per node
        self.groups: dict[int, list[tuple[int, list[int]]]] = {}
        self._runs: dict[tuple[int, int], int] = {}  # memo of _run_starts(mask, duration)
        self._merged: dict[frozenset, list[Ask]] = {}
        self._priced: dict[int, list[Ask]] = {}  # per voucher bid: its eligible asks at its net prices
        self.by_listing: dict[int, Ask] = {}
        self.by_accelerator: dict[str, list[Ask]] = defaultdict(list)
        for ask in asks:
            if ask.cluster_id not in self.masks:
                self.masks[ask.cluster_id] = list(ask.node_free)
                self._set_union(ask.cluster_id)
            self.by_accelerator[ask.accelerator].append(ask)
            self.by_listing.setdefault(ask.listing_id, ask)
        for group in self.by_accelerator.values():
            group.sort(key=lambda a: (a.price, a.created, a.listing_id))

    def _set_union(self, cluster_id: int) -> None:
        masks = self.masks[cluster_id]
        grouped: dict[int, list[int]] = {}
        for position, mask in enumerate(masks):
            if mask:
                grouped.setdefault(mask, []).append(position)
        self.groups[cluster_id] = list(grouped.items())
        levels = [0] * min(len(masks), ATLEAST_LEVELS)
        for mask, positions in grouped.items():  # counting per group of c identical masks: level k gains the
            c = len(positions)  # hours of ``mask`` where level k - c already had nodes (every hour when k < c)
            for k in range(len(levels) - 1, -1, -1):
                levels[k] |= mask & levels[k - c] if k >= c else mask
        self.atleast[cluster_id] = levels
        union = _or(masks)
        self.union[cluster_id] = union
        longest = 0
        while union:
            union &= union >> 1
            longest += 1
        self.longest[cluster_id] = longest

    def candidates(self, bid: Bid) -> list[Ask]:
        """The asks ``bid`` may take, cheapest for it first (then oldest): for a voucher bid, only the listings in
        its ``net_prices``, as copies at its net prices."""
        if bid.net_prices is not None:
            return self._voucher_candidates(bid)
        if len(bid.accelerators) == 1:
            return self.by_accelerator.get(next(iter(bid.accelerators)), [])
        merged = self._merged.get(bid.accelerators)
        if merged is None:
            merged = [a for acc in bid.accelerators for a in self.by_accelerator.get(acc, ())]
            merged.sort(key=lambda a: (a.price, a.created, a.listing_id))
            self._merged[bid.accelerators] = merged
        return merged

    def _voucher_candidates(self, bid: Bid) -> list[Ask]:
        priced = self._priced.get(bid.bid_id)
        if priced is None:
            by_listing, accelerators = self.by_listing, bid.accelerators
            priced = [
                _priced(ask, price)
                for listing_id, price in bid.net_prices.items()
                if (ask := by_listing.get(listing_id)) is not None and ask.accelerator in accelerators
            ]
            priced.sort(key=lambda a: (a.price, a.created, a.listing_id))
            self._priced[bid.bid_id] = priced
        return priced

    def level_starts(self, bid: Bid, ask: Ask, before: int | None = None) -> int:
        """Bit ``s`` set: ``s`` is a start on ``ask`` inside both windows (and before ``before`` if given) where at
        least ``bid.nodes`` nodes of the cluster are free in every hour of the slot, not necessarily the same nodes
        all along (a necessary condition for a fit). 0 when the ask cannot take the bid at all (too short a window,
        its minimum hours, GPUs per node, too few nodes)."""
        duration = bid.duration_hours
        if self.longest[ask.cluster_id] < duration:
            return 0
        first = bid.earliest_start if bid.earliest_start > ask.start else ask.start
        last = (bid.latest_end if bid.latest_end < ask.end else ask.end) - duration
        if before is not None and last >= before:
            last = before - 1
        if last < first or duration < ask.min_hours:
            return 0
        if bid.max_gpus_per_node and ask.gpus_per_node > bid.max_gpus_per_node:
            return 0
        if len(self.masks[ask.cluster_id]) < bid.nodes:
            return 0
        levels = self.atleast[ask.cluster_id]  # (beyond its levels, "at least the last level": necessary only)
        level = levels[bid.nodes - 1] if bid.nodes <= len(levels) else levels[-1]
        key = (level, duration)
        if (run := self._runs.get(key)) is None:
            run = self._runs[key] = _run_starts(level, duration)
        return run & ((1 << (last - first + 1)) - 1) << first

    def fits(self, bid: Bid, ask: Ask, before: int | None = None) -> Iterator[tuple[int, tuple[int, ...]]]:
        """Every start on ``ask`` (before ``before`` if given), earliest first, where ``bid.nodes`` nodes are free
        for the whole duration, each with those nodes (the lowest 0-based positions free then, as
        ``booking_create`` takes them)."""
        window = self.level_starts(bid, ask, before)
        if not window:
            return  # never enough nodes free in every hour of any allowed slot: skip the per-group work
        duration, runs = bid.duration_hours, self._runs
        starts = []  # per group: bit s set = its nodes are free for [s, s + duration) and s is an allowed start
        union = 0
        for mask, positions in self.groups[ask.cluster_id]:
            key = (mask, duration)
            if (run := runs.get(key)) is None:
                run = runs[key] = _run_starts(mask, duration)
            run &= window
            if run:
                starts.append((run, positions))
                union |= run
        needed = bid.nodes
        while union:
            bit = union & -union
            fitting = [positions for run, positions in starts if run & bit]
            if sum(len(p) for p in fitting) >= needed:
                chosen = (
                    fitting[0][:needed]
                    if len(fitting) == 1
                    else sorted(itertools.chain.from_iterable(fitting))[:needed]
                )
                yield bit.bit_length() - 1, tuple(chosen)
            union ^= bit

    def earliest_fit(self, bid: Bid, ask: Ask, before: int | None = None) -> tuple[int, tuple[int, ...]] | None:
        """The earliest start on ``ask`` (before ``before`` if given) where ``bid.nodes`` nodes are free for the
        whole duration, with those nodes (lowest indexes); None when there is none."""
        return next(self.fits(bid, ask, before), None)

    def waste(self, cluster_id: int, start: int, end: int, positions: Iterable[int]) -> float:
        """How badly ``[start, end)`` on those nodes fragments their free time: per node, the free hours left
        just before and just after the slot (in the same free run), counted as their square roots — a slot
        flush against a booking or the horizon leaves nothing, and many short leftovers (hard to sell to
        anyone) weigh more than one long one."""
        masks = self.masks[cluster_id]
        total = 0.0
        below_start = (1 << start) - 1
        for position in positions:
            mask = masks[position]
            left = start - (~mask & below_start).bit_length()
            above = ~mask >> end  # negative (infinitely many ones): its lowest set bit is the first busy hour
            right = (above & -above).bit_length() - 1
            total += math.sqrt(left) + math.sqrt(right)
        return total

    def tightest_slot(self, bid: Bid, clusters: int = FIT_CLUSTERS) -> Assignment | None:
        """Batch clearing's choice: the cheapest feasible price (so the bid's own surplus is the best it can
        get); among slots at that price on the first ``clusters`` asks that have one, the one with the least
        ``waste`` (ties: earlier ask, then earlier start) — best-fit packing leaves room for later bids."""
        best = None
        seen = 0
        duration, nodes, max_price = bid.duration_hours, bid.nodes, bid.max_price
        earliest, latest_start = bid.earliest_start, bid.latest_end - duration
        longest, atleast, runs = self.longest, self.atleast, self._runs
        for ask in self.candidates(bid):
            price = ask.price
            if price > max_price or (best is not None and price > best[1].price):
                break  # sorted by price: only dearer asks follow
            # The cheap rejects of ``fits``, inlined: most asks of a busy market fail here, and this loop is
            # most of a clearing's time.
            cluster_id = ask.cluster_id
            if longest[cluster_id] < duration:
                continue
            first = earliest if earliest > ask.start else ask.start
            last = latest_start if latest_start < ask.end - duration else ask.end - duration
            if last < first:
                continue
            levels = atleast[cluster_id]
            if nodes > len(levels) and len(levels) < ATLEAST_LEVELS:
                continue  # a smaller cluster
            key = (levels[nodes - 1] if nodes <= len(levels) else levels[-1], duration)
            if (run := runs.get(key)) is None:
                run = runs[key] = _run_starts(*key)
            if not run >> first or not run & ((1 << (last + 1)) - 1) >> first << first:
                continue
            found = False
            for start, positions in self.fits(bid, ask):
                found = True
                score = self.waste(cluster_id, start, start + duration, positions)
                if best is None or score < best[0]:
                    best = (score, ask, start, positions)
                    if score == 0:
                        break
            if found:
                seen += 1
                if seen >= clusters or best[0] == 0:
                    break
        if best is None:
            return None
        _, ask, start, positions = best
        return _assignment(bid, ask, start, positions)

    def best_slot(self, bid: Bid) -> Assignment | None:
        """Cheapest feasible slot; ties: earliest start, then oldest ask."""
        best = None
        best_price = None
        before = None  # once a fit is found, an ask at the same price must start earlier to win
        for ask in self.candidates(bid):
            if ask.price > bid.max_price:
                break  # sorted by price: nothing cheaper follows
            if best_price is not None and ask.price > best_price:
                break
            fit = self.earliest_fit(bid, ask, before)
            if fit is None:
                continue
            # Same price, earlier start; or the first fit. Same price and start: the earlier ask (sorted) stays.
            best, best_price, before = (ask, fit), ask.price, fit[0]
            if before <= max(bid.earliest_start, 0):
                break  # nothing can start earlier
        if best is None:
            return None
        ask, (start, positions) = best
        return _assignment(bid, ask, start, positions)

    def take(self, a: Assignment) -> None:
        bits = ((1 << (a.end - a.start)) - 1) << a.start
        masks = self.masks[a.cluster_id]
        for number in a.node_indexes:
            assert masks[number - 1] & bits == bits, "capacity used twice"
            masks[number - 1] &= ~bits
        self._set_union(a.cluster_id)

    def give_back(self, a: Assignment) -> None:
        bits = ((1 << (a.end - a.start)) - 1) << a.start
        masks = self.masks[a.cluster_id]
        for number in a.node_indexes:
            masks[number - 1] |= bits
        self._set_union(a.cluster_id)


def match_one(bid: Bid, asks: Sequence[Ask]) -> Assignment | None:
    """Continuous mode: the cheapest slot where the whole bid fits on one cluster (ties: earliest start, then the
    oldest ask), priced at the ask; None when no ask at or below the bid's maximum has room."""
    return _Capacity(asks).best_slot(bid)


def _greedy(
    bids: Sequence[Bid],
    asks: Sequence[Ask] | _Capacity,
    *,
    tight: bool = False,
) -> tuple[list[Assignment], _Capacity]:
    """Seat ``bids`` in the given order, each in ``best_slot`` (continuous mode's choice) or, with ``tight``, in
    ``tightest_slot`` (batch clearing's); ``asks`` may be a fresh ``_Capacity`` to fill."""
    capacity = asks if isinstance(asks, _Capacity) else _Capacity(asks)
    choose = capacity.tightest_slot if tight else capacity.best_slot
    plan = []
    for bid in bids:
        assignment = choose(bid)
        if assignment is not None:
            capacity.take(assignment)
            plan.append(assignment)
    return plan, capacity


def continuous(bids: Sequence[Bid], asks: Sequence[Ask]) -> list[Assignment]:
    """What continuous matching yields when the bids arrive in ``created`` order, each taking ``match_one``'s slot."""
    return _greedy(sorted(bids, key=lambda b: (b.created, b.bid_id)), asks)[0]


def total_surplus(plan: Iterable[Assignment]):
    return sum((a.surplus for a in plan), 0)


def clear(bids: Sequence[Bid], asks: Sequence[Ask], time_budget_s: float = 2.0) -> list[Assignment]:
    """Batch clearing: a plan maximising total surplus under node capacity, found within ``time_budget_s``.

    First a greedy plan: bids by ``_seating_priority`` (their regret, what they lose if pushed from the cheapest
    price they accept to the next dearer one, then the surplus at stake on the cheapest ask, largest first), each in
    ``tightest_slot`` (the cheapest price, best fit). Then, budget permitting, the continuous arrival-order plan,
    the better one kept — so never worse than ``continuous`` when the budget allows it (always on small markets;
    one greedy plan takes ~2–2.5 s on 10k bids × 2k listings) — and the local search (``_improve``), stopped at
    ``LOCAL_SEARCH_SHARE`` of the budget left. Then the exact engine (``_exactly_improved``,
    ``orders.matching_exact``) with the rest: on a market of at most ``EXACT_SLOTS`` slots, the node-exact MILP
    warm-started with that plan, optimal when it finishes in time; then, or on larger markets, MILP-based
    large-neighbourhood search. Its plans replace the heuristic's only when booking them in order yields more.
    The budget bounds the optional work; the first greedy plan always completes.
    Each bid at most once, in application order: applied in this order, ``booking_create`` (the lowest-numbered
    nodes free for the window) reserves exactly the nodes of each assignment (see ``_as_applied``), so no fill of
    the plan is lost to the order of application.
    """
    deadline = time.monotonic() + time_budget_s
    started = time.monotonic()
    capacity = _Capacity(asks)
    by_regret = sorted(bids, key=lambda b: (*_seating_priority(b, capacity), b.created, b.bid_id))
    plan, capacity = _greedy(by_regret, capacity, tight=True)
    took = time.monotonic() - started
    arrival_plan = None
    if time.monotonic() + took < deadline:  # always on small markets; skipped when it would overrun the budget
        arrival_plan, arrival_capacity = _greedy(sorted(bids, key=lambda b: (b.created, b.bid_id)), asks)
        if total_surplus(arrival_plan) > total_surplus(plan):
            plan, capacity = arrival_plan, arrival_capacity
    # (the local search settles within ~0.1 s on small markets; on large ones it rarely finds a move after its
    # first pass, so it leaves part of the budget to the neighbourhood search)
    local_deadline = time.monotonic() + max(deadline - time.monotonic(), 0) * LOCAL_SEARCH_SHARE
    plan = _as_applied(_improve(plan, capacity, by_regret, asks, local_deadline), asks)
    if arrival_plan is not None and total_surplus(arrival_plan) > total_surplus(plan):
        plan = arrival_plan  # (arrival order: continuous matching's own plan, applied as planned)
    return _exactly_improved(plan, bids, asks, deadline)


# The local search's share of the budget left after the greedy plans; the exact engine gets the rest.
LOCAL_SEARCH_SHARE = 0.5


# Markets with at most this many slots (bid × cluster × start where the bid may run) are solved whole by the exact
# MILP (``matching_exact.solve``) first; larger ones only by neighbourhoods (``matching_exact.improve``). Measured
# with a 4.5 s budget on bench/matching.py's small shapes grown to 400 and 800 bids (2 cores, loaded): up to
# ~3,500 slots the whole-market MILP's first plan beats neighbourhoods alone by up to 12 %; at ~7,700 they are
# even; from ~12,000 up, building the model eats the budget and neighbourhoods alone do better.
EXACT_SLOTS = 6_000
# Of the time the heuristic leaves, the share the whole-market MILP may use before the neighbourhood search takes
# over from its best plan (unless it proved that plan optimal first).
EXACT_SHARE = 0.5
# Kept back from the exact engine's time limits for seating, converting and re-booking its plan: at most this
# share of the time left, and at most ``EXACT_RESERVE_S``.
EXACT_RESERVE = 0.05
EXACT_RESERVE_S = 0.25


def _exactly_improved(
    plan: list[Assignment],
    bids: Sequence[Bid],
    asks: Sequence[Ask],
    deadline: float,
) -> list[Assignment]:
    """``plan``, or a better plan from the exact engine (``orders.matching_exact``) found before ``deadline``: on
    a market of at most ``EXACT_SLOTS`` slots the whole-market MILP warm-started with ``plan`` (for up to
    ``EXACT_SHARE`` of the time left), then, unless that proved its plan optimal, the neighbourhood search from
    the best plan so far. Each plan it returns is re-booked in order (``_as_applied``) and replaces the current
    one only when that yields strictly more surplus, so the result books as planned and is never worse than
    ``plan``."""
    from orders import matching_exact  # (highspy and numpy load only when a batch clearing has time for them)

    left = deadline - time.monotonic()
    if left <= 0:
        return plan
    stop = deadline - min(left * EXACT_RESERVE, EXACT_RESERVE_S)
    best = plan
    try:
        exact = matching_exact.solve(
            bids, asks, time_limit_s=(stop - time.monotonic()) * EXACT_SHARE, start=plan, max_slots=EXACT_SLOTS
        )
    except matching_exact.TooLarge:
        exact = None
    if exact is not None:
        best = _better(best, _from_placements(exact.placements), asks)
        if exact.optimal:
            return best
    if time.monotonic() < stop:
        best = _better(best, _from_placements(matching_exact.improve(bids, asks, best, deadline=stop)), asks)
    return best


def _from_placements(placements: Iterable) -> list[Assignment]:
    """The exact engine's placements (``matching_exact.Placement``) as assignments, in the same order."""
    return [_assignment(p.bid, p.ask, p.start, p.positions) for p in placements]


def _better(current: list[Assignment], candidate: list[Assignment], asks: Sequence[Ask]) -> list[Assignment]:
    """``candidate`` as booking it in order yields it (``_as_applied``), if that is strictly more surplus than
    ``current``; else ``current``."""
    applied = _as_applied(candidate, asks)
    return applied if total_surplus(applied) > total_surplus(current) else current


def _as_applied(plan: Sequence[Assignment], asks: Sequence[Ask]) -> list[Assignment]:
    """``plan`` as booking it in order does it: each assignment on the lowest-numbered nodes free for its window
    once the earlier ones are booked. A greedy plan, built in that order, comes out unchanged, and so does the
    local search's (it keeps every cluster booking as planned); an assignment left without room would be left out
    (its bid stays open), so the plan's surplus is always what applying it yields."""
    masks: dict[int, list[int]] = {}
    for ask in asks:
        masks.setdefault(ask.cluster_id, list(ask.node_free))
    booked = (_book_lowest(masks[a.cluster_id], a) for a in plan)
    return [a for a in booked if a is not None]


def _book_lowest(masks: list[int], a: Assignment) -> Assignment | None:
    """Book ``a`` on the lowest-numbered of its cluster's ``masks`` (mutated) free for its whole window, as
    ``booking_create`` does: ``a`` with the nodes it got, or None (``masks`` unchanged) when too few are free."""
    bits = ((1 << (a.end - a.start)) - 1) << a.start
    free = []
    for position, mask in enumerate(masks):
        if mask & bits == bits:
            free.append(position)
            if len(free) == a.nodes:
                break
    else:
        return None
    for position in free:
        masks[position] &= ~bits
    nodes = tuple(position + 1 for position in free)
    return a if nodes == a.node_indexes else dataclasses.replace(a, node_indexes=nodes)


def _seating_priority(bid: Bid, capacity: _Capacity) -> tuple:
    """The greedy's sort key, smallest first: the bid's regret, largest first, then its value at stake.

    Regret: what the bid loses if pushed from the cheapest price it accepts to the next dearer one, i.e. its
    surplus on the cheapest ask minus that on the cheapest dearer ask (all of it when it cannot afford that one or
    there is none). Seating bids by regret gives the cheap capacity to those that would lose most elsewhere; a bid
    that could pay the next price nearly as well waits, and at worst pays it."""
    candidates = capacity.candidates(bid)
    if not candidates:
        return 0, 0
    value = _value_at_stake(bid, capacity)
    cheapest = candidates[0].price
    dearer = next((a for a in candidates if a.price > cheapest), None)
    regret = value - (max(surplus_of(bid, dearer), 0) if dearer is not None else 0)
    return -regret, -value


def _value_at_stake(bid: Bid, capacity: _Capacity):
    """The bid's surplus on the cheapest ask of its accelerators (0 when there is none it could afford)."""
    candidates = capacity.candidates(bid)
    return max(surplus_of(bid, candidates[0]), 0) if candidates else 0


def _replay(masks: list[int], plan: Iterable[Assignment]) -> list[Assignment] | None:
    """Book ``plan`` in order on one cluster's ``masks`` (mutated) with ``_book_lowest``: the assignments with the
    nodes they got, or None when one finds too few nodes free."""
    booked = []
    for a in plan:
        if (got := _book_lowest(masks, a)) is None:
            return None
        booked.append(got)
    return booked


class _Replanner:
    """A plan under change, kept exactly as booking it yields: per cluster the assignments in booking order, the
    capacity's masks being what replaying that order on the cluster's initial masks leaves (``_replay``). Changes
    are tentative until ``commit``; ``rollback`` restores the last committed state (plan, masks, total)."""

    def __init__(self, plan: Sequence[Assignment], capacity: _Capacity, asks: Sequence[Ask]):
        self.capacity = capacity
        self.initial: dict[int, tuple[int, ...]] = {}
        for ask in asks:
            self.initial.setdefault(ask.cluster_id, ask.node_free)
        self.order: dict[int, list[Assignment]] = defaultdict(list)
        self.cluster_of: dict[int, int] = {}  # bid id → the cluster of its assignment
        for a in plan:
            self.order[a.cluster_id].append(a)
            self.cluster_of[a.bid_id] = a.cluster_id
        self.total = total_surplus(plan)
        self._saved: dict[int, tuple] = {}  # cluster → its committed state, saved before its first change
        self._saved_bids: dict[int, int | None] = {}  # bid id → its committed cluster (None: unassigned)
        self._saved_total = self.total

    def plan(self) -> list[Assignment]:
        """The plan in an order that books exactly as planned (each cluster's own order; clusters independent)."""
        return [a for assignments in self.order.values() for a in assignments]

    def assignment(self, bid_id: int) -> Assignment | None:
        cluster_id = self.cluster_of.get(bid_id)
        if cluster_id is None:
            return None
        return next(a for a in self.order[cluster_id] if a.bid_id == bid_id)

    def rebook(self, cluster_id: int, plan: list[Assignment]) -> bool:
        """Make ``plan`` the cluster's booking order if replaying it fits (True); else change nothing (False)."""
        masks = list(self.initial[cluster_id])
        booked = _replay(masks, plan)
        if booked is None:
            return False
        capacity = self.capacity
        if cluster_id not in self._saved:
            self._saved[cluster_id] = (
                self.order[cluster_id],
                capacity.masks[cluster_id],
                capacity.groups[cluster_id],
                capacity.atleast[cluster_id],
                capacity.union[cluster_id],
                capacity.longest[cluster_id],
            )
        before = {a.bid_id for a in self.order[cluster_id]}
        after = {a.bid_id for a in booked}
        for bid_id in before ^ after:
            self._saved_bids.setdefault(bid_id, self.cluster_of.get(bid_id))
        for bid_id in before - after:
            del self.cluster_of[bid_id]
        for bid_id in after - before:
            self.cluster_of[bid_id] = cluster_id
        self.total += total_surplus(a for a in booked if a.bid_id not in before) - total_surplus(
            a for a in self.order[cluster_id] if a.bid_id not in after
        )
        self.order[cluster_id] = booked
        capacity.masks[cluster_id] = masks
        capacity._set_union(cluster_id)
        return True

    def remove(self, a: Assignment) -> bool:
        return self.rebook(a.cluster_id, [x for x in self.order[a.cluster_id] if x.bid_id != a.bid_id])

    def add(self, a: Assignment) -> bool:
        """Book ``a`` after the cluster's others, or, failing that, re-order the cluster by start (a first-fit
        packing by start time needs only that enough nodes be free in every hour when the nodes are alike)."""
        current = self.order[a.cluster_id]
        return self.rebook(a.cluster_id, [*current, a]) or self.rebook(
            a.cluster_id, sorted([*current, a], key=lambda x: (x.start, -x.nodes))
        )

    def commit(self) -> None:
        self._saved.clear()
        self._saved_bids.clear()
        self._saved_total = self.total

    def rollback(self) -> None:
        capacity = self.capacity
        for cluster_id, (order, masks, groups, atleast, union, longest) in self._saved.items():
            self.order[cluster_id] = order
            capacity.masks[cluster_id], capacity.groups[cluster_id] = masks, groups
            capacity.atleast[cluster_id], capacity.union[cluster_id] = atleast, union
            capacity.longest[cluster_id] = longest
        for bid_id, cluster_id in self._saved_bids.items():
            if cluster_id is None:
                self.cluster_of.pop(bid_id, None)
            else:
                self.cluster_of[bid_id] = cluster_id
        self.total = self._saved_total
        self._saved.clear()
        self._saved_bids.clear()


# Per bid and improvement pass: how many clusters the eviction move tries, and how many of each one's assignments
# in the way (fewest surplus first) it evicts, one at a time.
EVICT_CLUSTERS = 6
EVICT_VICTIMS = 3
# How many starts the re-ordering move tries per cluster (earliest first).
REPACK_STARTS = 4


def _improve(
    plan: list[Assignment], capacity: _Capacity, bids: Sequence[Bid], asks: Sequence[Ask], deadline: float
) -> list[Assignment]:
    """Local search from ``plan`` until ``deadline`` or a pass over ``bids`` changes nothing. Per bid (unseated
    ones, and seated ones that could pay less), cheapest ask first: seat it where it fits, or where re-ordering the
    cluster's bookings by start makes room, or by evicting one assignment in its way and re-seating that one
    elsewhere. A move is kept only if the total surplus rises and the plan still books exactly as planned, so the
    total never falls and the result is what applying it yields."""
    state = _Replanner(plan, capacity, asks)
    bid_by_id = {b.bid_id: b for b in bids}
    changed = True
    while changed and time.monotonic() < deadline:
        changed = False
        for bid in bids:
            if time.monotonic() > deadline:
                break
            if _move(state, bid, bid_by_id):
                changed = True
    return state.plan()


def _move(state: _Replanner, bid: Bid, bid_by_id: dict[int, Bid]) -> bool:
    """One improving move for ``bid`` (see ``_improve``), committed; False (and nothing changed) when none."""
    current = state.assignment(bid.bid_id)
    limit = bid.max_price if current is None else current.price
    evictions = 0
    for ask in state.capacity.candidates(bid):
        if ask.price >= limit:
            return False  # sorted by price: no cheaper ask follows
        if _insert(state, bid, ask, current):
            return True
        if evictions < EVICT_CLUSTERS and (blockers := _blockers(state, bid, ask)):
            evictions += 1
            if _evict(state, bid, ask, current, blockers[:EVICT_VICTIMS], bid_by_id):
                return True
    return False


def _insert(state: _Replanner, bid: Bid, ask: Ask, current: Assignment | None) -> bool:
    """Seat ``bid`` on ``ask`` (moving it from ``current``) without evicting anyone; committed if done."""
    same_cluster = current is not None and current.cluster_id == ask.cluster_id
    if not same_cluster and next(_count_starts(state.capacity, bid, ask), None) is None:
        return False  # too few nodes free in some hour of every slot: neither fitting nor re-ordering can help
    if current is not None and not state.remove(current):
        state.rollback()
        return False
    placed = _place(state, bid, ask)
    if placed:
        state.commit()
    else:
        state.rollback()
    return placed


def _place(state: _Replanner, bid: Bid, ask: Ask) -> bool:
    """Book ``bid`` on ``ask`` (uncommitted): the best-fitting start where it fits as things stand, else a start
    where enough nodes are free in every hour and re-ordering the cluster by start makes it fit."""
    capacity = state.capacity
    best = None
    for start, positions in capacity.fits(bid, ask):
        score = capacity.waste(ask.cluster_id, start, start + bid.duration_hours, positions)
        if best is None or score < best[0]:
            best = (score, start, positions)
    if best is not None:
        return state.add(_assignment(bid, ask, best[1], best[2]))
    for start in itertools.islice(_count_starts(capacity, bid, ask), REPACK_STARTS):
        if state.add(_assignment(bid, ask, start, ())):
            return True
    return False


def _count_starts(capacity: _Capacity, bid: Bid, ask: Ask) -> Iterator[int]:
    """The starts of ``capacity.level_starts(bid, ask)``, earliest first."""
    run = capacity.level_starts(bid, ask)
    while run:
        bit = run & -run
        yield bit.bit_length() - 1
        run ^= bit


def _blockers(state: _Replanner, bid: Bid, ask: Ask) -> list[Assignment]:
    """The cluster's assignments overlapping the hours ``bid`` could use on ``ask``, fewest surplus first."""
    low, high = max(bid.earliest_start, ask.start), min(bid.latest_end, ask.end)
    if high - low < bid.duration_hours or (bid.max_gpus_per_node and ask.gpus_per_node > bid.max_gpus_per_node):
        return []
    return sorted(
        (a for a in state.order.get(ask.cluster_id, ()) if a.start < high and a.end > low and a.bid_id != bid.bid_id),
        key=lambda a: a.surplus,
    )


def _evict(
    state: _Replanner,
    bid: Bid,
    ask: Ask,
    current: Assignment | None,
    victims: Sequence[Assignment],
    bid_by_id: dict[int, Bid],
) -> bool:
    """Seat ``bid`` on ``ask`` by evicting one of ``victims`` (assignments in its way, ``_blockers``) and
    re-seating that one where it fits best at its cheapest price; committed only if the total rises."""
    before = state.total
    for victim in victims:
        ok = (current is None or state.remove(current)) and state.remove(victim) and _place(state, bid, ask)
        if ok:
            reseat = state.capacity.tightest_slot(bid_by_id[victim.bid_id])
            if reseat is not None:
                state.add(reseat)  # False when booking in order leaves it no room after all: the victim stays out
            if state.total > before:
                state.commit()
                return True
        state.rollback()
    return False

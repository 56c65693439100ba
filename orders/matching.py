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

- ``match_one(bid, asks)``: continuous mode — the cheapest feasible slot (ties: earliest start, then oldest ask).
- ``clear(bids, asks, time_budget_s)``: batch — maximise total surplus. A greedy plan (bids by the surplus at
  stake on their cheapest ask, largest first; each at the cheapest price, in the best-fitting slot), and, budget
  permitting, the continuous arrival-order plan, the better one kept; then an improvement pass (evict a
  lower-surplus assignment to seat a higher-surplus unassigned bid, re-seat the evicted one elsewhere if
  possible; kept only when the total rises), stopped at the time budget.
- ``lp_upper_bound(bids, asks)``: the LP relaxation's optimum (``orders.matching_lp``: column generation with
  scipy HiGHS), an upper bound on any plan.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass


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
    cluster of one of ``accelerators``, at most ``max_price`` per GPU-hour. ``created`` orders arrivals."""

    bid_id: int
    accelerators: frozenset
    nodes: int
    duration_hours: int
    earliest_start: int
    latest_end: int
    max_price: object
    created: int = 0
    max_gpus_per_node: int = 0  # 0: any; else only clusters with at most this many GPUs per node (the hold's basis)


@dataclass(frozen=True)
class Assignment:
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


def surplus_of(bid: Bid, ask: Ask):
    """(bid max − ask price) × GPU-hours of the bid on that ask's cluster."""
    return (bid.max_price - ask.price) * ask.gpus_per_node * bid.nodes * bid.duration_hours


def _assignment(bid: Bid, ask: Ask, start: int, positions: Iterable[int]) -> Assignment:
    return Assignment(bid_id=bid.bid_id, listing_id=ask.listing_id, cluster_id=ask.cluster_id, start=start,
                      end=start + bid.duration_hours, nodes=bid.nodes, price=ask.price,
                      gpu_hours=ask.gpus_per_node * bid.nodes * bid.duration_hours,
                      surplus=surplus_of(bid, ask), node_indexes=tuple(i + 1 for i in positions))


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
        self.by_accelerator: dict[str, list[Ask]] = defaultdict(list)
        for ask in asks:
            if ask.cluster_id not in self.masks:
                self.masks[ask.cluster_id] = list(ask.node_free)
                self._set_union(ask.cluster_id)
            self.by_accelerator[ask.accelerator].append(ask)
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
        if len(bid.accelerators) == 1:
            return self.by_accelerator.get(next(iter(bid.accelerators)), [])
        merged = self._merged.get(bid.accelerators)
        if merged is None:
            merged = [a for acc in bid.accelerators for a in self.by_accelerator.get(acc, ())]
            merged.sort(key=lambda a: (a.price, a.created, a.listing_id))
            self._merged[bid.accelerators] = merged
        return merged

    def fits(self, bid: Bid, ask: Ask, before: int | None = None) -> Iterator[tuple[int, tuple[int, ...]]]:
        """Every start on ``ask`` (before ``before`` if given), earliest first, where ``bid.nodes`` nodes are free
        for the whole duration, each with those nodes (the lowest 0-based positions free then, as
        ``booking_create`` takes them)."""
        duration = bid.duration_hours
        if self.longest[ask.cluster_id] < duration:
            return
        first = bid.earliest_start if bid.earliest_start > ask.start else ask.start
        last = (bid.latest_end if bid.latest_end < ask.end else ask.end) - duration
        if before is not None and last >= before:
            last = before - 1
        if last < first or duration < ask.min_hours:
            return
        if bid.max_gpus_per_node and ask.gpus_per_node > bid.max_gpus_per_node:
            return
        if len(self.masks[ask.cluster_id]) < bid.nodes:
            return
        window = ((1 << (last - first + 1)) - 1) << first
        levels = self.atleast[ask.cluster_id]
        level = levels[bid.nodes - 1] if bid.nodes <= len(levels) else levels[-1]
        runs = self._runs
        key = (level, duration)
        if (run := runs.get(key)) is None:
            run = runs[key] = _run_starts(level, duration)
        if not run & window:
            return  # never enough nodes free in every hour of any allowed slot: skip the per-group work
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
                chosen = fitting[0][:needed] if len(fitting) == 1 else sorted(
                    itertools.chain.from_iterable(fitting))[:needed]
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


def _greedy(bids: Sequence[Bid], asks: Sequence[Ask] | _Capacity, *, tight: bool = False,
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

    First a greedy plan: bids by the surplus they would make on the cheapest ask they accept (largest first:
    the value at stake, so big, valuable bids are packed before small ones fragment the cheap capacity), each in
    ``tightest_slot`` (the cheapest price, best fit). Then, budget permitting, the continuous arrival-order plan,
    the better one kept — so never worse than ``continuous`` when the budget allows it (always on small markets;
    one greedy plan takes ~1.5–2 s on 10k bids × 2k listings) — and the improvement pass (``_improve``), stopped
    at the budget. The budget bounds the optional work; the first greedy plan always completes.
    Each bid at most once, in application order: applied in this order, ``booking_create`` (the lowest-numbered
    nodes free for the window) reserves exactly the nodes of each assignment (see ``_as_applied``), so no fill of
    the plan is lost to the order of application.
    """
    deadline = time.monotonic() + time_budget_s
    started = time.monotonic()
    capacity = _Capacity(asks)
    by_value = sorted(bids, key=lambda b: (-_value_at_stake(b, capacity), b.created, b.bid_id))
    plan, capacity = _greedy(by_value, capacity, tight=True)
    took = time.monotonic() - started
    arrival_plan = None
    if time.monotonic() + took < deadline:  # always on small markets; skipped when it would overrun the budget
        arrival_plan, arrival_capacity = _greedy(sorted(bids, key=lambda b: (b.created, b.bid_id)), asks)
        if total_surplus(arrival_plan) > total_surplus(plan):
            plan, capacity = arrival_plan, arrival_capacity
    plan = _as_applied(_improve(plan, capacity, by_value, deadline), asks)
    if arrival_plan is not None and total_surplus(arrival_plan) > total_surplus(plan):
        return arrival_plan  # (arrival order: continuous matching's own plan, applied as planned)
    return plan


def _as_applied(plan: Sequence[Assignment], asks: Sequence[Ask]) -> list[Assignment]:
    """``plan`` as booking it in order does it: each assignment on the lowest-numbered nodes free for its window
    once the earlier ones are booked. A greedy plan, built in that order, comes out unchanged; an improvement move
    (evict, re-seat) can shift the nodes of a later assignment, and, rarely, leave one without room: it is left
    out (its bid stays open), so the plan's surplus is what applying it yields."""
    masks: dict[int, list[int]] = {}
    for ask in asks:
        masks.setdefault(ask.cluster_id, list(ask.node_free))
    applied = []
    for a in plan:
        bits = ((1 << (a.end - a.start)) - 1) << a.start
        cluster = masks[a.cluster_id]
        free = [i for i, mask in enumerate(cluster) if mask & bits == bits][:a.nodes]
        if len(free) < a.nodes:
            continue
        for i in free:
            cluster[i] &= ~bits
        nodes = tuple(i + 1 for i in free)
        applied.append(a if nodes == a.node_indexes else dataclasses.replace(a, node_indexes=nodes))
    return applied


def _value_at_stake(bid: Bid, capacity: _Capacity):
    """The bid's surplus on the cheapest ask of its accelerators (0 when there is none it could afford)."""
    candidates = capacity.candidates(bid)
    return max(surplus_of(bid, candidates[0]), 0) if candidates else 0


def _improve(plan: list[Assignment], capacity: _Capacity, bids: Sequence[Bid], deadline: float) -> list[Assignment]:
    """Seat unassigned bids by evicting one assignment in their way (lowest surplus first) and re-seating the
    evicted bid elsewhere when possible; a move is kept only if the total surplus rises, so the total never falls."""
    assigned = {a.bid_id: a for a in plan}
    bid_by_id = {b.bid_id: b for b in bids}
    by_cluster: dict[int, list[Assignment]] = defaultdict(list)
    for a in plan:
        by_cluster[a.cluster_id].append(a)
    for bid in bids:
        if time.monotonic() > deadline:
            break
        if bid.bid_id in assigned:
            continue
        # First a plain retry: an earlier move may have freed room.
        seat = capacity.best_slot(bid)
        if seat is not None:
            capacity.take(seat)
            assigned[bid.bid_id] = seat
            by_cluster[seat.cluster_id].append(seat)
            continue
        for ask in capacity.candidates(bid):
            if ask.price >= bid.max_price:
                break
            victims = sorted((v for v in by_cluster.get(ask.cluster_id, ())
                              if v.start < min(bid.latest_end, ask.end) and v.end > max(bid.earliest_start, ask.start)),
                             key=lambda v: v.surplus)
            moved = False
            for victim in victims[:4]:
                capacity.give_back(victim)
                seat = capacity.best_slot(bid)
                if seat is None:
                    capacity.take(victim)
                    continue
                capacity.take(seat)
                reseat = capacity.best_slot(bid_by_id[victim.bid_id])
                if reseat is not None:
                    capacity.take(reseat)
                if seat.surplus + (reseat.surplus if reseat is not None else 0) <= victim.surplus:
                    for undo in (seat, reseat):  # no gain: put the victim back where it was
                        if undo is not None:
                            capacity.give_back(undo)
                    capacity.take(victim)
                    continue
                del assigned[victim.bid_id]
                by_cluster[victim.cluster_id].remove(victim)
                for a in (seat, reseat):
                    if a is not None:
                        assigned[a.bid_id] = a
                        by_cluster[a.cluster_id].append(a)
                moved = True
                break
            if moved or time.monotonic() > deadline:
                break
    return list(assigned.values())


def lp_upper_bound(bids: Sequence[Bid], asks: Sequence[Ask], *, time_limit_s: float | None = None) -> float:
    """An upper bound on the total surplus of any feasible plan: the LP relaxation's optimum, by column generation
    with scipy ``linprog(method="highs")`` (``orders.matching_lp.lp_relaxation``; needs numpy and scipy). With a
    ``time_limit_s`` that stops it early, still a valid upper bound (a Lagrangian one), only looser."""
    from orders.matching_lp import lp_relaxation

    return lp_relaxation(bids, asks, time_limit_s=time_limit_s).bound

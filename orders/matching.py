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
- ``clear(bids, asks, time_budget_s)``: batch — maximise total surplus. Two greedy plans (bids by surplus density
  = max price, highest first; and, budget permitting, the continuous arrival order), the better one kept, then an
  improvement pass
  (evict a lower-surplus assignment to seat a higher-surplus unassigned bid, re-seat the evicted one elsewhere
  if possible; kept only when the total rises), stopped at the time budget.
- ``lp_upper_bound(bids, asks)``: the LP relaxation's optimum (scipy HiGHS), an upper bound on any plan.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
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


# How many "at least k nodes free" masks each cluster keeps for the quick reject (bids rarely want more nodes).
ATLEAST_LEVELS = 16


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
        for mask in masks:  # bit-sliced counting: level k gains the hours where level k - 1 already had a node
            for k in range(len(levels) - 1, 0, -1):
                levels[k] |= levels[k - 1] & mask
            if levels:
                levels[0] |= mask
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

    def earliest_fit(self, bid: Bid, ask: Ask, before: int | None = None) -> tuple[int, tuple[int, ...]] | None:
        """The earliest start on ``ask`` (before ``before`` if given) where ``bid.nodes`` nodes are free for the
        whole duration, with those nodes (lowest indexes); None when there is none."""
        duration = bid.duration_hours
        if self.longest[ask.cluster_id] < duration:
            return None
        first = bid.earliest_start if bid.earliest_start > ask.start else ask.start
        last = (bid.latest_end if bid.latest_end < ask.end else ask.end) - duration
        if before is not None and last >= before:
            last = before - 1
        if last < first or duration < ask.min_hours:
            return None
        if bid.max_gpus_per_node and ask.gpus_per_node > bid.max_gpus_per_node:
            return None
        if len(self.masks[ask.cluster_id]) < bid.nodes:
            return None
        window = ((1 << (last - first + 1)) - 1) << first
        levels = self.atleast[ask.cluster_id]
        level = levels[bid.nodes - 1] if bid.nodes <= len(levels) else levels[-1]
        if not _run_starts(level, duration) & window:
            return None  # never enough nodes free in every hour of any allowed slot: skip the per-group work
        runs = self._runs
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
                chosen = fitting[0][:needed] if len(fitting) == 1 else heapq.nsmallest(
                    needed, itertools.chain.from_iterable(fitting))
                return bit.bit_length() - 1, tuple(chosen)
            union ^= bit
        return None

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
        ask, (start, nodes) = best
        return Assignment(bid_id=bid.bid_id, listing_id=ask.listing_id, cluster_id=ask.cluster_id, start=start,
                          end=start + bid.duration_hours, nodes=bid.nodes, price=ask.price,
                          gpu_hours=ask.gpus_per_node * bid.nodes * bid.duration_hours,
                          surplus=surplus_of(bid, ask), node_indexes=tuple(i + 1 for i in nodes))

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


def _greedy(bids: Sequence[Bid], asks: Sequence[Ask]) -> tuple[list[Assignment], _Capacity]:
    capacity = _Capacity(asks)
    plan = []
    for bid in bids:
        assignment = capacity.best_slot(bid)
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

    Never worse than ``continuous`` on the same market when the budget allows the second greedy plan (both are
    computed and the better kept; one greedy plan takes ~1.5 s on 10k bids × 2k listings). The budget bounds the
    optional work; the first greedy plan always completes.
    Returned in application order (highest surplus first), each bid at most once.
    """
    deadline = time.monotonic() + time_budget_s
    by_density = sorted(bids, key=lambda b: (-b.max_price, b.created, b.bid_id))
    started = time.monotonic()
    plan, capacity = _greedy(by_density, asks)
    took = time.monotonic() - started
    if time.monotonic() + took < deadline:  # always on small markets; skipped when it would overrun the budget
        arrival_plan, arrival_capacity = _greedy(sorted(bids, key=lambda b: (b.created, b.bid_id)), asks)
        if total_surplus(arrival_plan) > total_surplus(plan):
            plan, capacity = arrival_plan, arrival_capacity
    plan = _improve(plan, capacity, by_density, deadline)
    return sorted(plan, key=lambda a: (-a.surplus, a.bid_id))


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


def lp_upper_bound(bids: Sequence[Bid], asks: Sequence[Ask]) -> float:
    """The optimum of an LP relaxation of ``clear``'s problem (scipy ``linprog(method="highs")``): an upper bound
    on the total surplus of any feasible plan.

    Variables: x[bid, ask class, start] ∈ [0, 1]; Σ x ≤ 1 per bid; per class and hour, Σ nodes·x ≤ free nodes.
    To keep it tractable, asks with the same (accelerator, price, GPUs per node, minimum hours) form one class
    whose per-hour capacity is the sum of its clusters' free node counts (a sum of valid constraints, so still a
    relaxation: it drops "one cluster", "the same nodes all along" and integrality). A bid needing more nodes than
    the largest cluster of a class gets no column there. Only slots with positive
    surplus are columns (the others never raise the optimum), and slots where the class has fewer free nodes than
    the bid needs in some hour are left out (no feasible plan can use them, so the bound stays valid).
    """
    import numpy as np
    from scipy.optimize import linprog
    from scipy.sparse import csc_matrix

    classes: dict[tuple, dict] = {}
    open_hours: dict[tuple, int] = defaultdict(int)  # (class, cluster) → hours its listings of the class are open
    node_free: dict[int, tuple[int, ...]] = {}
    for ask in asks:
        key = (ask.accelerator, ask.price, ask.gpus_per_node, ask.min_hours)
        cls = classes.setdefault(key, {"free": defaultdict(int), "start": ask.start, "end": ask.end, "ask": ask,
                                       "size": 0})
        cls["start"], cls["end"] = min(cls["start"], ask.start), max(cls["end"], ask.end)
        cls["size"] = max(cls["size"], len(ask.node_free))
        open_hours[key, ask.cluster_id] |= ((1 << (ask.end - ask.start)) - 1) << ask.start
        node_free.setdefault(ask.cluster_id, ask.node_free)
    for (key, cluster_id), hours in open_hours.items():  # a cluster's nodes count once per class and hour
        for hour in range(hours.bit_length()):
            if hours >> hour & 1:
                classes[key]["free"][hour] += sum(1 for mask in node_free[cluster_id] if mask >> hour & 1)
    by_accelerator: dict[str, list[tuple]] = defaultdict(list)
    for key in classes:
        by_accelerator[key[0]].append(key)

    row_of: dict[tuple, int] = {}
    rows, cols, vals, objective = [], [], [], []
    n_bids = len(bids)
    for b_index, bid in enumerate(bids):
        for acc in bid.accelerators:
            for key in by_accelerator.get(acc, ()):
                cls = classes[key]
                if key[1] >= bid.max_price or bid.duration_hours < key[3] or bid.nodes > cls["size"] or (
                        bid.max_gpus_per_node and key[2] > bid.max_gpus_per_node):
                    continue
                value = float(surplus_of(bid, cls["ask"]))
                first = max(bid.earliest_start, cls["start"])
                last = min(bid.latest_end, cls["end"]) - bid.duration_hours
                for start in range(first, last + 1):
                    hours = range(start, start + bid.duration_hours)
                    if any(cls["free"].get(h, 0) < bid.nodes for h in hours):
                        continue  # no cluster of the class has the nodes then: no plan uses this slot
                    column = len(objective)
                    objective.append(-value)
                    rows.append(b_index)
                    cols.append(column)
                    vals.append(1.0)
                    for hour in hours:
                        row = row_of.setdefault((key, hour), n_bids + len(row_of))
                        rows.append(row)
                        cols.append(column)
                        vals.append(float(bid.nodes))
    if not objective:
        return 0.0
    capacity_rows = sorted(row_of.items(), key=lambda item: item[1])
    b_ub = np.concatenate([np.ones(n_bids), [float(classes[key]["free"].get(hour, 0))
                                             for (key, hour), _ in capacity_rows]])
    matrix = csc_matrix((vals, (rows, cols)), shape=(n_bids + len(row_of), len(objective)))
    result = linprog(np.array(objective), A_ub=matrix, b_ub=b_ub, bounds=(0, 1), method="highs")
    if result.status != 0:
        raise RuntimeError(f"LP relaxation failed: {result.message}")
    return -result.fun

"""Exact batch clearing: the best plan that books as planned, by a MILP (HiGHS, through ``highspy``) and a seating
search, for markets small enough to solve; and a MILP-based large-neighbourhood search for the others.

Pure: dataclasses in, placements out, no ORM. It reads ``orders.matching``'s ``Bid``, ``Ask`` and ``Assignment``
by their attributes and imports nothing of ``orders.matching``, which imports it (the modules of an app may not
import each other in a cycle).

**What "exact" means here.** A plan books as planned when, applied in order, each fill gets the lowest-numbered
nodes of its cluster free for its whole window (what ``booking_create`` takes) and that is enough nodes. This is
stricter than node feasibility: two 2-node bookings may fit on four nodes that exist, yet whichever goes first
takes a pair the other needed. Nor is it closed under subsets: a third booking can steer the first two apart, so
three bookings may seat together while two of them alone cannot. ``solve`` finds the optimum over plans that
book as planned by a logic-based Benders loop:

- *master* — a MILP over slots: one binary ``x`` per (bid, cluster, start) where the bid may run (an ask of the
  cluster it may take — accelerator, both windows, minimum hours, GPUs per node, for a voucher bid a listing of its
  ``net_prices`` — at a price below its maximum, and at least ``nodes`` nodes free for the whole window; of the
  cluster's asks allowing it, the one where the bid pays least, then the oldest), valued at its surplus; a bid at
  most once; and node counts that any plan booking as planned respects, since its fills keep the same nodes all
  along: per cluster and hour, the nodes free then; per span of hours, the nodes free all through it, for the
  slots holding the whole span; per hour and set of nodes ``E`` free for some slot's window, ``|E|`` for the slots
  running then that can only use nodes of ``E`` (Hall's condition). So its optimum bounds every such plan.
- *seating* — each cluster's share of a master solution is split into groups of bookings linked by overlapping
  windows (bookings whose windows do not overlap cannot change each other's lowest free nodes), and each group is
  seated: a depth-first search over booking orders for one in which lowest-free booking books all of it
  (``_seat``; complete unless it runs out of steps).
- *cuts* — for a group that cannot be seated: if some hour fails Hall's condition (``_hall_violation``: the
  bookings running then cannot get distinct nodes free for their windows), the row for that hour and set of nodes
  over all the cluster's slots; else Σ_{j∈G} x_j − Σ_{k∈O(G)} x_k ≤ |G| − 1, with ``O(G)`` the cluster's other
  slots overlapping a window of the group ``G``. Valid: a plan holding ``G`` and no slot of ``O(G)`` books ``G``
  exactly as ``G`` alone would (its other bookings touch none of ``G``'s hours), which cannot be done. The
  master is solved again, warm-started from the best seated plan.

When the master is solved to optimality and every group seats, that plan is optimal over plans that book as
planned (to HiGHS's ``mip_rel_gap``). Out of time, the best seated plan found is returned (an unseatable group is
first reduced to a subset that seats, keeping the most valuable bookings). Before the whole master, the same loop
runs on the master restricted to the slots its LP relaxation uses and the caller's plan (``_support_plan``, a
relaxation-induced neighbourhood of a tenth of the slots or so): HiGHS spends seconds at the root of the whole
master before its own heuristics find plans, and this finds a good one in a fraction of that.

numpy is imported for ``highspy``'s array arguments (it is ``highspy``'s own dependency); scipy is not used.

``improve`` is the large-neighbourhood search for markets too large for one MILP: around unseated bids, it
re-solves a cluster's bookings within a window of hours with ``solve`` and keeps the result when it adds surplus.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import highspy
import numpy as np


@dataclass(frozen=True)
class Placement:
    """One fill of a plan: ``bid`` on listing ``ask`` for ``[start, start + bid.duration_hours)`` on the 0-based
    node ``positions`` of its cluster that booking the plan in order gives it (the lowest-numbered free ones)."""

    bid: object
    ask: object
    start: int
    positions: tuple[int, ...]


@dataclass(frozen=True)
class ExactPlan:
    """``placements`` in booking order (applied in this order, each gets exactly its ``positions``); ``value``:
    their surplus as the model counts it (floats); ``bound``: no plan that books as planned has more surplus
    (HiGHS's dual bound, within its tolerances; an upper bound only when ``proven``); ``optimal``: ``value``
    reaches ``bound`` within ``mip_rel_gap``; ``proven``: every cut was proven (no seating search ran out of
    steps); ``rounds``: master solves; ``slots``: master columns."""

    placements: tuple[Placement, ...]
    value: float
    bound: float
    optimal: bool
    proven: bool
    slots: int
    rounds: int
    seconds: float


class TooLarge(Exception):
    """The market has more slots than the caller allowed (``max_slots``): solve it by neighbourhoods instead."""


@dataclass(frozen=True, eq=False)
class _Slot:
    bid: object
    ask: object
    cluster: int
    start: int
    end: int
    nodes: int
    value: float

    @property
    def window(self) -> int:
        return ((1 << (self.end - self.start)) - 1) << self.start


# A seating search gives up (and its group counts as unseatable, unproven) after this many bookings tried.
SEAT_STEPS = 20_000
# ... of which this many are always granted, deadline or not (enough to seat a group that seats at all, mostly).
SEAT_STEPS_LATE = 1_000
# The first plan comes from the MILP restricted to the LP relaxation's support (and the start plan's slots) when
# that is at most this share of the slots; it may use this share of the time left.
SUPPORT_SIZE = 0.5
SUPPORT_SHARE = 0.3
# HiGHS's relative gap for the engine: 0.01 % of the surplus, far below what the issue asks (0.5 %).
ENGINE_GAP = 1e-4


def _run_starts(mask: int, duration: int) -> int:
    """Bits ``s`` of ``mask`` where ``duration`` set bits begin (``s .. s + duration - 1`` all set), by doubling."""
    run, k = mask, 1
    while k < duration and run:
        step = k if k < duration - k else duration - k
        run &= run >> step
        k += step
    return run


def _cluster_masks(asks: Iterable) -> dict[int, tuple[int, ...]]:
    """Per cluster id: its node masks (the first ask's, as ``orders.matching`` keys them)."""
    masks: dict[int, tuple[int, ...]] = {}
    for ask in asks:
        masks.setdefault(ask.cluster_id, tuple(ask.node_free))
    return masks


def _price(bid, ask):
    """What ``bid`` pays per GPU-hour on ``ask`` (its net price there for a voucher bid); None where it may not."""
    if bid.net_prices is None:
        return ask.price
    return bid.net_prices.get(ask.listing_id)


def _candidates(bid, by_accelerator: dict[str, list]) -> list[tuple[object, object]]:
    """(price, ask) pairs the bid may take below its maximum, cheapest for it first, then the oldest listing."""
    out = []
    for accelerator in bid.accelerators:
        for ask in by_accelerator.get(accelerator, ()):
            price = _price(bid, ask)
            if price is not None and price < bid.max_price:
                out.append((price, ask))
    out.sort(key=lambda pair: (pair[0], pair[1].created, pair[1].listing_id))
    return out


def _by_accelerator(asks: Iterable) -> dict[str, list]:
    grouped: dict[str, list] = defaultdict(list)
    for ask in asks:
        grouped[ask.accelerator].append(ask)
    return grouped


def _slots(bids: Sequence, asks: Sequence, masks: dict[int, tuple[int, ...]], max_slots: int | None) -> list[_Slot]:
    """Every slot of the market (module docstring); raises ``TooLarge`` past ``max_slots``."""
    by_accelerator = _by_accelerator(asks)
    groups = {c: _groups(m) for c, m in masks.items()}
    runs: dict[tuple[int, int], int] = {}
    slots: list[_Slot] = []
    for bid in bids:
        seen: set[tuple[int, int]] = set()
        duration = bid.duration_hours
        for price, ask in _candidates(bid, by_accelerator):
            if duration < ask.min_hours or (bid.max_gpus_per_node and ask.gpus_per_node > bid.max_gpus_per_node):
                continue
            if len(masks[ask.cluster_id]) < bid.nodes:
                continue
            first, last = max(bid.earliest_start, ask.start), min(bid.latest_end, ask.end) - duration
            if last < first:
                continue
            value = float((bid.max_price - price) * ask.gpus_per_node * bid.nodes * duration)
            for start in _fitting_starts(groups[ask.cluster_id], bid.nodes, duration, first, last, runs):
                if (ask.cluster_id, start) not in seen:  # else a cheaper ask of the cluster offers it already
                    seen.add((ask.cluster_id, start))
                    slots.append(_Slot(bid, ask, ask.cluster_id, start, start + duration, bid.nodes, value))
            if max_slots is not None and len(slots) > max_slots:
                raise TooLarge(f"more than {max_slots} slots")
    return slots


def _groups(masks: Sequence[int]) -> list[tuple[int, int]]:
    """(mask, how many nodes have it) per distinct non-zero free-hour mask."""
    counts: dict[int, int] = defaultdict(int)
    for mask in masks:
        if mask:
            counts[mask] += 1
    return list(counts.items())


def _fitting_starts(
    groups: list[tuple[int, int]], nodes: int, duration: int, first: int, last: int, runs: dict[tuple[int, int], int]
) -> Iterable[int]:
    """Starts in ``[first, last]`` where at least ``nodes`` nodes are free for ``duration`` hours, earliest first."""
    allowed = ((1 << (last - first + 1)) - 1) << first
    fitting = []
    for mask, count in groups:
        key = (mask, duration)
        if (run := runs.get(key)) is None:
            run = runs[key] = _run_starts(mask, duration)
        if run & allowed:
            fitting.append((run & allowed, count))
    union = _union(run for run, _ in fitting)
    while union:
        bit = union & -union
        union ^= bit
        if sum(count for run, count in fitting if run & bit) >= nodes:
            yield bit.bit_length() - 1


def _union(masks: Iterable[int]) -> int:
    union = 0
    for mask in masks:
        union |= mask
    return union


# --- the master MILP ---------------------------------------------------------------------------------------------


class _Master:
    """The master MILP in HiGHS: one binary column per slot; bid rows, capacity rows, and the cuts added."""

    def __init__(self, slots: list[_Slot], masks: dict[int, tuple[int, ...]]):
        self.slots = slots
        self.masks = masks
        self._eligible_nodes: dict[tuple[int, int, int], int] = {}
        # ``highspy._Highs`` rather than ``highspy.Highs``: the wrapper prints a banner to stdout when built,
        # and the engine runs inside web and Celery workers.
        self.highs = highspy._Highs()
        for option, value in (("output_flag", False), ("threads", 1), ("random_seed", 0)):
            self.highs.setOptionValue(option, value)
        n = len(slots)
        columns = np.arange(n, dtype=np.int32)
        self.highs.addVars(n, np.zeros(n), np.ones(n))
        self.highs.changeColsCost(n, columns, np.array([-s.value for s in slots]))  # HiGHS minimises
        self.highs.changeColsIntegrality(n, columns, np.full(n, highspy.HighsVarType.kInteger))
        self._add_rows([*self._bid_rows(), *self._capacity_rows(masks)])

    def _bid_rows(self) -> Iterable[tuple[list[int], list[float], float]]:
        by_bid: dict[int, list[int]] = defaultdict(list)
        for j, slot in enumerate(self.slots):
            by_bid[id(slot.bid)].append(j)
        for members in by_bid.values():
            if len(members) > 1:
                yield members, [1.0] * len(members), 1.0

    def _capacity_rows(self, masks: dict[int, tuple[int, ...]]) -> Iterable[tuple[list[int], list[float], float]]:
        """Per cluster and hour, Σ nodes·x over the slots running then ≤ nodes free then; of the hours with the
        same slots running only the tightest, and none where those slots cannot exceed it anyway."""
        by_cluster: dict[int, list[int]] = defaultdict(list)
        for j, slot in enumerate(self.slots):
            by_cluster[slot.cluster].append(j)
        for cluster_id, members in by_cluster.items():
            tightest: dict[tuple[int, ...], int] = {}
            for hour in range(min(self.slots[j].start for j in members), max(self.slots[j].end for j in members)):
                running = tuple(j for j in members if self.slots[j].start <= hour < self.slots[j].end)
                free = sum(1 for mask in masks[cluster_id] if mask >> hour & 1)
                if running and sum(self.slots[j].nodes for j in running) > free:
                    tightest[running] = min(free, tightest.get(running, free))
            for running, free in tightest.items():
                yield list(running), [float(self.slots[j].nodes) for j in running], float(free)
            yield from self._span_rows(members, masks[cluster_id])
            yield from self._eligibility_rows(members, masks[cluster_id])

    def _eligibility_rows(
        self, members: list[int], masks: tuple[int, ...]
    ) -> Iterable[tuple[list[int], list[float], float]]:
        """Per hour where a slot starts and per set ``E`` of nodes free for some slot's whole window: the slots
        running then that can only use nodes of ``E`` overlap each other, so Σ nodes·x ≤ |E| (Hall's condition
        for those sets). Only where it can bind and is tighter than the hour's own row; one row per set of slots."""
        slots = self.slots
        eligible = {j: self._eligible(slots[j]) for j in members}
        tightest: dict[frozenset, int] = {}
        for hour in sorted({slots[j].start for j in members}):
            running = [j for j in members if slots[j].start <= hour < slots[j].end]
            free_now = sum(1 for mask in masks if mask >> hour & 1)
            for nodes in {eligible[j] for j in running}:
                size = nodes.bit_count()
                if size >= free_now:
                    continue
                inside = frozenset(j for j in running if not eligible[j] & ~nodes)
                if sum(slots[j].nodes for j in inside) > size:
                    tightest[inside] = min(size, tightest.get(inside, size))
        for inside, size in tightest.items():
            chosen = sorted(inside)
            yield chosen, [float(slots[j].nodes) for j in chosen], float(size)

    def _span_rows(self, members: list[int], masks: tuple[int, ...]) -> Iterable[tuple[list[int], list[float], float]]:
        """Per span ``[a, b)`` (a slot's start, another's end): the slots whose windows hold the whole span
        overlap each other, so they need distinct nodes, each free for all of the span: Σ nodes·x ≤ the nodes
        free throughout ``[a, b)``. Kept only where that is fewer than in the span's tightest hour (nodes busy
        at different hours of the span: what the hour rows miss), one row per set of slots."""
        slots = self.slots
        by_start: dict[int, int] = defaultdict(int)  # start → bitset (over ``members``) of slots starting there
        by_end: dict[int, int] = defaultdict(int)
        by_nodes: dict[int, int] = defaultdict(int)
        for k, j in enumerate(members):
            by_start[slots[j].start] |= 1 << k
            by_end[slots[j].end] |= 1 << k
            by_nodes[slots[j].nodes] |= 1 << k
        starts, ends = sorted(by_start), sorted(by_end, reverse=True)
        started = list(itertools.accumulate(by_start[a] for a in starts))  # slots starting at or before a
        ending = list(itertools.accumulate(by_end[b] for b in ends))  # slots ending at or after b
        hourly = [sum(1 for mask in masks if mask >> h & 1) for h in range(max(ends) + 1)]
        tightest: dict[int, int] = {}
        for a, holding_a in zip(starts, started, strict=True):
            for b, holding_b in zip(ends, ending, strict=True):
                if b <= a:
                    break
                span = ((1 << (b - a)) - 1) << a
                free = sum(1 for mask in masks if mask & span == span)
                if free >= min(hourly[a:b]):
                    continue  # an hour row is at least as tight
                holding = holding_a & holding_b
                if sum(nodes * (holding & bits).bit_count() for nodes, bits in by_nodes.items()) > free:
                    tightest[holding] = min(free, tightest.get(holding, free))
        for holding, free in tightest.items():
            chosen = [members[k] for k in range(len(members)) if holding >> k & 1]
            yield chosen, [float(slots[j].nodes) for j in chosen], float(free)

    def _add_rows(self, rows: list[tuple[list[int], list[float], float]]) -> None:
        if not rows:
            return
        upper = np.array([row[2] for row in rows], dtype=float)
        starts = np.cumsum([0] + [len(row[0]) for row in rows[:-1]]).astype(np.int32)
        index = np.fromiter(itertools.chain.from_iterable(row[0] for row in rows), dtype=np.int32)
        value = np.fromiter(itertools.chain.from_iterable(row[1] for row in rows), dtype=float)
        self.highs.addRows(len(rows), np.full(len(rows), -np.inf), upper, len(index), starts, index, value)

    def cut(self, group: list[int], overlapping: list[int]) -> None:
        """Σ_{group} x − Σ_{overlapping} x ≤ |group| − 1 (module docstring)."""
        self._add_rows(
            [([*group, *overlapping], [1.0] * len(group) + [-1.0] * len(overlapping), float(len(group) - 1))]
        )

    def hall_cut(self, cluster: int, hour: int, nodes: int) -> None:
        """Σ nodes·x ≤ |nodes| over the cluster's slots running at ``hour`` that can only use ``nodes`` (a bitset of
        positions): they overlap each other there, so they need that many distinct nodes among those."""
        members = [
            j
            for j, s in enumerate(self.slots)
            if s.cluster == cluster and s.start <= hour < s.end and not self._eligible(s) & ~nodes
        ]
        self._add_rows([(members, [float(self.slots[j].nodes) for j in members], float(nodes.bit_count()))])

    def _eligible(self, slot: _Slot) -> int:
        key = (slot.cluster, slot.start, slot.end)
        if (eligible := self._eligible_nodes.get(key)) is None:
            eligible = self._eligible_nodes[key] = _eligible(self.masks[slot.cluster], slot.window)
        return eligible

    def offer(self, chosen: Iterable[int]) -> None:
        """Give HiGHS the solution choosing exactly the ``chosen`` slots as its first incumbent."""
        values = np.zeros(len(self.slots))
        values[list(chosen)] = 1.0
        solution = highspy.HighsSolution()
        solution.col_value = values
        self.highs.setSolution(solution)

    def relaxation(self, time_limit_s: float | None) -> list[int]:
        """The slots the LP relaxation's optimum uses (x > 0); none if HiGHS did not solve it in time."""
        n = len(self.slots)
        columns = np.arange(n, dtype=np.int32)
        self.highs.changeColsIntegrality(n, columns, np.full(n, highspy.HighsVarType.kContinuous))
        self.highs.setOptionValue("time_limit", float(time_limit_s) if time_limit_s is not None else np.inf)
        self.highs.run()
        solved = self.highs.getModelStatus() == highspy.HighsModelStatus.kOptimal
        values = self.highs.getSolution().col_value
        self.highs.changeColsIntegrality(n, columns, np.full(n, highspy.HighsVarType.kInteger))
        return [j for j in range(n) if values[j] > 1e-6] if solved else []

    def solve(self, time_limit_s: float | None, mip_rel_gap: float) -> tuple[list[int], float, bool] | None:
        """HiGHS's best solution within ``time_limit_s``: (the slots it chooses, the dual bound as surplus, solved
        to optimality); None when it found none."""
        highs = self.highs
        highs.setOptionValue("time_limit", float(time_limit_s) if time_limit_s is not None else np.inf)
        highs.setOptionValue("mip_rel_gap", mip_rel_gap)
        highs.run()
        info = highs.getInfo()
        if info.primal_solution_status != highspy.SolutionStatus.kSolutionStatusFeasible:
            return None
        values = highs.getSolution().col_value
        chosen = [j for j in range(len(self.slots)) if values[j] > 0.5]
        return chosen, -info.mip_dual_bound, highs.getModelStatus() == highspy.HighsModelStatus.kOptimal


# --- seating -----------------------------------------------------------------------------------------------------


def _lowest_free(masks: Sequence[int], window: int, nodes: int) -> list[int] | None:
    """The ``nodes`` lowest positions free for the whole ``window``, as ``booking_create`` takes them; None if
    fewer are."""
    free = []
    for position, mask in enumerate(masks):
        if mask & window == window:
            free.append(position)
            if len(free) == nodes:
                return free
    return None


class _Steps:
    """A seating search's allowance: bookings tried, and a deadline (``time.monotonic()``) checked now and then."""

    def __init__(self, steps: int = SEAT_STEPS, deadline: float | None = None):
        self.left = steps
        self.deadline = deadline

    def take(self) -> bool:
        """Count one booking tried; False once the allowance is spent (past the deadline, after the first
        ``SEAT_STEPS_LATE``)."""
        self.left -= 1
        late = self.left % 256 == 0 and self.left < SEAT_STEPS - SEAT_STEPS_LATE
        if late and self.deadline is not None and time.monotonic() > self.deadline:
            self.left = 0
        return self.left > 0

    @property
    def exhausted(self) -> bool:
        return self.left <= 0


def _seat(masks: Sequence[int], members: Sequence[_Slot], steps: _Steps) -> list[tuple[_Slot, tuple]] | None:
    """An order in which booking ``members`` one by one on the lowest-numbered free nodes books every one, with
    the positions each gets; None when there is none or ``steps`` ran out (``steps.exhausted`` tells which).

    Depth-first over orders. Booking only takes nodes away, so a member with too few nodes free for its window
    now never fits later: such a state is dead, as is one seen dead before (same masks, same members left).
    Members alike (same window and nodes) are interchangeable: one of them is tried per step. The most
    constrained (fewest spare nodes), then the earliest, are tried first."""
    windows = [m.window for m in members]
    order: list[tuple[_Slot, tuple]] = []
    dead: set[tuple[tuple[int, ...], frozenset]] = set()

    def search(state: list[int], left: frozenset) -> bool:
        if not left:
            return True
        key = (tuple(state), left)
        if key in dead:
            return False
        ranked = []
        for i in left:
            spare = sum(1 for mask in state if mask & windows[i] == windows[i]) - members[i].nodes
            if spare < 0:
                dead.add(key)
                return False
            ranked.append((spare, members[i].start, members[i].end, members[i].nodes, i))
        ranked.sort()
        tried = set()
        for _, start, end, nodes, i in ranked:
            if (start, end, nodes) in tried:
                continue
            tried.add((start, end, nodes))
            if not steps.take():
                return False
            positions = _lowest_free(state, windows[i], nodes)
            after = list(state)
            for p in positions:
                after[p] &= ~windows[i]
            order.append((members[i], tuple(positions)))
            if search(after, left - {i}):
                return True
            order.pop()
            if steps.exhausted:
                return False
        dead.add(key)
        return False

    return order if search(list(masks), frozenset(range(len(members)))) else None


def _eligible(masks: Sequence[int], window: int) -> int:
    """Bitset of the positions free for the whole ``window``."""
    return sum(1 << position for position, mask in enumerate(masks) if mask & window == window)


def _hall_violation(masks: Sequence[int], group: Sequence[_Slot]) -> tuple[int, int] | None:
    """An hour and a set of nodes (bitset) such that the members running then that can only use those nodes need
    more of them than there are (Hall's condition, by matching each node a member needs to a node free for its
    window); None when every hour passes. Only the members' start hours are checked: the members running at any
    hour all run at the latest start before it."""
    eligible = [_eligible(masks, s.window) for s in group]
    for hour in sorted({s.start for s in group}):
        needs = [eligible[i] for i, s in enumerate(group) if s.start <= hour < s.end for _ in range(s.nodes)]
        if (short := _unmatchable(needs)) is not None:
            return hour, short
    return None


def _unmatchable(needs: Sequence[int]) -> int | None:
    """Match each need (a bitset of the nodes it may take) to a node of its own; None when all can be, else the
    nodes (bitset) reachable by alternating paths from the first need left over: the needs that can only use them
    outnumber them."""
    owner: dict[int, int] = {}  # node → the need it serves

    def augment(need: int, seen: set[int]) -> bool:
        candidates = needs[need]
        while candidates:
            bit = candidates & -candidates
            candidates ^= bit
            node = bit.bit_length() - 1
            if node not in seen:
                seen.add(node)
                if node not in owner or augment(owner[node], seen):
                    owner[node] = need
                    return True
        return False

    for need in range(len(needs)):
        seen: set[int] = set()
        if not augment(need, seen):
            return sum(1 << node for node in seen)
    return None


def _overlap_groups(members: Sequence[_Slot]) -> list[list[_Slot]]:
    """``members`` split into groups linked by overlapping windows (the merged intervals), earliest first."""
    groups: list[list[_Slot]] = []
    reach = -1
    for slot in sorted(members, key=lambda s: (s.start, s.end)):
        if slot.start >= reach:
            groups.append([])
        groups[-1].append(slot)
        reach = max(reach, slot.end)
    return groups


def _most_that_seat(masks: Sequence[int], group: Sequence[_Slot], steps: _Steps) -> list[tuple[_Slot, tuple]]:
    """A seated subset of an unseatable ``group``: the most valuable members first, each kept if the kept ones
    still seat with it (while ``steps`` last: the rest are left out)."""
    kept: list[_Slot] = []
    seated: list[tuple[_Slot, tuple]] = []
    for slot in sorted(group, key=lambda s: -s.value):
        trial = _seat(masks, [*kept, slot], steps)
        if trial is None and steps.exhausted:
            break
        if trial is not None:
            kept.append(slot)
            seated = trial
    return seated


@dataclass
class _Seating:
    """A master solution seated: the placements that book as planned (per cluster, bookings with overlapping
    windows in a seated order), and the groups that could not be seated with whether that was proven."""

    placed: list[tuple[_Slot, tuple]]
    unseatable: list[tuple[list[_Slot], bool]]

    @property
    def value(self) -> float:
        return sum(slot.value for slot, _ in self.placed)


def _seat_solution(chosen: Iterable[_Slot], masks: dict[int, tuple[int, ...]], deadline: float | None) -> _Seating:
    """Seat each cluster's share of a solution group by group (module docstring); an unseatable group is
    replaced by ``_most_that_seat`` of it. Past ``deadline`` each search stops after ``SEAT_STEPS_LATE`` steps."""
    by_cluster: dict[int, list[_Slot]] = defaultdict(list)
    for slot in chosen:
        by_cluster[slot.cluster].append(slot)
    seating = _Seating([], [])
    for cluster_id, members in by_cluster.items():
        for group in _overlap_groups(members):
            steps = _Steps(SEAT_STEPS, deadline)
            seated = _seat(masks[cluster_id], group, steps)
            if seated is None:
                seating.unseatable.append((group, not steps.exhausted))
                seated = _most_that_seat(masks[cluster_id], group, _Steps(SEAT_STEPS, deadline))
            seating.placed.extend(seated)
    return seating


# --- the loop ----------------------------------------------------------------------------------------------------


def solve(
    bids: Sequence,
    asks: Sequence,
    *,
    time_limit_s: float | None = None,
    start: Iterable = (),
    mip_rel_gap: float = ENGINE_GAP,
    max_slots: int | None = None,
    support_first: bool = True,
) -> ExactPlan | None:
    """The best plan that books as planned (module docstring), found within ``time_limit_s`` (None: until proven
    optimal). ``start``: a plan (``orders.matching.Assignment``s, or anything with ``bid_id``, ``cluster_id`` and
    ``start``), seated anew as the first candidate and offered to HiGHS as its first incumbent. With
    ``support_first``, a better first incumbent is looked for (``_support_plan``). None when no seated plan was
    found in time. Raises ``TooLarge`` when the market has more than ``max_slots`` slots (before any solving)."""
    started = time.monotonic()
    deadline = None if time_limit_s is None else started + time_limit_s
    masks = _cluster_masks(asks)
    slots = _slots(bids, asks, masks, max_slots)
    if not slots:
        return ExactPlan((), 0.0, 0.0, True, True, 0, 0, time.monotonic() - started)
    master = _Master(slots, masks)
    index = _index(slots)
    offered = [j for a in start if (j := index.get((a.bid_id, a.cluster_id, a.start))) is not None]
    # the start plan seated as it is: what HiGHS's presolve makes of an offered solution can be worth less
    best = _seat_solution((slots[j] for j in offered), masks, deadline) if offered else None
    if support_first:
        best = _better(best, _support_plan(master, offered, deadline, mip_rel_gap))
    outcome = _benders(master, best, deadline, mip_rel_gap)
    if outcome.best is None:
        return None
    placements = tuple(Placement(s.bid, s.ask, s.start, positions) for s, positions in outcome.best.placed)
    seconds = time.monotonic() - started
    return ExactPlan(
        placements,
        outcome.best.value,
        outcome.bound,
        outcome.optimal,
        outcome.proven,
        len(slots),
        outcome.rounds,
        seconds,
    )


def _index(slots: Sequence[_Slot]) -> dict[tuple[int, int, int], int]:
    """(bid id, cluster id, start) → slot index."""
    return {(s.bid.bid_id, s.cluster, s.start): j for j, s in enumerate(slots)}


def _better(current: _Seating | None, candidate: _Seating | None) -> _Seating | None:
    if candidate is None or (current is not None and candidate.value <= current.value):
        return current
    return candidate


@dataclass
class _Outcome:
    """What the Benders loop ends with: the best seated plan, the master's dual bound, whether every cut was
    proven, whether the last master was solved to optimality and seated whole (then ``best`` is optimal), and how
    many times the master was solved."""

    best: _Seating | None
    bound: float = float("inf")
    proven: bool = True
    settled: bool = False
    rounds: int = 0

    @property
    def optimal(self) -> bool:
        return self.proven and self.settled


def _benders(master: _Master, best: _Seating | None, deadline: float | None, mip_rel_gap: float) -> _Outcome:
    """Solve ``master``, seat its solution, cut off what does not seat, and again, until a solution seats whole
    or ``deadline`` (module docstring); warm-started with ``best``, a seated plan of its slots (or None)."""
    index = _index(master.slots)
    outcome = _Outcome(best)
    while True:
        if outcome.best is not None:
            master.offer(index[s.bid.bid_id, s.cluster, s.start] for s, _ in outcome.best.placed)
        outcome.rounds += 1
        result = master.solve(None if deadline is None else max(deadline - time.monotonic(), 0.001), mip_rel_gap)
        if result is None:
            return outcome
        chosen, outcome.bound, solved = result
        seating = _seat_solution((master.slots[j] for j in chosen), master.masks, deadline)
        outcome.best = _better(outcome.best, seating)
        outcome.settled = solved and not seating.unseatable  # the master's optimum books as planned: optimal
        if not seating.unseatable or (deadline is not None and time.monotonic() >= deadline):
            return outcome
        outcome.proven &= _cut_off(master, seating.unseatable, index)


def _cut_off(master: _Master, unseatable: list[tuple[list[_Slot], bool]], index: dict) -> bool:
    """Add the cut of each unseatable group to ``master`` (module docstring): Hall's row for an hour where the
    group fails it, else the group's own cut. False when a group's cut rests on a search that ran out of steps
    (its group may seat after all: the cut may remove a plan that books as planned)."""
    proven = True
    for group, group_proven in unseatable:
        cluster = group[0].cluster
        violation = _hall_violation(master.masks[cluster], group)
        if violation is not None:
            master.hall_cut(cluster, *violation)
        else:
            proven &= group_proven
            master.cut(*_cut_of(group, master.slots, index))
    return proven


def _support_plan(master: _Master, offered: list[int], deadline: float | None, mip_rel_gap: float) -> _Seating | None:
    """A good first plan, fast: the Benders loop (``_benders``) on the master restricted to the slots its LP
    relaxation uses and those ``offered`` (a relaxation-induced neighbourhood, a fraction of its size), for up to
    ``SUPPORT_SHARE`` of the time left. None when that would not be much smaller than the master, or found
    nothing."""
    support = master.relaxation(None if deadline is None else max(deadline - time.monotonic(), 0.001))
    chosen = sorted(set(support) | set(offered))
    if not support or len(chosen) > SUPPORT_SIZE * len(master.slots):
        return None
    restricted = _Master([master.slots[j] for j in chosen], master.masks)
    position = {j: k for k, j in enumerate(chosen)}
    start = _seat_solution((restricted.slots[position[j]] for j in offered), master.masks, deadline)
    until = None if deadline is None else time.monotonic() + max(deadline - time.monotonic(), 0) * SUPPORT_SHARE
    return _benders(restricted, start if offered else None, until, mip_rel_gap).best


def _cut_of(group: list[_Slot], slots: list[_Slot], index: dict) -> tuple[list[int], list[int]]:
    """The two sides of the cut of an unseatable ``group``: its slots, and the cluster's other slots overlapping
    a window of the group."""
    members = {index[s.bid.bid_id, s.cluster, s.start] for s in group}
    cluster, windows = group[0].cluster, _union(s.window for s in group)
    overlapping = [j for j, s in enumerate(slots) if s.cluster == cluster and j not in members and s.window & windows]
    return sorted(members), overlapping


# --- large-neighbourhood search ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Start:
    """A fill offered to a sub-problem's master as part of its first incumbent."""

    bid_id: int
    cluster_id: int
    start: int


def _value(bid, ask) -> float:
    """The surplus of ``bid`` on ``ask`` as the model counts it (a float)."""
    return float((bid.max_price - _price(bid, ask)) * ask.gpus_per_node * bid.nodes * bid.duration_hours)


def _window(placement: Placement) -> int:
    return ((1 << placement.bid.duration_hours) - 1) << placement.start


def _replay(masks: Sequence[int], placements: Iterable[Placement]) -> tuple[list[int], list[Placement]] | None:
    """Book ``placements`` in order on the lowest-numbered free nodes: the masks left and the placements with the
    positions they got; None when one finds too few nodes free."""
    state = list(masks)
    booked = []
    for p in placements:
        window = _window(p)
        positions = _lowest_free(state, window, p.bid.nodes)
        if positions is None:
            return None
        for position in positions:
            state[position] &= ~window
        booked.append(p if tuple(positions) == p.positions else dataclasses.replace(p, positions=tuple(positions)))
    return state, booked


class _Neighbourhoods:
    """The plan under improvement: per cluster its placements in booking order (clusters are independent), and
    which bids are placed. ``try_once`` re-solves one neighbourhood exactly and keeps the result if it adds
    surplus. Candidates are looked up lazily (a large market has millions of bid × cluster pairs)."""

    def __init__(self, bids: Sequence, asks: Sequence, plan: Iterable, seed: int):
        self.bids = list(bids)
        self.masks = _cluster_masks(asks)
        self.rng = random.Random(seed)  # noqa: S311 (reproducible neighbourhood draws, not secrets)
        bid_by_id = {b.bid_id: b for b in bids}
        ask_by_id = {a.listing_id: a for a in asks}
        self.order: dict[int, list[Placement]] = defaultdict(list)
        for a in plan:
            self.order[a.cluster_id].append(
                Placement(bid_by_id[a.bid_id], ask_by_id[a.listing_id], a.start, tuple(n - 1 for n in a.node_indexes))
            )
        self.placed = {p.bid.bid_id for ps in self.order.values() for p in ps}
        self.by_accelerator = _by_accelerator(asks)
        self.asks_of: dict[int, list] = defaultdict(list)
        for ask in asks:
            self.asks_of[ask.cluster_id].append(ask)
        cheapest = {acc: min(a.price for a in group) for acc, group in self.by_accelerator.items()}
        self.potential = {b.bid_id: self._potential(b, cheapest, ask_by_id) for b in bids}
        self.by_bid_accelerator: dict[str, list] = defaultdict(list)  # accelerator → bids that accept it
        for bid in bids:
            for accelerator in bid.accelerators:
                self.by_bid_accelerator[accelerator].append(bid)
        self._clusters_of: dict[int, list[int]] = {}
        self.width = 48  # hours of the neighbourhood's window beyond the seed bid's own (adapted as it goes)
        self.tried: set[tuple] = set()  # neighbourhoods re-solved since the plan last changed

    @staticmethod
    def _potential(bid, cheapest: dict, ask_by_id: dict) -> float:
        """An optimistic surplus of ``bid``: at the cheapest price it could pay, on 8-GPU nodes (a sort key)."""
        if bid.net_prices is None:
            prices = [cheapest[acc] for acc in bid.accelerators if acc in cheapest]
        else:
            prices = [
                net
                for listing_id, net in bid.net_prices.items()
                if listing_id in ask_by_id and ask_by_id[listing_id].accelerator in bid.accelerators
            ]
        if not prices:
            return 0.0
        return max(float(bid.max_price - min(prices)), 0.0) * bid.nodes * bid.duration_hours

    def clusters_of(self, bid) -> list[int]:
        """The clusters ``bid`` may take, cheapest for it first."""
        if (clusters := self._clusters_of.get(bid.bid_id)) is None:
            pairs = _candidates(bid, self.by_accelerator)
            clusters = self._clusters_of[bid.bid_id] = list(dict.fromkeys(ask.cluster_id for _, ask in pairs))
        return clusters

    def plan(self) -> tuple[Placement, ...]:
        return tuple(p for ps in self.order.values() for p in ps)

    def seeds(self) -> list:
        """Bids worth seating: the unseated ones, largest potential first."""
        ranked = [b for b in self.bids if b.bid_id not in self.placed and self.potential[b.bid_id] > 0]
        ranked.sort(key=lambda b: -self.potential[b.bid_id])
        return ranked

    def try_once(self, seed_bid, clusters: int, sub_time_s: float) -> bool | None:
        """Re-solve the neighbourhood of ``seed_bid``: up to ``clusters`` of its clusters (drawn among its
        cheapest), within its window widened by ``self.width`` hours on each side; every bid placed there in
        that window, and every unseated bid that may run there then (up to ``NEIGHBOURHOOD_BIDS``), is free to
        move. True when that added surplus (kept), False when not, None when the sub-problem was not solved to
        optimality in ``sub_time_s``."""
        own = self.clusters_of(seed_bid)
        if not own:
            return False
        chosen = self.rng.sample(own[: 2 * clusters], min(clusters, len(own)))
        low = max(seed_bid.earliest_start - self.width, 0)
        high = seed_bid.latest_end + self.width
        key = (frozenset(chosen), low, high, seed_bid.bid_id)
        if key in self.tried:
            return False  # re-solved already since the plan last changed
        self.tried.add(key)
        span = ((1 << (high - low)) - 1) << low
        kept: dict[int, list[Placement]] = {}
        freed: list[Placement] = []
        residual: dict[int, list[int]] = {}
        for c in chosen:
            freed += [p for p in self.order.get(c, ()) if _window(p) & span]
            replayed = _replay(self.masks[c], [p for p in self.order.get(c, ()) if not _window(p) & span])
            if replayed is None:
                return False  # (leaving bookings out moved the others: keep the cluster as it is)
            residual[c], kept[c] = replayed
        bids = [p.bid for p in freed] + self._unseated_near(seed_bid, chosen, low, high)
        asks = [dataclasses.replace(a, node_free=tuple(residual[c])) for c in chosen for a in self.asks_of[c]]
        start = [_Start(p.bid.bid_id, p.ask.cluster_id, p.start) for p in freed]
        result = solve(bids, asks, time_limit_s=sub_time_s, start=start, support_first=False)
        if result is None:
            return None
        before = sum(_value(p.bid, p.ask) for p in freed)
        if result.value <= before + 1e-9 * max(1.0, before):
            return False if result.optimal else None
        originals = {a.listing_id: a for c in chosen for a in self.asks_of[c]}
        for c in chosen:
            self.order[c] = kept[c] + [
                dataclasses.replace(p, ask=originals[p.ask.listing_id])
                for p in result.placements
                if p.ask.cluster_id == c
            ]
        self.placed -= {p.bid.bid_id for p in freed}
        self.placed |= {p.bid.bid_id for p in result.placements}
        self.tried.clear()
        return True

    def _unseated_near(self, seed_bid, clusters: list[int], low: int, high: int) -> list:
        """The seed and the unseated bids that may run on ``clusters`` within ``[low, high)``, the most
        promising first, at most ``NEIGHBOURHOOD_BIDS``."""
        asks = [a for c in clusters for a in self.asks_of[c]]
        found = {seed_bid.bid_id: seed_bid}
        for accelerator in {a.accelerator for a in asks}:
            for bid in self.by_bid_accelerator[accelerator]:
                if (
                    bid.bid_id not in self.placed
                    and bid.bid_id not in found
                    and bid.earliest_start < high
                    and bid.latest_end > low
                    and any(_affordable(bid, a) for a in asks)
                ):
                    found[bid.bid_id] = bid
        ranked = sorted(found.values(), key=lambda b: (b is not seed_bid, -self.potential[b.bid_id]))
        return ranked[:NEIGHBOURHOOD_BIDS]


def _affordable(bid, ask) -> bool:
    price = _price(bid, ask)
    return ask.accelerator in bid.accelerators and price is not None and price < bid.max_price


# A neighbourhood's window reaches this many hours beyond its seed bid's own on each side, at least and at most.
MIN_WIDTH, MAX_WIDTH = 4, 96
# A neighbourhood frees at most this many unseated bids besides the placed ones it re-solves.
NEIGHBOURHOOD_BIDS = 40


def improve(
    bids: Sequence,
    asks: Sequence,
    plan: Iterable,
    *,
    deadline: float,
    seed: int = 0,
    clusters: int = 2,
    sub_time_s: float = 0.5,
) -> tuple[Placement, ...]:
    """Large-neighbourhood search from ``plan`` (``orders.matching.Assignment``s in an order that books as
    planned) until ``deadline`` (``time.monotonic()``) or a pass over the unseated bids finds nothing: around
    each, re-solve exactly (``solve``) a few of its clusters within a window of hours, every bid there free to
    move, and keep the result only when it adds surplus. Bookings outside the window stay, booked first in their
    order; the re-solved ones follow, seated on what they leave, so the plan keeps booking as planned. Returns the
    plan's placements in booking order."""
    state = _Neighbourhoods(bids, asks, plan, seed)
    progressed, tries = True, 0
    while progressed and time.monotonic() < deadline:
        progressed = False
        for seed_bid in state.seeds():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            tries += 1
            began = time.monotonic()
            outcome = state.try_once(seed_bid, 1 + tries % clusters, min(sub_time_s, left))
            progressed |= outcome is True
            if outcome is None:
                state.width = max(state.width // 2, MIN_WIDTH)  # too large to solve in time: narrow the window
            elif time.monotonic() - began < sub_time_s / 4:
                state.width = min(state.width * 2, MAX_WIDTH)  # solved with time to spare: widen it
    return state.plan()

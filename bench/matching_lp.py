"""Upper bounds on what ``orders.matching.clear`` can achieve: the LP relaxation of the matching problem, solved by
column generation with scipy ``linprog(method="highs")``. Pure (dataclasses in, numbers out, no ORM); numpy and
scipy are imported here only, so the engine itself runs without them.

The model (capacity exactly as ``matching`` keeps it: per cluster, several listings sharing its nodes):

- a column per *slot* (bid b, listing l, start s): the bid's whole ``nodes`` on l's cluster for
  ``[s, s + duration)``, inside both windows, ``price < max`` (other slots never add surplus), l's minimum hours
  and the bid's GPUs-per-node cap met, and at least ``nodes`` nodes of the cluster free for the whole window
  (no plan can use any other slot, so leaving them out keeps every plan feasible for the LP);
  value v = (max − price) × GPUs × nodes × hours — for a bid with vouchers (``Bid.net_prices``) only on the listings
  of its table, at its net price there;
- maximise Σ v·x subject to Σ x ≤ 1 per bid and, per (cluster, hour), Σ nodes·x ≤ nodes free, x ≥ 0.

Every plan of ``clear`` is an integral solution (the same nodes all along and one cluster imply the per-hour
counts), so the LP optimum bounds its surplus. The full model has millions of columns on a market of 10k bids ×
2k listings, so it is solved by column generation: a restricted master over a column set, priced with the
master's duals (π per cluster-hour, μ per bid) over every slot with numpy (sliding-window sums of π), the
columns of positive reduced cost added, until none is left — then the master's optimum is the LP optimum.

Whatever the state of the iteration, for ANY π ≥ 0 the Lagrangian

    L(π) = Σ_{c,h} free[c,h]·π[c,h] + Σ_b max(0, max_{slots j of b} (v_j − nodes_b·Σ_{h∈j} π[c_j,h]))

is the objective of a feasible solution of the LP's dual (μ_b = that max), so by weak duality an upper bound on
the LP optimum; it equals it at the LP dual optimum. The reported ``bound`` is the least L(π) seen, so it is
valid even when the iteration stops early (time limit), and exact (to HiGHS's tolerance) when it converges.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csc_matrix

from orders.matching import Ask, Bid


@dataclass(frozen=True)
class LPBound:
    """``bound``: a valid upper bound on the LP relaxation's optimum (hence on any plan's surplus); ``lower``:
    the last restricted master's optimum (a feasible LP solution, so ≤ the LP optimum); ``exact``: column
    generation converged (``bound`` is the LP optimum, to solver tolerance)."""

    bound: float
    lower: float
    exact: bool
    rounds: int
    columns: int  # in the last restricted master
    slots: int  # columns of the full model
    seconds: float


@dataclass
class _Slots:
    """The full model's columns (sorted by bid) and capacities, as numpy arrays."""

    horizon: int
    free: np.ndarray  # (clusters, horizon): nodes free per cluster and hour = capacity
    bid: np.ndarray  # per slot: bid index
    cluster: np.ndarray  # per slot: cluster index
    start: np.ndarray  # per slot
    value: np.ndarray  # per slot
    duration: np.ndarray  # per bid
    nodes: np.ndarray  # per bid
    listing: np.ndarray  # per slot: index into asks
    cluster_ids: list[int]

    def seg(self) -> np.ndarray:
        """Index of each bid's first slot (slots are sorted by bid)."""
        return np.flatnonzero(np.r_[True, self.bid[1:] != self.bid[:-1]]) if len(self.bid) else np.zeros(0, int)


def _bits(mask: int, horizon: int, cache: dict) -> np.ndarray:
    row = cache.get(mask)
    if row is None:
        raw = (mask & ((1 << horizon) - 1)).to_bytes((horizon + 7) // 8 or 1, "little")
        row = cache[mask] = np.unpackbits(np.frombuffer(raw, dtype=np.uint8), bitorder="little")[:horizon]
    return row


def _per_cluster(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Sum of the node rows of each cluster (``bounds`` = cumulative node counts, starting at 0)."""
    cumulative = np.zeros((values.shape[0] + 1, values.shape[1]), dtype=np.int64)
    np.cumsum(values, axis=0, out=cumulative[1:])
    return cumulative[bounds[1:]] - cumulative[bounds[:-1]]


def _slots(bids: Sequence[Bid], asks: Sequence[Ask]) -> _Slots:
    horizon = max([1, *(a.end for a in asks)])
    cluster_index: dict[int, int] = {}
    cluster_masks: list[tuple[int, ...]] = []
    for ask in asks:  # the first ask of a cluster provides its node masks, as in matching._Capacity
        if ask.cluster_id not in cluster_index:
            cluster_index[ask.cluster_id] = len(cluster_masks)
            cluster_masks.append(ask.node_free)
    sizes = np.array([len(m) for m in cluster_masks], dtype=np.int64)
    bounds = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    cache: dict = {}
    rows = [_bits(m, horizon, cache) for masks in cluster_masks for m in masks]
    free_bits = np.array(rows, dtype=np.int64).reshape(len(rows), horizon)
    free = _per_cluster(free_bits, bounds).astype(float)
    run = np.zeros((len(rows), horizon + 1), dtype=np.int64)  # run[n, s] = free hours in a row from s on node n
    for s in range(horizon - 1, -1, -1):
        run[:, s] = free_bits[:, s] * (run[:, s + 1] + 1)

    duration = np.array([b.duration_hours for b in bids], dtype=np.int64)
    nodes = np.array([b.nodes for b in bids], dtype=np.int64)
    max_price = np.array([float(b.max_price) for b in bids])
    earliest = np.array([b.earliest_start for b in bids], dtype=np.int64)
    latest = np.array([b.latest_end for b in bids], dtype=np.int64)
    max_gpus = np.array([b.max_gpus_per_node for b in bids], dtype=np.int64)
    price = np.array([float(a.price) for a in asks])
    gpus = np.array([a.gpus_per_node for a in asks], dtype=np.int64)
    a_start = np.array([a.start for a in asks], dtype=np.int64)
    a_end = np.array([a.end for a in asks], dtype=np.int64)
    min_hours = np.array([a.min_hours for a in asks], dtype=np.int64)
    a_cluster = np.array([cluster_index[a.cluster_id] for a in asks], dtype=np.int64)
    asks_of: dict[str, list[int]] = defaultdict(list)
    for i, ask in enumerate(asks):
        asks_of[ask.accelerator].append(i)
    bids_of: dict[str, list[int]] = defaultdict(list)
    for i, bid in enumerate(bids):
        if bid.net_prices is None:
            for accelerator in bid.accelerators:
                bids_of[accelerator].append(i)

    def fits(b, a) -> np.ndarray:  # per (bid, ask) pair: windows overlap enough, minimum hours, sizes
        first = np.maximum(earliest[b], a_start[a])
        last = np.minimum(latest[b], a_end[a]) - duration[b]
        return (
            (min_hours[a] <= duration[b])
            & (sizes[a_cluster[a]] >= nodes[b])
            & ((max_gpus[b] == 0) | (gpus[a] <= max_gpus[b]))
            & (last >= first)
        )

    pair_bid, pair_ask, pair_price = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
    for accelerator, bid_list in bids_of.items():  # (bid, ask) pairs that may hold a slot: one outer product
        if accelerator not in asks_of:
            continue
        b = np.array(bid_list)[:, None]
        a = np.array(asks_of[accelerator])[None, :]
        r, c = np.nonzero((price[a] < max_price[b]) & fits(b, a))
        pair_bid.append(b[r, 0])
        pair_ask.append(a[0, c])
        pair_price.append(price[a[0, c]])
    b, a, net = _voucher_pairs(bids, asks)  # bids with vouchers: the pairs of their net-price tables
    keep = (net < max_price[b]) & fits(b, a)
    pair_bid.append(b[keep])
    pair_ask.append(a[keep])
    pair_price.append(net[keep])
    pb, pa, pp = np.concatenate(pair_bid), np.concatenate(pair_ask), np.concatenate(pair_price)
    first = np.maximum(earliest[pb], a_start[pa])
    count = np.minimum(latest[pb], a_end[pa]) - duration[pb] - first + 1
    pair = np.repeat(np.arange(len(pb)), count)
    start = first[pair] + np.arange(len(pair)) - np.repeat(np.cumsum(count) - count, count)
    s_bid, s_cluster = pb[pair], a_cluster[pa[pair]]
    keep = np.zeros(len(pair), dtype=bool)
    s_duration = duration[s_bid]
    for d in np.unique(s_duration):  # at least ``nodes`` nodes free through [s, s + d): per duration, per cluster
        chosen = np.flatnonzero(s_duration == d)
        enough = _per_cluster((run[:, :horizon] >= d).astype(np.int64), bounds)
        keep[chosen] = enough[s_cluster[chosen], start[chosen]] >= nodes[s_bid[chosen]]
    kept = np.flatnonzero(keep)
    order = kept[np.argsort(s_bid[kept], kind="stable")]
    value = (max_price[pb] - pp) * gpus[pa] * nodes[pb] * duration[pb]
    return _Slots(
        horizon=horizon,
        free=free,
        bid=s_bid[order],
        cluster=s_cluster[order],
        start=start[order],
        value=value[pair[order]],
        duration=duration,
        nodes=nodes,
        listing=pa[pair[order]],
        cluster_ids=list(cluster_index),
    )


def _voucher_pairs(bids: Sequence[Bid], asks: Sequence[Ask]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bid index, ask index, net price) of every listing in a voucher bid's ``net_prices`` whose ask is of one of
    the bid's accelerators."""
    index = {ask.listing_id: i for i, ask in enumerate(asks)}
    accelerator = [ask.accelerator for ask in asks]
    b, a, net = [], [], []
    for i, bid in enumerate(bids):
        if bid.net_prices is None:
            continue
        for listing_id, price in bid.net_prices.items():
            j = index.get(listing_id)
            if j is not None and accelerator[j] in bid.accelerators:
                b.append(i)
                a.append(j)
                net.append(float(price))
    return np.array(b, dtype=np.int64), np.array(a, dtype=np.int64), np.array(net, dtype=float)


def _reduced_values(slots: _Slots, pi: np.ndarray) -> np.ndarray:
    """v_j − nodes·Σ π over each slot's window (before the bid dual), by prefix sums over the hours."""
    horizon = slots.horizon
    prefix = np.zeros((pi.shape[0], horizon + 1))
    np.cumsum(pi, axis=1, out=prefix[:, 1:])
    flat = prefix.ravel()
    base = slots.cluster * (horizon + 1) + slots.start
    return slots.value - slots.nodes[slots.bid] * (flat[base + slots.duration[slots.bid]] - flat[base])


def _lagrangian(slots: _Slots, pi: np.ndarray, reduced: np.ndarray) -> float:
    """L(π): a valid upper bound on the LP optimum for any π ≥ 0 (see the module docstring)."""
    best = np.maximum.reduceat(reduced, slots.seg()) if len(reduced) else np.zeros(0)
    return float((slots.free * pi).sum() + np.maximum(best, 0).sum())


def _solve(slots: _Slots, columns: np.ndarray, time_limit: float | None):
    """The LP restricted to ``columns``: (objective, π per cluster-hour) or None when HiGHS stops short.

    x ≤ 1 is stated as a bound (implied by the bid rows, so the same LP; as in ``aggregate_bound``), so the
    row duals alone may not price the master's own columns out: the caller takes each bid's μ as the best reduced
    value of its columns at π instead (``_bid_duals``), which, with π, is the master's dual optimum."""
    horizon = slots.horizon
    bid = slots.bid[columns]
    per_column = 1 + slots.duration[bid]  # the bid row, then one capacity row per hour
    column_of = np.repeat(np.arange(len(columns)), per_column)
    within = np.arange(int(per_column.sum())) - np.repeat(np.cumsum(per_column) - per_column, per_column)
    is_bid = within == 0
    capacity_key = (slots.cluster[columns] * horizon + slots.start[columns])[column_of] + within - 1
    capacity_keys, capacity_row = np.unique(capacity_key[~is_bid], return_inverse=True)
    bid_keys, bid_row = np.unique(bid, return_inverse=True)
    row = np.empty(len(column_of), dtype=np.int64)
    row[is_bid] = bid_row
    row[~is_bid] = len(bid_keys) + capacity_row
    coefficient = np.where(is_bid, 1.0, slots.nodes[bid][column_of].astype(float))
    matrix = csc_matrix((coefficient, (row, column_of)), shape=(len(bid_keys) + len(capacity_keys), len(columns)))
    rhs = np.r_[np.ones(len(bid_keys)), slots.free.ravel()[capacity_keys]]
    options = {"time_limit": max(time_limit, 1.0)} if time_limit is not None else {}
    result = linprog(-slots.value[columns], A_ub=matrix, b_ub=rhs, bounds=(0, 1), method="highs", options=options)
    if result.status != 0 or result.ineqlin is None:
        return None
    dual = -result.ineqlin.marginals  # HiGHS: ≤ 0 for ≤ rows of a minimisation; clipped, any π ≥ 0 is valid
    pi = np.zeros(slots.free.size)
    pi[capacity_keys] = np.maximum(dual[len(bid_keys) :], 0)
    return -result.fun, pi.reshape(slots.free.shape)


def _bid_duals(slots: _Slots, reduced: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """μ per bid: the best reduced value (at the π of ``reduced``) of its ``columns``, at least 0."""
    mu = np.zeros(len(slots.duration))
    np.maximum.at(mu, slots.bid[columns], reduced[columns])
    return mu


def _slot_index(slots: _Slots, bids: Sequence[Bid], asks: Sequence[Ask], plan) -> np.ndarray:
    """The slots of ``plan`` (assignments: bid id, listing id, start) that are columns of the model."""
    bid_index = {b.bid_id: i for i, b in enumerate(bids)}
    ask_index = {a.listing_id: i for i, a in enumerate(asks)}
    span = slots.horizon + 1
    wanted = np.array(
        [
            (bid_index[a.bid_id] * len(asks) + ask_index[a.listing_id]) * span + a.start
            for a in plan
            if a.bid_id in bid_index and a.listing_id in ask_index
        ],
        dtype=np.int64,
    )
    keys = (slots.bid * len(asks) + slots.listing) * span + slots.start
    order = np.argsort(keys, kind="stable")
    position = np.searchsorted(keys[order], wanted)
    found = position < len(keys)
    found[found] = keys[order][position[found]] == wanted[found]
    return order[position[found]]


def lp_relaxation(
    bids: Sequence[Bid],
    asks: Sequence[Ask],
    *,
    time_limit_s: float | None = None,
    columns_per_bid: int = 3,
    warm_start: bool = False,
    max_rounds: int = 500,
    seed=None,
    gap: float = 1e-7,
) -> LPBound:
    """Solve the LP relaxation by column generation (see the module docstring).

    Starts from each bid's ``columns_per_bid`` most valuable slots at the starting π (with ``warm_start``, the
    duals of ``aggregate_bound``'s smaller LP, mapped to the clusters: a much better first π on large markets, and
    its bound is kept when better), plus the slots of ``seed`` (a plan, e.g. ``matching.clear``'s: the first master
    is then at least as good, and its duals far more telling). Each round prices every slot at the master's duals,
    adds per bid up to ``columns_per_bid`` slots of positive reduced cost, and solves the master again.
    Stops when the bound and the master's optimum meet (relative ``gap``: ``exact``, the LP optimum to solver
    tolerance), when no slot prices in (``exact``), after ``max_rounds``, or when ``time_limit_s`` is spent (a
    master solve is given what is left; one that HiGHS cannot finish ends the iteration). ``bound`` is always
    valid. Raises nothing on an empty market (bound 0).
    """
    started = time.monotonic()
    deadline = None if time_limit_s is None else started + time_limit_s
    slots = _slots(bids, asks)
    n_slots = len(slots.bid)
    if n_slots == 0:
        return LPBound(0.0, 0.0, True, 0, 0, 0, time.monotonic() - started)
    pi = np.zeros_like(slots.free)
    bound = np.inf
    reduced = _reduced_values(slots, pi)
    if warm_start:
        aggregate, candidates = aggregate_bound(bids, asks, with_duals=True)
        bound = aggregate
        index = {cluster_id: i for i, cluster_id in enumerate(slots.cluster_ids)}
        best = np.inf
        for duals in candidates:  # the class duals, with and without the subclass duals: the better start kept
            trial = np.zeros_like(slots.free)
            for (cluster_id, hour), dual in duals.items():
                if hour < slots.horizon:
                    trial[index[cluster_id], hour] = dual
            trial_reduced = _reduced_values(slots, trial)
            value = _lagrangian(slots, trial, trial_reduced)
            if value < best:
                best, pi, reduced = value, trial, trial_reduced
    bound = min(bound, _lagrangian(slots, pi, reduced))
    tolerance = 1e-9 * max(1.0, float(slots.value.max()))
    in_master = np.zeros(n_slots, dtype=bool)
    if seed is not None:
        in_master[_slot_index(slots, bids, asks, seed)] = True
    mu = np.zeros(len(bids))
    lower, rounds, exact = 0.0, 0, False
    while rounds < max_rounds:
        gain = reduced - mu[slots.bid]
        gain[in_master] = -np.inf
        if rounds == 0:
            # The first master: each bid's best columns at the starting duals, whatever their sign (warm-start
            # duals may price every column out, and then only a solved master can tell how far from optimal they
            # are).
            candidates = np.flatnonzero(gain > -np.inf)
        else:
            candidates = np.flatnonzero(gain > tolerance)
            if len(candidates) == 0:
                exact = True  # the last master's optimum is the LP optimum, and so is L at its duals
                break
        if deadline is not None and time.monotonic() >= deadline:
            break
        candidates = candidates[np.lexsort((-gain[candidates], slots.bid[candidates]))]
        of_bid = slots.bid[candidates]
        first_of_bid = np.r_[True, of_bid[1:] != of_bid[:-1]]
        rank = np.arange(len(candidates)) - np.maximum.accumulate(np.where(first_of_bid, np.arange(len(candidates)), 0))
        in_master[candidates[rank < columns_per_bid]] = True
        solved = _solve(slots, np.flatnonzero(in_master), None if deadline is None else deadline - time.monotonic())
        rounds += 1
        if solved is None:
            break
        lower, pi = solved
        reduced = _reduced_values(slots, pi)
        mu = _bid_duals(slots, reduced, np.flatnonzero(in_master))
        bound = min(bound, _lagrangian(slots, pi, reduced))
        if bound - lower <= gap * max(1.0, abs(bound)):
            exact = True  # a valid upper bound meets a feasible LP solution: both are the LP optimum
            break
    return LPBound(
        bound=float(bound),
        lower=float(lower),
        exact=exact,
        rounds=rounds,
        columns=int(in_master.sum()),
        slots=n_slots,
        seconds=time.monotonic() - started,
    )


def aggregate_bound(bids: Sequence[Bid], asks: Sequence[Ask], *, with_duals: bool = False):
    """The optimum of a coarser LP relaxation (one ``linprog(method="highs")`` call, no column generation).

    Asks with the same (accelerator, price, GPUs per node, minimum hours) form one *class*, whose per-hour capacity
    is the sum of its clusters' free node counts (a cluster's nodes count once per class and hour). Within a class,
    the listings named by the same set of voucher bids (the same *eligibility*: in the same bids' net-price tables)
    form a *subclass*, with a capacity row of its own that counts the voucher bids only. A plain bid takes a class
    slot (its class row); a bid with vouchers takes a subclass slot of a subclass whose listings its table names,
    valued at the cheapest net price it names there, and uses both its class row and its subclass row.

    It is a relaxation of ``lp_relaxation``'s LP, so an upper bound too, only looser: every slot maps to a class (or
    subclass) slot of at least its value, a class row is the sum of its clusters' capacity rows, and a subclass row
    is the sum of its clusters' rows with the plain bids' (non-negative) use left out. Without subclasses, a
    voucher bid would see every city's capacity of its class: far looser when vouchers pay in one city only.

    With ``with_duals``, also ``lp_relaxation``'s warm-start candidates: a list of ``{(cluster_id, hour): π}``
    (the class duals mapped to their clusters; the same plus the subclass duals).
    """
    horizon = max([1, *(a.end for a in asks)])
    naming: dict[int, list[int]] = defaultdict(list)  # listing id → the voucher bids whose table names it
    for i, bid in enumerate(bids):
        if bid.net_prices is not None:
            for listing_id in bid.net_prices:
                naming[listing_id].append(i)
    node_free: dict[int, tuple[int, ...]] = {}
    units: dict[tuple, int] = {}  # (class key,) or (class key, eligibility) → unit index
    start, end, size, parent, price, gpus, min_hours = [], [], [], [], [], [], []
    open_hours: dict[tuple[int, int], int] = defaultdict(int)  # (unit, cluster) → hours its listings are open
    unit_of_listing: dict[int, tuple[int, int]] = {}  # listing id → (class unit, subclass unit or -1)
    accelerator_of: dict[int, str] = {}

    def unit(key: tuple, ask: Ask, up: int) -> int:
        u = units.get(key)
        if u is None:
            u = units[key] = len(start)
            start.append(ask.start)
            end.append(ask.end)
            size.append(0)
            parent.append(up)
            price.append(float(ask.price))
            gpus.append(ask.gpus_per_node)
            min_hours.append(ask.min_hours)
        start[u], end[u], size[u] = min(start[u], ask.start), max(end[u], ask.end), max(size[u], len(ask.node_free))
        open_hours[u, ask.cluster_id] |= ((1 << (ask.end - ask.start)) - 1) << ask.start
        return u

    for ask in asks:
        node_free.setdefault(ask.cluster_id, ask.node_free)
        key = (ask.accelerator, ask.price, ask.gpus_per_node, ask.min_hours)
        k = unit((key,), ask, -1)
        eligibility = tuple(naming.get(ask.listing_id, ()))
        s = unit((key, eligibility), ask, k) if eligibility else -1
        unit_of_listing.setdefault(ask.listing_id, (k, s))
        accelerator_of.setdefault(ask.listing_id, ask.accelerator)
    if not units:
        return (0.0, []) if with_duals else 0.0
    cache: dict = {}
    counts = {
        c: np.sum([_bits(m, horizon, cache) for m in masks], axis=0) if masks else np.zeros(horizon)
        for c, masks in node_free.items()
    }
    free = np.zeros((len(start), horizon))
    for (u, cluster_id), hours in open_hours.items():
        free[u] += _bits(hours, horizon, cache) * counts[cluster_id]
    classes_of: dict[str, list[int]] = defaultdict(list)
    for key, u in units.items():
        if len(key) == 1:
            classes_of[key[0][0]].append(u)

    pair_bid, pair_unit, pair_value = [], [], []
    for i, bid in enumerate(bids):
        work = bid.nodes * bid.duration_hours
        if bid.net_prices is None:
            for accelerator in bid.accelerators:
                for u in classes_of.get(accelerator, ()):
                    if price[u] < float(bid.max_price):
                        pair_bid.append(i)
                        pair_unit.append(u)
                        pair_value.append((float(bid.max_price) - price[u]) * gpus[u] * work)
            continue
        best: dict[int, float] = {}  # subclass → the cheapest net price the bid's table names there
        for listing_id, net in bid.net_prices.items():
            where = unit_of_listing.get(listing_id)
            if where is not None and accelerator_of[listing_id] in bid.accelerators:
                net = float(net)
                if net < best.get(where[1], np.inf):
                    best[where[1]] = net
        for u, net in best.items():
            if net < float(bid.max_price):
                pair_bid.append(i)
                pair_unit.append(u)
                pair_value.append((float(bid.max_price) - net) * gpus[u] * work)
    pb, pu = np.array(pair_bid, dtype=np.int64), np.array(pair_unit, dtype=np.int64)
    pv = np.array(pair_value, dtype=float)
    start, end, size, parent = (np.array(x, dtype=np.int64) for x in (start, end, size, parent))
    gpus, min_hours = np.array(gpus, dtype=np.int64), np.array(min_hours, dtype=np.int64)
    duration = np.array([b.duration_hours for b in bids], dtype=np.int64)
    nodes = np.array([b.nodes for b in bids], dtype=np.int64)
    earliest = np.array([b.earliest_start for b in bids], dtype=np.int64)
    latest = np.array([b.latest_end for b in bids], dtype=np.int64)
    max_gpus = np.array([b.max_gpus_per_node for b in bids], dtype=np.int64)
    if len(pb):
        keep = (
            (duration[pb] >= min_hours[pu])
            & (nodes[pb] <= size[pu])
            & ((max_gpus[pb] == 0) | (gpus[pu] <= max_gpus[pb]))
        )
        pb, pu, pv = pb[keep], pu[keep], pv[keep]
    first = np.maximum(earliest[pb], start[pu])
    count = np.maximum(np.minimum(latest[pb], end[pu]) - duration[pb] - first + 1, 0)
    pair = np.repeat(np.arange(len(pb)), count)
    s_start = first[pair] + np.arange(len(pair)) - np.repeat(np.cumsum(count) - count, count)
    s_bid, s_unit = pb[pair], pu[pair]
    keep = np.zeros(len(pair), dtype=bool)
    for k in np.unique(nodes[s_bid]) if len(pair) else ():  # a slot needs ``nodes`` free in each of its hours
        short = np.zeros((len(free), horizon + 1), dtype=np.int64)
        np.cumsum(free < k, axis=1, out=short[:, 1:])
        chosen = np.flatnonzero(nodes[s_bid] == k)
        u, s = s_unit[chosen], s_start[chosen]
        keep[chosen] = short[u, s + duration[s_bid[chosen]]] == short[u, s]
    kept = np.flatnonzero(keep)
    if len(kept) == 0:
        return (0.0, []) if with_duals else 0.0
    s_bid, s_unit, s_start, s_value = s_bid[kept], s_unit[kept], s_start[kept], pv[pair[kept]]
    s_duration = duration[s_bid]
    # Entries: the bid row; per hour the class row; per hour the subclass row (voucher slots).
    s_class = np.where(parent[s_unit] >= 0, parent[s_unit], s_unit)
    is_sub = parent[s_unit] >= 0
    n_columns = len(s_bid)
    hours_of = np.repeat(np.arange(n_columns), s_duration)
    within = np.arange(len(hours_of)) - np.repeat(np.cumsum(s_duration) - s_duration, s_duration)
    hour = s_start[hours_of] + within
    sub_entries = np.flatnonzero(is_sub[hours_of])
    column = np.r_[np.arange(n_columns), hours_of, hours_of[sub_entries]]
    key = np.r_[s_class[hours_of] * horizon + hour, s_unit[hours_of[sub_entries]] * horizon + hour[sub_entries]]
    capacity_keys, capacity_row = np.unique(key, return_inverse=True)
    row = np.r_[s_bid, len(bids) + capacity_row]
    coefficient = np.r_[np.ones(n_columns), nodes[s_bid][column[n_columns:]].astype(float)]
    matrix = csc_matrix((coefficient, (row, column)), shape=(len(bids) + len(capacity_keys), n_columns))
    b_ub = np.r_[np.ones(len(bids)), free.ravel()[capacity_keys]]
    # (x ≤ 1 is implied by the bid rows; stated as a bound, HiGHS solves this LP many times faster)
    result = linprog(-s_value, A_ub=matrix, b_ub=b_ub, bounds=(0, 1), method="highs")
    if result.status != 0:
        raise RuntimeError(f"LP relaxation failed: {result.message}")
    if not with_duals:
        return -result.fun
    dual = np.zeros(free.size)
    dual[capacity_keys] = np.maximum(-result.ineqlin.marginals[len(bids) :], 0.0)
    dual = dual.reshape(free.shape)
    pooled: dict[tuple[int, int], float] = {}
    combined: dict[tuple[int, int], float] = {}
    for (u, cluster_id), hours in open_hours.items():
        k = parent[u] if parent[u] >= 0 else u
        for h in np.flatnonzero(_bits(hours, horizon, cache)):
            class_dual = dual[k, h]
            value = class_dual + (dual[u, h] if u != k else 0.0)
            if class_dual > pooled.get((cluster_id, h), 0.0):
                pooled[cluster_id, int(h)] = float(class_dual)
            if value > combined.get((cluster_id, h), 0.0):
                combined[cluster_id, int(h)] = float(value)
    return -result.fun, [pooled, combined]


def lp_upper_bound(bids: Sequence[Bid], asks: Sequence[Ask], *, time_limit_s: float | None = None) -> float:
    """An upper bound on the total surplus of any feasible plan: the LP relaxation's optimum, by column generation
    with scipy ``linprog(method="highs")`` (``lp_relaxation``; needs numpy and scipy). With a
    ``time_limit_s`` that stops it early, still a valid upper bound (a Lagrangian one), only looser."""
    return lp_relaxation(bids, asks, time_limit_s=time_limit_s).bound

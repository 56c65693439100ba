"""Matching benchmark: batch clearing of a seeded synthetic market against its LP relaxation bound.

No database: builds ``orders.matching`` dataclasses directly. 10k bids × 2k listings (one per cluster, 8
accelerators, 8–24 nodes of 8 GPUs each, a 72-hour horizon, 30 % of nodes with an existing booking; bids of 1–8
nodes for 4–36 hours with 0–8 hours of slack, 30 % accepting a second accelerator), times
``matching.clear`` and compares its surplus with ``matching.lp_upper_bound`` (scipy ``linprog(method="highs")``).
Targets: clear < 5 s, surplus ≥ 0.98 × the LP bound.

LP size: asks of one (accelerator, price level, GPUs per node) form one class whose per-hour capacity is the sum
of its clusters' free nodes (a relaxation of the per-cluster constraints, so the bound stays an upper bound, only
looser); prices sit on 4 levels per accelerator, as on a real exchange's price grid. That keeps the LP at about
10k + 32 × 72 rows and about a million columns.

    .venv/bin/python bench/matching.py [--bids 10000] [--listings 2000] [--seed 7] [--budget 2.5]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from results import record  # bench/ is on sys.path when run as a script

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orders import matching

HORIZON = 72
ACCELERATORS = {"h100": 28.0, "h800": 24.0, "a800": 16.0, "a100": 15.0, "910b": 12.0, "910c": 14.0,
                "mlu590": 9.0, "l40s": 7.0}
LEVELS = (1.0, 1.1, 1.2, 1.35)


def market(n_bids: int, n_listings: int, seed: int, cluster_nodes: tuple[int, int] = (8, 24),
           ) -> tuple[list[matching.Bid], list[matching.Ask]]:
    rng = random.Random(seed)
    full = (1 << HORIZON) - 1
    names = list(ACCELERATORS)
    asks = []
    for listing_id in range(1, n_listings + 1):
        acc = rng.choice(names)
        masks = []
        for _ in range(rng.randint(*cluster_nodes)):
            mask = full
            if rng.random() < 0.3:  # an existing booking on this node
                start = rng.randrange(HORIZON)
                mask &= ~(((1 << rng.randint(2, 12)) - 1) << start) & full
            masks.append(mask)
        start = rng.choice([0, 0, 0, 6, 12])
        asks.append(matching.Ask(listing_id=listing_id, cluster_id=listing_id, accelerator=acc,
                                 price=round(ACCELERATORS[acc] * rng.choice(LEVELS), 2), gpus_per_node=8,
                                 start=start, end=HORIZON, node_free=tuple(masks), created=listing_id))
    bids = []
    for bid_id in range(1, n_bids + 1):
        primary = rng.choice(names)
        accs = {primary} | ({rng.choice(names)} if rng.random() < 0.3 else set())
        duration = rng.randint(4, 36)
        earliest = rng.randint(0, HORIZON - duration)
        latest = min(HORIZON, earliest + duration + rng.randint(0, 8))
        bids.append(matching.Bid(bid_id=bid_id, accelerators=frozenset(accs), nodes=rng.randint(1, 8),
                                 duration_hours=duration, earliest_start=earliest, latest_end=latest,
                                 max_price=round(ACCELERATORS[primary] * rng.uniform(0.95, 1.6), 2),
                                 created=bid_id))
    return bids, asks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bids", type=int, default=10_000)
    parser.add_argument("--listings", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--budget", type=float, default=2.5, help="clear()'s time budget, seconds")
    parser.add_argument("--cluster-nodes", default="8-24", help="nodes per cluster, min-max (default 8-24)")
    args = parser.parse_args()
    low, high = (int(n) for n in args.cluster_nodes.split("-"))
    bids, asks = market(args.bids, args.listings, args.seed, (low, high))

    started = time.perf_counter()
    plan = matching.clear(bids, asks, time_budget_s=args.budget)
    clear_s = time.perf_counter() - started
    surplus = matching.total_surplus(plan)
    arrival = matching.total_surplus(matching.continuous(bids, asks))

    started = time.perf_counter()
    bound = matching.lp_upper_bound(bids, asks)
    lp_s = time.perf_counter() - started

    ratio = surplus / bound if bound else 1.0
    print(f"market: {len(bids)} bids x {len(asks)} listings ({args.cluster_nodes} nodes each), {HORIZON} h horizon, "
          f"seed {args.seed}")
    print(f"clear: {clear_s:.2f} s (target < 5 s) — {len(plan)} bids filled, surplus {surplus:,.0f}")
    print(f"continuous (arrival order) surplus {arrival:,.0f}")
    print(f"LP relaxation bound {bound:,.0f} (HiGHS, {lp_s:.1f} s)")
    print(f"surplus / LP bound: {ratio:.4f} (target >= 0.98)")
    record("matching", f"clear {len(bids)} bids × {len(asks)} listings", clear_s, unit="s", target="< 5 s",
           met=clear_s < 5)
    record("matching", "surplus ÷ LP relaxation bound", ratio, target="≥ 0.98", met=ratio >= 0.98)
    ok = clear_s < 5 and ratio >= 0.98
    print("PASS" if ok else "MISS")


if __name__ == "__main__":
    main()

"""Matching benchmark: batch clearing of a seeded synthetic market against its LP relaxation bound.

No database: builds ``orders.matching`` dataclasses directly. 10k bids × 2k listings (one per cluster, 8
accelerators, 8–24 nodes of 8 GPUs each, a 72-hour horizon, 30 % of nodes with an existing booking; bids of 1–8
nodes for 4–36 hours with 0–8 hours of slack, 30 % accepting a second accelerator), times
``matching.clear`` and compares its surplus with the LP relaxation bound (``matching_lp.lp_relaxation``,
scipy ``linprog(method="highs")``). Targets: clear < 5 s, surplus ≥ 0.98 × the LP bound.

The LP (x per bid, listing and start; per cluster and hour Σ nodes·x ≤ free nodes) has millions of columns here,
so it is solved by column generation, warm-started with the duals of a coarser LP (asks of one accelerator, price
and GPUs per node pooled into one class, split by voucher eligibility for the voucher bids) and seeded with the
clearing's own plan. Stopped by ``--lp-time`` before it converges, the bound reported is the least Lagrangian bound
seen (or the class LP's, if lower): still a valid upper bound, so the ratio stays a lower estimate of clear's
quality; the output also gives the best feasible LP value found (the LP optimum lies between the two) and says
whether the LP was solved exactly.

Two runs on the same market: ``plain`` (no vouchers) and ``vouchers``, where a third of the bids carry vouchers
(issue 17): each listing sits in one of 8 cities, each such bid's voucher pays 20–50 % of a booking (half of them
with a per-booking cap of ¥500–3,000) in one city only, and the bid gets the net-price table the Django side would
build (``Bid.net_prices``: its city's listings of its accelerators, at price − voucher part ÷ GPU-hours); its
maximum then bounds the net price. Same targets.

    .venv/bin/python bench/matching.py [--bids 10000] [--listings 2000] [--seed 7] [--budget 2.5] [--lp-time 120]
                                       [--runs plain,vouchers] [--voucher-share 0.3333]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import time
from pathlib import Path

from results import record  # bench/ is on sys.path when run as a script

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import matching_lp

from orders import matching

HORIZON = 72
ACCELERATORS = {"h100": 28.0, "h800": 24.0, "a800": 16.0, "a100": 15.0, "910b": 12.0, "910c": 14.0,
                "mlu590": 9.0, "l40s": 7.0}
LEVELS = (1.0, 1.1, 1.2, 1.35)
CITIES = ("Beijing", "Shanghai", "Hangzhou", "Shenzhen", "Guangzhou", "Chengdu", "Wuhan", "Nanjing")


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


def with_vouchers(bids: list[matching.Bid], asks: list[matching.Ask], seed: int, share: float
                  ) -> tuple[list[matching.Bid], int]:
    """``bids`` where ``share`` of them carry a one-city voucher (see the module docstring), with their net-price
    tables; and how many do. Draws from its own generator, so the market itself is the plain run's."""
    rng = random.Random(seed * 7919 + 1)
    city = {ask.listing_id: rng.choice(CITIES) for ask in asks}
    in_city: dict[tuple[str, str], list[matching.Ask]] = {}
    for ask in asks:
        in_city.setdefault((city[ask.listing_id], ask.accelerator), []).append(ask)
    out, carrying = [], 0
    for bid in bids:
        if rng.random() >= share:
            out.append(bid)
            continue
        carrying += 1
        where, ratio = rng.choice(CITIES), rng.uniform(0.2, 0.5)
        cap = rng.uniform(500, 3000) if rng.random() < 0.5 else None
        table = {}
        for accelerator in bid.accelerators:
            for ask in in_city.get((where, accelerator), ()):
                gpu_hours = ask.gpus_per_node * bid.nodes * bid.duration_hours
                subtotal = ask.price * gpu_hours
                part = ratio * subtotal if cap is None else min(ratio * subtotal, cap)
                table[ask.listing_id] = (subtotal - part) / gpu_hours
        out.append(dataclasses.replace(bid, net_prices=table))
    return out, carrying


def run(label: str, bids: list[matching.Bid], asks: list[matching.Ask], args, suffix: str = "") -> bool:
    """Clear the market, bound it with the LP, print and record the figures; True when both targets are met."""
    started = time.perf_counter()
    plan = matching.clear(bids, asks, time_budget_s=args.budget)
    clear_s = time.perf_counter() - started
    surplus = matching.total_surplus(plan)
    arrival = matching.total_surplus(matching.continuous(bids, asks))

    lp = matching_lp.lp_relaxation(bids, asks, time_limit_s=args.lp_time, warm_start=True, seed=plan)
    bound = lp.bound

    ratio = surplus / bound if bound else 1.0
    print(f"[{label}] market: {len(bids)} bids x {len(asks)} listings ({args.cluster_nodes} nodes each), "
          f"{HORIZON} h horizon, seed {args.seed}")
    print(f"[{label}] clear: {clear_s:.2f} s (target < 5 s) — {len(plan)} bids filled, surplus {surplus:,.0f}")
    print(f"[{label}] continuous (arrival order) surplus {arrival:,.0f}")
    state = "exact (column generation converged)" if lp.exact else (
        f"not converged in {args.lp_time:.0f} s: a valid upper bound; the LP optimum is >= "
        f"{max(lp.lower, float(surplus)):,.0f}")  # any plan, and the last master, are feasible for the LP
    print(f"[{label}] LP relaxation bound {bound:,.0f} — {state}; HiGHS, {lp.seconds:.1f} s, {lp.rounds} rounds, "
          f"{lp.columns:,} of {lp.slots:,} columns")
    print(f"[{label}] surplus / LP bound: {ratio:.4f} (target >= 0.98)")
    if not lp.exact:
        print(f"[{label}] surplus / best feasible LP value: {surplus / max(lp.lower, float(surplus)):.4f} "
              f"(the ratio to the LP optimum lies between this and the one above)")
    record("matching", f"clear {len(bids)} bids × {len(asks)} listings{suffix}", clear_s, unit="s", target="< 5 s",
           met=clear_s < 5)
    record("matching", f"surplus ÷ LP relaxation bound{suffix}", ratio, target="≥ 0.98", met=ratio >= 0.98)
    record("matching", f"LP relaxation (column generation){suffix}", lp.seconds, unit="s")
    return clear_s < 5 and ratio >= 0.98


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bids", type=int, default=10_000)
    parser.add_argument("--listings", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--budget", type=float, default=2.5, help="clear()'s time budget, seconds")
    parser.add_argument("--cluster-nodes", default="8-24", help="nodes per cluster, min-max (default 8-24)")
    parser.add_argument("--lp-time", type=float, default=120.0,
                        help="time limit of the LP's column generation, seconds (the bound stays valid)")
    parser.add_argument("--runs", default="plain,vouchers", help="which runs: plain, vouchers (default both)")
    parser.add_argument("--voucher-share", type=float, default=1 / 3,
                        help="share of the bids that carry vouchers in the vouchers run (default 1/3)")
    args = parser.parse_args()
    low, high = (int(n) for n in args.cluster_nodes.split("-"))
    bids, asks = market(args.bids, args.listings, args.seed, (low, high))
    ok = True
    runs = args.runs.split(",")
    if "plain" in runs:
        ok &= run("plain", bids, asks, args)
    if "vouchers" in runs:
        voucher_bids, carrying = with_vouchers(bids, asks, args.seed, args.voucher_share)
        print(f"[vouchers] {carrying} of {len(bids)} bids carry a one-city voucher (net-price tables: "
              f"{sum(len(b.net_prices) for b in voucher_bids if b.net_prices is not None):,} entries)")
        ok &= run("vouchers", voucher_bids, asks, args, suffix=f", {carrying / len(bids):.0%} of bids with vouchers")
    print("PASS" if ok else "MISS")


if __name__ == "__main__":
    main()

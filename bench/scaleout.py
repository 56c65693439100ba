"""Pure helpers of ``bench/booking.py --scale-out`` (no Django, no database: tested in ``tests/bench``).

The scale-out run spreads its clients over several gunicorn instances, samples ``pg_stat_activity`` for backends
waiting on a lock while the bookings run, and prices a booking in authenticated wallet reads (CPU of the web
servers and PostgreSQL per request, both measured in the same run).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

# One sample: how many backends of the bench database wait on a heavyweight lock, by wait event (transactionid,
# tuple, relation, advisory …). Backends of other databases (other engineers' tests) are not counted.
LOCK_SAMPLE_SQL = """
SELECT wait_event, count(*)
FROM pg_stat_activity
WHERE datname = %s AND wait_event_type = 'Lock'
GROUP BY wait_event
"""


def port_for(index: int, ports: Sequence[int]) -> int:
    """The web server client ``index`` talks to: round robin over ``ports`` (a load balancer's simplest policy)."""
    if not ports:
        raise ValueError("no ports")
    return ports[index % len(ports)]


def lock_wait_summary(samples: Sequence[dict[str, int]]) -> dict:
    """Summary of lock-wait samples (each ``{wait_event: backends waiting}``): how many samples, the share of them
    with at least one waiting backend, the mean and the largest number waiting, and the mean per wait event."""
    n = len(samples)
    totals = [sum(sample.values()) for sample in samples]
    by_event: dict[str, float] = {}
    for sample in samples:
        for event, count in sample.items():
            by_event[event] = by_event.get(event, 0) + count
    return {
        "samples": n,
        "share_waiting": sum(1 for t in totals if t) / n if n else 0.0,
        "mean_waiting": sum(totals) / n if n else 0.0,
        "max_waiting": max(totals, default=0),
        "by_event": {event: total / n for event, total in sorted(by_event.items())},
    }


def lock_wait_text(summary: dict) -> str:
    """One line for the bench's output."""
    if not summary["samples"]:
        return "no samples"
    events = ", ".join(f"{event} {mean:.2f}" for event, mean in summary["by_event"].items()) or "none"
    return (
        f"{summary['samples']} samples, {summary['share_waiting'] * 100:.0f} % with a backend waiting on a lock, "
        f"mean {summary['mean_waiting']:.2f}, max {summary['max_waiting']} (mean by event: {events})"
    )


def cpu_ms(per_request: dict[str, float], sides: Sequence[str] = ("web", "postgres")) -> float:
    """Milliseconds of CPU per request of the given sides (``bench/booking.py``'s ``cpu_per_request`` keys)."""
    return sum(per_request.get(side, 0.0) for side in sides)


def cost_in_reads(booking_ms: float, read_ms: float) -> float:
    """What a booking costs in authenticated wallet reads (CPU per booking ÷ CPU per read; NaN without reads)."""
    return booking_ms / read_ms if read_ms > 0 else float("nan")


def median_costs(costs: Sequence[tuple[int, float]]) -> dict[int, float]:
    """The median booking cost in reads per client count, from ``(clients, cost)`` pairs of several rounds (one
    round's figure moves by ±15 % on a shared virtual machine; the median of rounds moves less)."""
    by_clients: dict[int, list[float]] = {}
    for clients, cost in costs:
        by_clients.setdefault(clients, []).append(cost)
    return {clients: statistics.median(values) for clients, values in sorted(by_clients.items())}


BOOKING_TARGET_READS = 2.0  # issue 24: a booking costs at most two authenticated wallet reads of CPU …
BOOKING_TARGET_P99_MS = 100.0  # … and answers within 100 ms at the 99th percentile at 16 clients


def booking_target_met(reads: float, p99_ms: float) -> bool:
    """Issue 24's target: at most ``BOOKING_TARGET_READS`` reads of CPU and p99 under ``BOOKING_TARGET_P99_MS``."""
    return reads <= BOOKING_TARGET_READS and p99_ms < BOOKING_TARGET_P99_MS

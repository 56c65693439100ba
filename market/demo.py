"""Demo price index for ``manage.py seed_demo``: the fixings of the replayed history (idempotent)."""

from __future__ import annotations

import datetime as dt

from market.services import fixings_backfill


def backfill(*, days: int, until: dt.date, stdout=None) -> int:
    """The fixings of the ``days`` days up to ``until``; call it while the replayed history is in place (right after
    ``settlement.demo.replay``: the demo listings' windows are then the ones of that history)."""
    total = fixings_backfill(days=days, until=until)
    if stdout:
        stdout.write(f"  market: {total} price index fixings, {until - dt.timedelta(days=days - 1)} → {until}")
    return total

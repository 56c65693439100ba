"""Shared by the benchmarks: ``record(...)`` appends one figure to the JSON-lines file named by
``GPUX_BENCH_RESULTS`` (set by ``bench/report.py``); without it, it does nothing (each script prints its own)."""

from __future__ import annotations

import json
import os


def record(bench: str, metric: str, value: float, *, unit: str = "", target: str = "", met: bool | None = None):
    path = os.environ.get("GPUX_BENCH_RESULTS")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        out.write(
            json.dumps({"bench": bench, "metric": metric, "value": value, "unit": unit, "target": target, "met": met})
            + "\n"
        )

"""``make bench``: run every benchmark under ``bench/`` and write one markdown table of their figures (with the
pgbench TPC-B reference measured in the same run by ``bench/booking.py``) to ``bench/RESULTS.md``.

    .venv/bin/python bench/report.py [--only search,matching]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
BENCHES = ["search", "booking", "audit", "settlement", "matching"]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{mem_kb / 1024 / 1024:.0f} GiB"
    except OSError:
        memory = "unknown memory"
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory}, {platform.system()} {platform.release()}, Python "
        f"{platform.python_version()}"
    )


def run(name: str, results: Path) -> int:
    print(f"== bench/{name}.py", flush=True)
    env = {**os.environ, "GPUX_BENCH_RESULTS": str(results)}
    return subprocess.run([sys.executable, str(BENCH_DIR / f"{name}.py")], env=env, check=False).returncode


def table(rows: list[dict], failures: dict[str, int]) -> str:
    lines = [
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine()}.",
        "",
        "| benchmark | figure | value | target | met |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        met = "" if row["met"] is None else ("yes" if row["met"] else "**no**")
        places = 4 if abs(row["value"]) < 10 else 3  # ratios near a target: 0.9795 must not print as 0.98
        value = f"{row['value']:,.{places}f}".rstrip("0").rstrip(".") + (f" {row['unit']}" if row["unit"] else "")
        lines.append(f"| {row['bench']} | {row['metric']} | {value} | {row['target']} | {met} |")
    for name, code in failures.items():
        lines.append(f"| {name} | exited with code {code} | | | **no** |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated subset of " + ",".join(BENCHES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results.jsonl"
        results.touch()
        failures = {name: code for name in args.only.split(",") if (code := run(name, results))}
        rows = [json.loads(line) for line in results.read_text().splitlines()]
    report = table(rows, failures)
    (BENCH_DIR / "RESULTS.md").write_text(report)
    print("\n" + report)
    print(f"written to {BENCH_DIR / 'RESULTS.md'}")


if __name__ == "__main__":
    main()

"""Audited insert against plain insert, with pgbench (issue 24: the audit log must not serialise the exchange).

Creates a fresh database ``gpux_bench_audit`` on the PostgreSQL the tests use (or the server of ``DATABASE_URL``),
migrates it, and copies the audit event table without its triggers (``CREATE TABLE … (LIKE audit_auditevent
INCLUDING ALL)``: same columns and indexes) and without the ``txid`` default. Then pgbench runs at ``--clients``
(32) for ``--seconds`` (8) each, every kind once per round in a rotated order, ``--rounds`` (5) times, so that the
load of a shared machine drifts over all kinds alike:

- ``plain``: an INSERT of an event row (of one of 100 organizations) into the copy;
- ``audited``: the same INSERT into ``audit_auditevent``, as ``audit.services.audit_record`` does it: its ``txid``
  default (the organization relation has no constraint in the database);
- ``audited + sequencer``: the same while the audit sequencer runs as in production (every 5 s, as the beat task),
  here in this process on the same cores as PostgreSQL and pgbench (``--no-sequencer`` leaves this kind out);

each bare (one statement, autocommit) and with ``--work-ms`` (2) of other work after the insert in the same
transaction (``pg_sleep``: before issue 24 the audit lock was held through it). Prints each round's ratio audited ÷
plain and their median (target ≥ 0.9), then appends the remaining events to the log and checks it as
``verify_audit`` does.

    .venv/bin/python bench/audit.py [--seconds 8] [--clients 32] [--rounds 5] [--work-ms 2] [--no-sequencer] [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from booking import drop_database, recreate_database, server_environment, server_url, with_database
from results import record  # bench/ is on sys.path when run as a script

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
BENCH_DB = "gpux_bench_audit"

INSERT = (
    "INSERT INTO {table} (created_at, actor_id, organization_id, action, object_type, object_id, data, ip) "
    "VALUES (now(), NULL, :org, 'bench.insert', 'bench.thing', :obj, "
    '\'{{"amount": "12.50", "nodes": 2}}\', \'127.0.0.1\');'
)


def script(table: str, work_ms: int) -> str:
    insert = INSERT.format(table=table)
    variables = "\\set obj random(1, 1000000)\n\\set org random(:first_org, :last_org)\n"
    if not work_ms:
        return f"{variables}{insert}\n"
    return f"{variables}BEGIN;\n{insert}\nSELECT pg_sleep({work_ms / 1000});\nEND;\n"


def pgbench(env: dict, database: str, script_file: Path, *, clients: int, seconds: int, orgs: tuple[int, int]) -> float:
    binary = shutil.which("pgbench") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))), None)
    if not binary:
        sys.exit("pgbench not found (Debian: postgresql-contrib / postgresql-client)")
    out = subprocess.run(
        [
            str(binary),
            "-n",  # no vacuum of pgbench's own tables
            "-c",
            str(clients),
            "-j",
            str(min(clients, os.cpu_count() or 1)),
            "-T",
            str(seconds),
            "-D",
            f"first_org={orgs[0]}",
            "-D",
            f"last_org={orgs[1]}",
            "-f",
            str(script_file),
            database,
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    match = re.search(
        r"tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)", out.stdout
    )
    if not match:
        sys.exit(f"could not read pgbench tps:\n{out.stdout}")
    return float(match.group(1))


class SequencerLoop(threading.Thread):
    """``audit.sequencer.audit_sequence`` every ``interval`` seconds, as Celery beat runs it, until stopped."""

    def __init__(self, interval: float = 5.0):
        super().__init__(daemon=True)
        self.interval, self.stopping, self.appended, self.busy_seconds = interval, threading.Event(), 0, 0.0

    def run(self):
        from django.db import connections

        from audit.sequencer import audit_sequence

        try:
            while not self.stopping.wait(self.interval):
                started = time.perf_counter()
                self.appended += audit_sequence().appended
                self.busy_seconds += time.perf_counter() - started
        finally:
            connections.close_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--work-ms", type=int, default=2)
    parser.add_argument("--no-sequencer", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    url = server_url()
    bench_url = with_database(url, BENCH_DB)
    recreate_database(url, BENCH_DB)
    os.environ.update(server_environment(bench_url))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections

    from accounts.models import Organization
    from audit.integrity import audit_log_check
    from audit.sequencer import audit_sequence

    call_command("migrate", verbosity=0)
    # Events of 100 organizations (the foreign key checks a row of one of them at each commit)
    created = Organization.objects.bulk_create(
        Organization(kind="startup", name=f"Bench startup {i}", city="Shanghai", credit_code=f"91310000MA1BE{i:05d}")
        for i in range(100)
    )
    orgs = (min(o.pk for o in created), max(o.pk for o in created))
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_plain_event (LIKE audit_auditevent INCLUDING ALL)")
        # no audit machinery at all: not even the txid default (the column stays, NULL)
        cursor.execute("ALTER TABLE bench_plain_event ALTER COLUMN txid DROP DEFAULT, ALTER COLUMN txid DROP NOT NULL")
    connections.close_all()

    parts = urlsplit(url)
    env = {
        **os.environ,
        "PGHOST": parts.hostname or "127.0.0.1",
        "PGPORT": str(parts.port or 5432),
        "PGUSER": parts.username or "postgres",
    }
    if parts.password:
        env["PGPASSWORD"] = parts.password
    kinds = [("plain", "bench_plain_event", False), ("audited", "audit_auditevent", False)]
    if not args.no_sequencer:
        kinds.append(("audited + sequencer", "audit_auditevent", True))
    tps: dict[tuple[str, int], list[float]] = {}
    sequencer_appended = sequencer_busy = 0.0
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for work_ms in (0, args.work_ms):
                for round_number in range(args.rounds):
                    # each round runs every kind once, in a rotated order: drift in the machine's load spreads evenly
                    shift = round_number % len(kinds)
                    for kind, table, with_sequencer in kinds[shift:] + kinds[:shift]:
                        script_file = Path(scratch) / f"{table}-{work_ms}.sql"
                        script_file.write_text(script(table, work_ms))
                        loop = SequencerLoop() if with_sequencer else None
                        if loop:
                            loop.start()
                        rate = pgbench(
                            env, BENCH_DB, script_file, clients=args.clients, seconds=args.seconds, orgs=orgs
                        )
                        if loop:
                            loop.stopping.set()
                            loop.join()
                            sequencer_appended += loop.appended
                            sequencer_busy += loop.busy_seconds
                        tps.setdefault((kind, work_ms), []).append(rate)
                        print(f"{kind:20} work {work_ms} ms: {rate:9.1f} tps", flush=True)
        started = time.perf_counter()
        drained = audit_sequence().appended
        drain_seconds = time.perf_counter() - started
        check = audit_log_check(first_only=True)
    finally:
        connections.close_all()
        if not args.keep:
            drop_database(url, BENCH_DB)

    print()
    for work_ms in (0, args.work_ms):
        label = "bare insert" if not work_ms else f"insert + {work_ms} ms of other work"
        plain = tps["plain", work_ms]
        print(
            f"{label}, {args.clients} clients, median of {args.rounds} rounds: plain {statistics.median(plain):.0f} tps"
        )
        for kind, _, _ in kinds[1:]:
            # the ratio of each round (run back to back with its plain run), then their median
            ratios = [audited / base for audited, base in zip(tps[kind, work_ms], plain, strict=True)]
            ratio = statistics.median(ratios)
            print(
                f"  {kind}: {statistics.median(tps[kind, work_ms]):.0f} tps; audited ÷ plain = {ratio:.3f} "
                f"(rounds {min(ratios):.2f}–{max(ratios):.2f}; target ≥ 0.9)"
            )
            record(
                "audit",
                f"{kind} ÷ plain insert tps, {label}, -c {args.clients} (median of {args.rounds})",
                ratio,
                target="≥ 0.9",
                met=ratio >= 0.9,
            )
    appended = sequencer_appended + drained
    rate = appended / (sequencer_busy + drain_seconds) if sequencer_busy + drain_seconds else 0.0
    print(f"sequencer: {appended:.0f} events appended at {rate:.0f} events/s of its own run time")
    record("audit", "sequencer: events appended per second of run time", rate, unit="/s")
    print(f"audit log: {check.failures[0] if check.failures else f'intact ({check.tree_size} leaves)'}")
    if check.failures:
        sys.exit("the audit log does not verify (see above)")


if __name__ == "__main__":
    main()

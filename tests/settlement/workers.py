"""Real Celery workers for settlement tests: a broker of our own (a dedicated Redis db, so other test runs'
workers never take our tasks) and ``celery worker`` subprocesses on the test database."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path
from urllib.parse import quote

import redis
from django.conf import settings
from django.db import connection

from marketplace.celery import app

ROOT = Path(__file__).resolve().parents[2]


def own_broker_url() -> str:
    """A Redis db of the test broker's server for this test database (10–14, the suite's default broker is 9), so
    parallel runs of the suite (other ``DJANGO_TEST_DB_NAME``s) seldom share a queue or flush each other's."""
    db = 10 + zlib.crc32(connection.settings_dict["NAME"].encode()) % 5
    url = settings.CELERY_BROKER_URL
    if url.startswith(SOCKET_SCHEME):  # the embedded Redis: kombu names the db in the query
        return f"{url.split('?', 1)[0]}?virtual_host={db}"
    return url.rsplit("/", 1)[0] + f"/{db}"


SOCKET_SCHEME = "redis+socket://"


def broker_client(url: str) -> redis.Redis:
    """A redis-py client for a broker URL; redis-py spells kombu's ``redis+socket://path?virtual_host=N`` as
    ``unix://path?db=N``."""
    if url.startswith(SOCKET_SCHEME):
        url = "unix://" + url[len(SOCKET_SCHEME) :].replace("virtual_host=", "db=")
    return redis.Redis.from_url(url, socket_connect_timeout=1)


def database_url() -> str:
    """The URL of the database this test runs on (the test database), for worker subprocesses."""
    s = connection.settings_dict
    auth = quote(s["USER"] or "", safe="") + (f":{quote(s['PASSWORD'], safe='')}" if s.get("PASSWORD") else "")
    socket_dir = (s.get("OPTIONS") or {}).get("host")
    if socket_dir and not s["HOST"]:  # the embedded PostgreSQL: a socket directory, as marketplace.embedded names it
        return f"postgres://{auth}@/{s['NAME']}?host={quote(socket_dir, safe='/')}"
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _reset_pools() -> None:
    app._pool = None
    app.amqp._producer_pool = None


@contextlib.contextmanager
def broker(url: str):
    """Point this process's Celery app at ``url`` (emptied first when it answers), restoring it afterwards."""
    # Celery reads CELERY_BROKER_URL from the environment before its own settings (the test settings set it).
    old_env, old_conf = os.environ.get("CELERY_BROKER_URL"), app.conf.broker_url
    with contextlib.suppress(redis.exceptions.RedisError):
        broker_client(url).flushdb()
    os.environ["CELERY_BROKER_URL"] = url
    app.conf.broker_url = url
    _reset_pools()
    try:
        yield url
    finally:
        with contextlib.suppress(redis.exceptions.RedisError):  # leave no messages for a later run
            broker_client(url).flushdb()
        if old_env is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = old_env
        app.conf.broker_url = old_conf
        _reset_pools()


def start_worker(*, pool: str = "solo", concurrency: int = 1, name: str = "w", extra_env: dict | None = None):
    """A ``celery worker`` subprocess in its own process group (so ``kill_group`` takes its children too)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "marketplace.settings.test",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": app.conf.broker_url,
        "CELERY_RESULT_BACKEND": app.conf.broker_url,
        **(extra_env or {}),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "marketplace",
            "worker",
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            "-l",
            "warning",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"{name}-{os.getpid()}-{time.monotonic_ns()}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    proc.wait(timeout=30)


def stop_worker(proc: subprocess.Popen) -> None:
    """Warm shutdown (SIGTERM), SIGKILL to the group after 20 s."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            kill_group(proc)


def wait_until(predicate, *, timeout: float = 90, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# --- handshakes with a worker: a row lock it must wait for, and what it took from the broker ------------------------


class RowLock:
    """``SELECT … FOR UPDATE`` of one row, held by a database connection of its own (so the test's connection stays
    free) until ``release()`` (a rollback; also on leaving the ``with`` block). ``pid``: its backend, for
    ``lock_waiters``."""

    def __init__(self, model, pk: int):
        self._conn = connection.get_new_connection(connection.get_connection_params())
        self._conn.autocommit = False
        with self._conn.cursor() as cursor:
            table = connection.ops.quote_name(model._meta.db_table)
            cursor.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE", [pk])  # noqa: S608 - a model's table
            assert cursor.fetchone(), f"no {model.__name__} {pk} to lock"
        self.pid: int = self._conn.info.backend_pid

    def release(self) -> None:
        if not self._conn.closed:
            self._conn.rollback()
            self._conn.close()

    def __enter__(self) -> RowLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_waiters(holder_pid: int) -> list[int]:
    """The backends now waiting for a lock that backend ``holder_pid`` holds (``pg_stat_activity``: wait event
    type ``Lock``, ``holder_pid`` among ``pg_blocking_pids``)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND %s = ANY(pg_blocking_pids(pid))",
            [holder_pid],
        )
        return [row[0] for row in cursor.fetchall()]


def backend_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone() is not None


def unacked(url: str) -> list[dict]:
    """The messages workers took from the broker at ``url`` and have not acknowledged (kombu's Redis transport
    keeps them in its ``unacked`` hash; with ``acks_late`` a task's message stays there until the task returns):
    each one's ``task`` name, ``args`` and ``delivered_at`` (epoch seconds, its ``unacked_index`` score). Kombu
    puts one back on its queue once ``delivered_at`` is a visibility timeout old, when a worker starts."""
    client = broker_client(url)
    found = []
    for tag, raw in client.hgetall("unacked").items():
        message = json.loads(raw)[0]
        args = json.loads(base64.b64decode(message["body"]))[0]
        found.append(
            {"task": message["headers"]["task"], "args": args, "delivered_at": client.zscore("unacked_index", tag)}
        )
    return found

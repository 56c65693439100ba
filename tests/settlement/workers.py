"""Real Celery workers for settlement tests: a broker of our own (a dedicated Redis db, so other test runs'
workers never take our tasks) and ``celery worker`` subprocesses on the test database."""

from __future__ import annotations

import contextlib
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
        url = "unix://" + url[len(SOCKET_SCHEME):].replace("virtual_host=", "db=")
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
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "marketplace.settings.test", "DATABASE_URL": database_url(),
           "CELERY_BROKER_URL": app.conf.broker_url, "CELERY_RESULT_BACKEND": app.conf.broker_url,
           **(extra_env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "marketplace", "worker", "--pool", pool, "--concurrency",
         str(concurrency), "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat",
         "-n", f"{name}-{os.getpid()}-{time.monotonic_ns()}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


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

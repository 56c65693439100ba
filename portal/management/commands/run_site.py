"""``manage.py run_site``: migrate, load demo data, then run web + Celery worker + beat until stopped.

Stopped the same way whichever way it is asked: Ctrl-C (SIGINT to the terminal's process group), SIGTERM to this
process, or the death of the process that started it (SIGTERM to ``make`` alone: make dies, this process sees its
parent change and stops). Stopping sends SIGTERM to web, worker and beat, waits for them, then returns, so the
embedded PostgreSQL / Redis (when ``DATABASE_URL`` / ``CELERY_BROKER_URL`` are unset) that this process's settings
started are stopped by their exit handlers. The children also get ``PR_SET_PDEATHSIG`` (Linux): should this process be
killed outright (SIGKILL), the kernel sends them SIGTERM.

The "up at" line is printed once the web server answers HTTP (``/healthz``), not when it was merely started.
"""

import ctypes
import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_SECONDS = 0.25
STOP_TIMEOUT_SECONDS = 15


class Stopped(Exception):
    """Raised by the signal handler while the site is still being set up (migrate, demo data, start-up)."""


def die_with_parent(parent_pid: int):
    """A ``preexec_fn`` for the children: SIGTERM from the kernel when the process that started them dies (Linux;
    elsewhere a no-op). If that process already died between fork and exec, the child stops at once."""

    def preexec() -> None:
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def watch_parent(interval: float = POLL_SECONDS) -> threading.Thread:
    """A daemon thread that sends SIGTERM to this process when its parent changes (the parent died: this process was
    re-parented to init or a subreaper), so the signal handler stops everything as for Ctrl-C."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="run_site-parent-watch", daemon=True)
    thread.start()
    return thread


def probe_address(addr: str) -> tuple[str, int]:
    """Where to ask whether ``runserver addr`` answers: "0.0.0.0:8000" → ("127.0.0.1", 8000), "8000" → likewise."""
    host, _, port = addr.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::", "0"):  # noqa: S104 - a listening address, not a bind
        host = "127.0.0.1"
    return host, int(port)


def answers_http(host: str, port: int, path: str = "/healthz", timeout: float = 1.0) -> bool:
    """True when an HTTP server answers at ``host:port`` (any status: it is listening and serving)."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path)
        connection.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


class Command(BaseCommand):
    help = "Set up the database and demo data, then run the web server, a Celery worker and Celery beat."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default=os.environ.get("GPUX_ADDR", "127.0.0.1:8000"))
        parser.add_argument("--no-seed", action="store_true", help="skip loading demo data")

    def handle(self, *args, addr, no_seed, **options):
        self.stopping = False
        self.running = False  # True once the children are started: a signal then only asks the loop to stop
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        watch_parent()
        procs: dict[str, subprocess.Popen] = {}
        try:
            self.stdout.write("Migrating the database …")
            call_command("migrate", interactive=False, verbosity=0)
            if not no_seed:
                call_command("seed_demo", stdout=self.stdout)
            self._start(addr, procs)
            self.running = True
            self._run(addr, procs)
        except Stopped:
            pass
        finally:
            self._stop_all(procs)

    def _on_signal(self, signum, frame):
        self.stopping = True
        if not self.running:
            raise Stopped

    def _start(self, addr: str, procs: dict[str, subprocess.Popen]) -> None:
        """Start web, worker and beat into ``procs`` (filled one by one, so a stop half-way stops those started)."""
        child_env = {
            **os.environ,
            "DATABASE_URL": settings.DATABASE_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "PYTHONUNBUFFERED": "1",
        }
        # beside the embedded servers' data (``GPUX_DATA_DIR``, ``.data/`` by default)
        beat_schedule = Path(os.environ.get("GPUX_DATA_DIR", settings.BASE_DIR / ".data")) / "celerybeat-schedule"
        beat_schedule.parent.mkdir(parents=True, exist_ok=True)
        celery = [sys.executable, "-m", "celery", "-A", "marketplace"]
        commands = {
            "web": [sys.executable, "manage.py", "runserver", addr, "--noreload"],
            "worker": [*celery, "worker", "-l", "info", "--concurrency", "2"],
            "beat": [*celery, "beat", "-l", "info", "--schedule", str(beat_schedule)],
        }
        preexec = die_with_parent(os.getpid())
        for name, command in commands.items():
            procs[name] = subprocess.Popen(command, cwd=settings.BASE_DIR, env=child_env, preexec_fn=preexec)

    def _run(self, addr: str, procs: dict[str, subprocess.Popen]) -> None:
        """Until asked to stop or a child exits: print the banner once the web server answers."""
        host, port = probe_address(addr)
        announced = False
        while not self.stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    self.stderr.write(f"{name} exited with code {proc.returncode}; stopping the rest.")
                    return
            if not announced and answers_http(host, port):
                announced = True
                self.stdout.write(
                    self.style.SUCCESS(f"\nThe exchange is up at http://{addr}/  (API docs: /api/v1/docs/)")
                )
                self.stdout.write("Press Ctrl-C to stop web, worker and beat.\n")
            time.sleep(POLL_SECONDS)

    def _stop_all(self, procs: dict[str, subprocess.Popen]) -> None:
        self.running = True  # a second Ctrl-C while stopping must not interrupt the waits below
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.stdout.write("Stopped.")

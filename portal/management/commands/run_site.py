"""``manage.py run_site``: migrate, load demo data, then run web + Celery worker + beat until Ctrl-C.

The embedded PostgreSQL / Redis (when ``DATABASE_URL`` / ``CELERY_BROKER_URL`` are unset) were started by this
process's settings; the children get their URLs in the environment and this process keeps them alive.
"""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Set up the database and demo data, then run the web server, a Celery worker and Celery beat."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default=os.environ.get("GPUX_ADDR", "127.0.0.1:8000"))
        parser.add_argument("--no-seed", action="store_true", help="skip loading demo data")

    def handle(self, *args, addr, no_seed, **options):
        self.stdout.write("Migrating the database …")
        call_command("migrate", interactive=False, verbosity=0)
        if not no_seed:
            call_command("seed_demo", stdout=self.stdout)
        child_env = {
            **os.environ,
            "DATABASE_URL": settings.DATABASE_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "PYTHONUNBUFFERED": "1",
        }
        beat_schedule = settings.BASE_DIR / ".data" / "celerybeat-schedule"
        beat_schedule.parent.mkdir(exist_ok=True)
        commands = {
            "web": [sys.executable, "manage.py", "runserver", addr, "--noreload"],
            "worker": [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "marketplace",
                "worker",
                "-l",
                "info",
                "--concurrency",
                "2",
            ],
            "beat": [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "marketplace",
                "beat",
                "-l",
                "info",
                "--schedule",
                str(beat_schedule),
            ],
        }
        procs = {name: subprocess.Popen(cmd, cwd=settings.BASE_DIR, env=child_env) for name, cmd in commands.items()}
        self.stdout.write(self.style.SUCCESS(f"\nThe exchange is up at http://{addr}/  (API docs: /api/v1/docs/)"))
        self.stdout.write("Press Ctrl-C to stop web, worker and beat.\n")
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                for name, proc in procs.items():
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with code {proc.returncode}; stopping the rest.")
                        stopping = True
                time.sleep(0.5)
        finally:
            self._stop_all(procs)

    def _stop_all(self, procs):
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        self.stdout.write("Stopped.")

"""The health endpoint, and a real Celery worker round trip through the configured Redis broker."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from marketplace.core.tasks import health

ROOT = Path(__file__).resolve().parents[2]
# The worker's own queue: the shared test broker's default queue may hold messages other tests' commits sent
# (a listing going active, a resale ask opening), which a solo worker would have to work through first.
QUEUE = f"health-{os.getpid()}"


@pytest.mark.django_db
def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "audit_sequencer": "ok"},
    }


@pytest.mark.django_db
def test_healthz_is_503_when_the_broker_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "broker": "error", "audit_sequencer": "ok"}


@pytest.fixture
def celery_worker_process():
    """A real ``celery worker`` process on the test broker; stopped (and reaped) after the test."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "marketplace.settings.test",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "marketplace",
            "worker",
            "--pool",
            "solo",
            "-l",
            "warning",
            "-n",
            f"test-{os.getpid()}@%h",
            "-Q",
            QUEUE,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_a_real_worker_round_trips_a_task(celery_worker_process):
    # given a worker process / when a task is sent through Redis
    started = time.monotonic()
    result = health.apply_async(args=(41,), queue=QUEUE)
    # then the worker answers
    assert result.get(timeout=60) == 42
    assert time.monotonic() - started < 60

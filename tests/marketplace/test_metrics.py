"""Prometheus metrics at /metrics (portal.metrics): who may read them, and the exchange's own figures."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from kombu import Connection
from prometheus_client import REGISTRY

from audit.services import audit_record
from tests import factories
from tests.oversight.factories import booking

ROOT = Path(__file__).resolve().parents[2]
OUTSIDER = "203.0.113.9"  # TEST-NET-3: never loopback, never a private network


def _value(text: str, name: str, labels: str = "") -> float:
    """A sample's value in Prometheus's text format (``name{labels} value``)."""
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name}{labels} not in the scrape"
    return float(match.group(1))


@pytest.mark.django_db
def test_loopback_reads_request_latency_bookings_sequencer_lag_and_queue_depth(client):
    # given a request served before the scrape (its latency is in the histogram)
    client.get("/healthz")
    # when
    response = client.get("/metrics")
    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    text = response.content.decode()
    assert 'django_http_requests_latency_seconds_by_view_method_count{method="GET",view="healthz"}' in text
    assert _value(text, "gpux_bookings_created_total") >= 0
    assert _value(text, "gpux_audit_sequencer_lag_seconds") >= 0
    assert _value(text, "gpux_audit_unsequenced_events") >= 0
    assert _value(text, "gpux_celery_queue_length", '{queue="celery"}') >= 0


@pytest.mark.django_db
def test_another_address_is_refused_without_metrics(client):
    response = client.get("/metrics", REMOTE_ADDR=OUTSIDER)
    assert response.status_code == 403
    assert b"gpux_" not in response.content
    assert b"django_http" not in response.content


@pytest.mark.django_db
def test_allowed_networks_come_from_the_setting(client, settings):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "not-an-address"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403  # loopback no longer listed
    assert client.get("/metrics", REMOTE_ADDR=OUTSIDER).status_code == 403


@pytest.mark.django_db
def test_the_bearer_token_opens_metrics_from_any_address(client, settings):
    settings.METRICS_BEARER_TOKEN = "scrape-secret-0123456789"
    ok = client.get("/metrics", REMOTE_ADDR=OUTSIDER, HTTP_AUTHORIZATION="Bearer scrape-secret-0123456789")
    assert ok.status_code == 200
    assert b"gpux_audit_sequencer_lag_seconds" in ok.content
    wrong = client.get("/metrics", REMOTE_ADDR=OUTSIDER, HTTP_AUTHORIZATION="Bearer scrape-secret-01234567")
    assert wrong.status_code == 403
    assert client.get("/metrics", REMOTE_ADDR=OUTSIDER).status_code == 403


@pytest.mark.django_db
def test_the_bearer_token_is_off_when_unset(client, settings):
    settings.METRICS_BEARER_TOKEN = ""
    response = client.get("/metrics", REMOTE_ADDR=OUTSIDER, HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 403


@pytest.mark.django_db
def test_metrics_answer_get_only(client):
    assert client.post("/metrics").status_code == 405


@pytest.mark.django_db
def test_a_booking_counts_once_its_transaction_commits(django_capture_on_commit_callbacks):
    # given
    before = REGISTRY.get_sample_value("gpux_bookings_created_total")
    buyer = factories.StartupFactory()
    # when
    with django_capture_on_commit_callbacks(execute=True):
        created = booking(buyer=buyer)
        created.save()  # an update is not a new booking
    # then
    assert REGISTRY.get_sample_value("gpux_bookings_created_total") == before + 1


@pytest.mark.django_db
def test_unsequenced_events_are_counted_with_their_age(client):
    # given events the sequencer has not appended (it does not run in tests)
    before = _value(client.get("/metrics").content.decode(), "gpux_audit_unsequenced_events")
    audit_record(action="test.metrics", object_type="test", data={"n": 1})
    audit_record(action="test.metrics", object_type="test", data={"n": 2})
    # when
    text = client.get("/metrics").content.decode()
    # then
    assert _value(text, "gpux_audit_unsequenced_events") == before + 2
    assert _value(text, "gpux_audit_sequencer_lag_seconds") >= 0


@pytest.mark.django_db
def test_celery_queue_length_sums_every_priority_of_each_queue(client, settings):
    # given a queue of this test run only, with 3 messages of priority 0 and 2 of priority 6
    queue = f"test-metrics-{os.getpid()}"
    settings.METRICS_CELERY_QUEUES = [queue, "celery"]
    with Connection(settings.CELERY_BROKER_URL) as conn:
        redis = conn.default_channel.client
        try:
            redis.rpush(queue, "a", "b", "c")
            redis.rpush(f"{queue}\x06\x166", "d", "e")
            # when
            text = client.get("/metrics").content.decode()
        finally:
            redis.delete(queue, f"{queue}\x06\x166")
    # then
    assert _value(text, "gpux_celery_queue_length", f'{{queue="{queue}"}}') == 5
    assert _value(text, "gpux_celery_queue_length", '{queue="celery"}') >= 0


@pytest.mark.django_db
def test_a_broker_outage_leaves_the_queue_gauge_out_but_the_scrape_answers(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"gpux_celery_queue_length{" not in response.content
    assert b"gpux_audit_sequencer_lag_seconds" in response.content


def test_metrics_are_not_redirected_to_https():
    assert any(re.match(pattern, "metrics") for pattern in settings.SECURE_REDIRECT_EXEMPT)


MULTIPROCESS_SCRIPT = """
import django
django.setup()
from prometheus_client import generate_latest
from portal import metrics
metrics.BOOKINGS_CREATED.inc(3)
print(generate_latest(metrics.metrics_registry()).decode())
"""


def test_multiprocess_mode_reads_every_process_counters(tmp_path):
    # given two processes (as two gunicorn workers) that each counted bookings into one PROMETHEUS_MULTIPROC_DIR
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "marketplace.settings.test",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "METRICS_CELERY_QUEUES": "celery",
    }
    runs = [
        subprocess.run(
            [sys.executable, "-c", MULTIPROCESS_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        for _ in range(2)
    ]
    # then the second scrape sums both processes' counters
    assert all(run.returncode == 0 for run in runs), runs[-1].stderr
    assert _value(runs[0].stdout, "gpux_bookings_created_total") == 3
    assert _value(runs[1].stdout, "gpux_bookings_created_total") == 6
    assert list(tmp_path.glob("counter_*.db"))

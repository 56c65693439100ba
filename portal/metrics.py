"""Prometheus metrics at ``/metrics``: django-prometheus's request metrics plus the exchange's own.

- Request latency and counts: django-prometheus's middleware (``django_http_requests_latency_seconds_by_view_method``
  and the rest), first and last in ``MIDDLEWARE``.
- ``gpux_bookings_created_total``: a counter, incremented when a booking's transaction commits.
- ``gpux_audit_sequencer_lag_seconds`` / ``gpux_audit_unsequenced_events``: how long the oldest committed audit event
  has waited for the sequencer, and how many wait (read from the database at each scrape).
- ``gpux_celery_queue_length{queue=…}``: the Redis list length of each queue in ``METRICS_CELERY_QUEUES``.

Under gunicorn with several worker processes set ``PROMETHEUS_MULTIPROC_DIR`` (an empty directory per instance,
emptied at each start) so a scrape sums every process's counters and histograms (prometheus_client's multiprocess
mode); the scrape-time gauges are read once per scrape either way.

Who may read: a client whose address (``REMOTE_ADDR``: scrape the instance directly, not through the proxy) is in
``METRICS_ALLOWED_IPS`` (addresses or networks; loopback by default), or one that sends
``Authorization: Bearer <METRICS_BEARER_TOKEN>`` when that token is set. Anyone else gets 403.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse
from django.utils.translation import gettext
from django.views.decorators.http import require_GET
from kombu import Connection
from prometheus_client import REGISTRY, CollectorRegistry, Counter, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from audit import selectors as audit_selectors

logger = logging.getLogger(__name__)

BOOKINGS_CREATED = Counter("gpux_bookings_created", "Bookings created (counted when their transaction commits).")

# kombu's Redis transport keeps a queue's messages of priority p > 0 in a list of its own, "<queue>\x06\x16<p>".
_KOMBU_PRIORITY_SEP = "\x06\x16"
_KOMBU_PRIORITY_STEPS = (3, 6, 9)


def on_booking_saved(sender, instance, created: bool, **kwargs) -> None:
    """``post_save`` receiver of ``orders.Booking``: count a new booking once its transaction commits."""
    if created:
        transaction.on_commit(BOOKINGS_CREATED.inc)


def celery_queue_lengths(queues: list[str]) -> dict[str, int]:
    """Messages waiting in each Celery queue (all priorities), read from the broker's Redis with LLEN."""
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as conn:
        client = conn.default_channel.client
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            for name in [queue, *(f"{queue}{_KOMBU_PRIORITY_SEP}{p}" for p in _KOMBU_PRIORITY_STEPS)]:
                pipe.llen(name)
        counts = pipe.execute()
    per_queue = 1 + len(_KOMBU_PRIORITY_STEPS)
    return {queue: sum(counts[i * per_queue : (i + 1) * per_queue]) for i, queue in enumerate(queues)}


class ExchangeCollector:
    """The gauges read at scrape time: the audit sequencer's backlog and the Celery queues. A source that cannot be
    read is left out of the scrape (and logged) rather than failing it: the request metrics still answer."""

    def describe(self):
        return []  # nothing is read when the collector is registered

    def collect(self):
        try:
            pending, lag = audit_selectors.sequencer_backlog()
        except Exception as exc:  # a scrape reports what it can
            logger.warning("metrics: audit sequencer backlog not read: %s", exc)
        else:
            yield GaugeMetricFamily(
                "gpux_audit_sequencer_lag_seconds",
                "Seconds the oldest committed audit event has waited for the sequencer (0 when none waits).",
                value=lag,
            )
            yield GaugeMetricFamily(
                "gpux_audit_unsequenced_events", "Committed audit events not yet in the signed log.", value=pending
            )
        try:
            lengths = celery_queue_lengths(settings.METRICS_CELERY_QUEUES)
        except Exception as exc:
            logger.warning("metrics: Celery queue lengths not read: %s", exc)
        else:
            family = GaugeMetricFamily(
                "gpux_celery_queue_length", "Messages waiting in a Celery queue (Redis LLEN).", labels=["queue"]
            )
            for queue, length in lengths.items():
                family.add_metric([queue], length)
            yield family


class _ProcessMetrics:
    """This process's own registry (django-prometheus's metrics and ``BOOKINGS_CREATED``), without multiprocess mode."""

    def collect(self):
        return REGISTRY.collect()


def metrics_registry() -> CollectorRegistry:
    """A registry for one scrape: every process's metrics (multiprocess mode) or this process's, and the gauges."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ProcessMetrics())
    registry.register(ExchangeCollector())
    return registry


def metrics_allowed(request) -> bool:
    """The client's address is in ``METRICS_ALLOWED_IPS``, or it sent the ``METRICS_BEARER_TOKEN``."""
    token = settings.METRICS_BEARER_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and secrets.compare_digest(header[7:].encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    for allowed in settings.METRICS_ALLOWED_IPS:
        try:
            if address in ipaddress.ip_network(allowed, strict=False):
                return True
        except ValueError:
            logger.warning("metrics: METRICS_ALLOWED_IPS entry %r is not an address or a network", allowed)
    return False


@require_GET
def metrics(request):
    """``/metrics`` in Prometheus's text format, for allowed clients only (see the module docstring)."""
    if not metrics_allowed(request):
        return HttpResponse(gettext("Metrics are not available to this client."), status=403, content_type="text/plain")
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)

"""Site-wide pages: home and the health check."""

import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from kombu import Connection

from accounts import selectors
from portal import dashboard

logger = logging.getLogger(__name__)


def home(request):
    """The dashboard: a panel for each kind of organization the user acts for (see ``portal.dashboard``)."""
    user = request.user
    context = {"memberships": list(selectors.user_memberships(user))}
    if user.is_authenticated:
        context |= {
            "startup": dashboard.startup_panel(user),
            "provider": dashboard.provider_panel(user),
            "issuer": dashboard.issuer_panel(user),
            "platform": dashboard.platform_panel(user),
        }
    return render(request, "home.html", context)


@require_GET
def healthz(request):
    """200 when the database and the broker answer, 503 otherwise, with each check's result."""
    checks = {"database": _check_database(), "broker": _check_broker()}
    healthy = all(result == "ok" for result in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks}, status=200 if healthy else 503
    )


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # the point of a health check is to report, not to raise
        logger.warning("healthz: database check failed: %s", exc)
        return "error"


def _check_broker() -> str:
    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as exc:
        logger.warning("healthz: broker check failed: %s", exc)
        return "error"

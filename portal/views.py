"""Site-wide pages: home, the health check, organization profiles and the 404 page."""

import logging
import re

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext
from django.views.decorators.http import require_GET
from kombu import Connection

from accounts import selectors
from accounts.models import Organization
from audit import selectors as audit_selectors
from listings import selectors as listing_selectors
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
    """200 when the database and the broker answer, 503 otherwise, with each check's result.

    ``audit_sequencer`` (``"ok"``, ``"lagging"`` when a committed audit event has waited longer than
    ``AUDIT_SEQUENCER_LAG_SECONDS`` to enter the signed log, ``"error"`` when it cannot be read) is reported but never
    makes the site unhealthy: requests are served and audited meanwhile; alert on it instead."""
    checks = {"database": _check_database(), "broker": _check_broker()}
    healthy = all(result == "ok" for result in checks.values())
    checks["audit_sequencer"] = _check_audit_sequencer() if checks["database"] == "ok" else "error"
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks}, status=200 if healthy else 503
    )


def _check_audit_sequencer() -> str:
    try:
        return audit_selectors.sequencer_status()
    except Exception as exc:
        logger.warning("healthz: audit sequencer check failed: %s", exc)
        return "error"


def _check_database() -> str:
    try:
        connection.ensure_connection()
        return "ok" if connection.is_usable() else "error"
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


@login_required
def organization_profile(request, pk: int):
    """``/organizations/<id>/``: an organization as a counter-party sees it (name, kind, city, verified, and a
    provider's data centres with their active listings); its own members and platform staff also see the credit
    code, legal representative and owners. Unverified organizations are 404 to others."""
    org, private = selectors.organization_profile(pk, request.user)
    data_centers = list(listing_selectors.public_data_centers(org.pk)) if org.kind == Organization.Kind.PROVIDER else []
    return render(request, "portal/organization.html", {"org": org, "private": private, "data_centers": data_centers})


# Django's ``get_object_or_404`` message ("No VoucherProgram matches the given query."): a class name, in English.
_GENERIC_NOT_FOUND = re.compile(r"No \w+ matches the given query\.")


def page_not_found(request, exception=None):
    """The site's 404 page (``handler404``, and ``portal.middleware`` under ``DEBUG``): the message a view raised
    ``Http404`` with for its readers ("No such booking."), else a plain sentence in the reader's language — never
    an exception's class name ("Resolver404" for an address no route matches) or ``get_object_or_404``'s."""
    args = getattr(exception, "args", ())
    message = args[0] if args and isinstance(args[0], str) else ""
    if not message or _GENERIC_NOT_FOUND.fullmatch(message):
        message = gettext("There is no page at this address, or it is not one you may see.")
    return render(request, "404.html", {"message": message}, status=404)

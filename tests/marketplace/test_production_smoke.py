"""A production-settings smoke test (issue 23, item 11): ``collectstatic`` with the default production storage
(whitenoise's compressed manifest storage, as ``marketplace.settings.base`` chooses with DEBUG off), then every page
of every role rendered with DEBUG off against that manifest — a page naming a static file the manifest lacks, or
failing any other way, answers 500 here as it would in production.

Pages come from the URL resolver (every route outside /api/ and /admin/), so a page added later is rendered too;
path parameters name objects of the roles' own organizations (``tests.security.test_input_probes.build_world``).
Each role gets 200 on its own pages, anonymous visitors are sent to log in, other roles are refused (403, or 404 for
another organization's object), a GET of a form's POST-only route answers 405 — and nothing answers 500. An unknown
URL answers the site's 404 page, not Django's debug page.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver

from tests.marketplace.test_settings import ROOT, clean_env
from tests.security.test_input_probes import build_world

ROLES = ["anonymous", "startup", "provider", "issuer", "staff", "auditor"]
LOGGED_IN = frozenset(ROLES) - {"anonymous"}
PUBLIC = {"home", "login", "listings-browse", "listings-detail"}
NOT_PAGES = {
    "healthz": "a JSON health check for load balancers (tests/marketplace/test_health.py)",
    "metrics": "Prometheus metrics for allowed scrapers (tests/marketplace/test_metrics.py)",
}
# The logged-in roles that get 200 on each page; every other logged-in role is refused (403, or 404 for another
# organization's object). Lists and forms every member may open show what is theirs (often nothing).
OWN_PAGES = {
    **dict.fromkeys(
        [
            "home",
            "login",
            "listings-browse",
            "listings-detail",
            "market",
            "booking-new",
            "booking-list",
            "bid-list",
            "voucher-list",
            "voucher-program-list",
            "voucher-program-detail",
            "voucher-application-queue",
        ],
        LOGGED_IN,
    ),
    "listings-provider": {"provider"},
    "listings-listing-edit": {"provider"},
    "listings-review": {"staff"},
    "booking-detail": {"startup", "provider"},
    "booking-progress": {"startup", "provider"},
    "voucher-detail": {"startup", "issuer"},
    "voucher-program-new": {"issuer"},
    "voucher-program-edit": {"issuer"},
    "wallet": {"startup"},
    "deposit-list": {"staff"},
    **dict.fromkeys(
        ["audit-dashboard", "audit-spend-csv", "audit-flags", "audit-events"], frozenset({"issuer", "auditor"})
    ),
    "payout-list": {"provider", "staff"},
    "claim-list": {"issuer"},
    **dict.fromkeys(["statement-list", "statement-detail", "statement-csv"], frozenset({"issuer", "staff", "auditor"})),
}
# Pages added since (or by work in progress) are rendered for every role too and must answer one of these.
ANY_PAGE = {200, 302, 400, 403, 404}
# Path parameters by name: the object of that kind the roles' organizations own (world ids), or a fixed word.
PARAMETERS = {
    "listings-detail": {"pk": "active-listing"},
    "booking-new": {"listing_id": "active-listing"},
    "booking-quote": {"listing_id": "active-listing"},
    "listings-listing-edit": {"pk": "listings"},
    "listings-listing-action": {"pk": "listings"},
    "listings-review-decide": {"pk": "/api/v1/listings/{id}/review/"},
    "booking-detail": {"pk": "bookings"},
    "booking-cancel": {"pk": "bookings"},
    "booking-confirm": {"pk": "bookings"},
    "bid-cancel": {"pk": "bids"},
    "voucher-detail": {"pk": "vouchers"},
    "voucher-program-edit": {"pk": "voucher-programs"},
    "voucher-program-detail": {"pk": "voucher-programs"},
    "voucher-program-apply": {"pk": "voucher-programs"},
    "voucher-application-approve": {"pk": "voucher-applications"},
    "voucher-application-reject": {"pk": "voucher-applications"},
    "audit-flag-review": {"pk": "flags"},
    "booking-progress": {"booking_id": "settlement/bookings"},
    "payout-mark-paid": {"pk": "payouts"},
    "claim-mark-paid": {"pk": "reimbursement-claims"},
    "statement-detail": {"pk": "statements"},
    "statement-csv": {"pk": "statements"},
    "statement-pay": {"pk": "statements"},
}
WORDS = {"action": "pause", "decision": "verify"}


def page_routes() -> list[tuple[str, str]]:
    """(route name, path pattern) of every route outside /api/ and /admin/."""
    found: list[tuple[str, str]] = []

    def walk(patterns, prefix: str) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                found.append((entry.name, prefix + str(entry.pattern)))

    walk(get_resolver().url_patterns, "")
    return [
        (name, pattern)
        for name, pattern in found
        if not pattern.startswith(("api/", "admin/")) and name not in NOT_PAGES
    ]


def page_url(name: str, pattern: str, ids: dict) -> str:
    """The pattern with each ``<converter:param>`` filled in: an object of the roles' own, a fixed word, or an id
    or token that names nothing (the page must then answer 404, not fail)."""
    url, known = "/" + pattern, PARAMETERS.get(name, {})
    while "<" in url:
        start, end = url.index("<"), url.index(">")
        converter, _, param = url[start + 1 : end].rpartition(":")
        if param in known:
            value = str(ids[known[param]])
        elif param in WORDS:
            value = WORDS[param]
        else:
            value = "999999" if converter == "int" else "no-such-token"
        url = url[:start] + value + url[end + 1 :]
    return url


@pytest.fixture(scope="module")
def production_static(tmp_path_factory):
    """``collectstatic`` run with the production settings module into a fresh STATIC_ROOT; the STORAGES those
    settings chose, for the pages to render with."""
    root = tmp_path_factory.mktemp("static")
    code = (
        "import django, json, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'marketplace.settings.base'; "
        "django.setup(); from django.conf import settings; from django.core.management import call_command; "
        "call_command('collectstatic', '--noinput', verbosity=0); print(json.dumps(settings.STORAGES))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(
            DJANGO_DEBUG="0",
            DJANGO_SECRET_KEY="k3y-" + "a1b2c3d4e5" * 6,
            DJANGO_STATIC_ROOT=str(root),
            DATABASE_URL="postgres://u@127.0.0.1/none",
            CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        ),
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    storages = json.loads(result.stdout.strip().splitlines()[-1])
    assert storages["staticfiles"]["BACKEND"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    assert (root / "staticfiles.json").exists()
    return root, storages


@pytest.fixture
def production(production_static):
    root, storages = production_static
    with override_settings(DEBUG=False, STATIC_ROOT=root, STORAGES=storages):
        yield


def role_clients(users: dict) -> dict[str, Client]:
    clients = {}
    for role in ROLES:
        client = Client(raise_request_exception=False)  # a failing page is a 500 answer, as in production
        if role != "anonymous":
            client.force_login(users[role])
        clients[role] = client
    return clients


def post_only(response) -> bool:
    """A form's action (``require_POST``, Django's logout): 405 allowing POST but not GET."""
    allow = {method.strip() for method in response.get("Allow", "").split(",")}
    return response.status_code == 405 and "POST" in allow and "GET" not in allow


def expected(name: str, role: str) -> set[int]:
    """The statuses a GET of page ``name`` may answer ``role`` (POST-only routes aside)."""
    if name not in OWN_PAGES:
        return ANY_PAGE
    if role == "anonymous":
        return {200} if name in PUBLIC else {302}
    return {200} if role in OWN_PAGES[name] else {403, 404}


@pytest.mark.django_db
def test_every_page_of_every_role_renders_with_the_production_storage(production):
    # given each role's organization with objects of its own, and the manifest collectstatic wrote
    world = build_world()
    clients = role_clients(world["users"])
    failures = []
    # when each role opens every page
    for name, pattern in page_routes():
        url = page_url(name, pattern, world["ids"])
        for role, client in clients.items():
            response = client.get(url)
            # then it answers as that role should, and never fails
            allowed = expected(name, role)
            if post_only(response):
                continue
            if response.status_code not in allowed:
                failures.append(f"{role:9} GET {url} ({name}) → {response.status_code}, expected {sorted(allowed)}")
            elif (
                response.status_code == 302
                and name not in PUBLIC
                and role == "anonymous"
                and name in OWN_PAGES
                and not response["Location"].startswith("/login/")
            ):
                failures.append(f"{role:9} GET {url} ({name}) → 302 to {response['Location']}, not to log in")
    assert not failures, "\n".join(failures)


@pytest.mark.django_db
def test_pages_name_the_hashed_static_files_of_the_manifest(production_static, production, client):
    # given the manifest collectstatic wrote
    root, _ = production_static
    manifest = json.loads((root / "staticfiles.json").read_text())["paths"]
    # when the home page renders / then it names the hashed stylesheet and scripts, not the plain names
    html = client.get("/").content.decode()
    named = [
        original
        for original, hashed in manifest.items()
        if original.endswith((".css", ".js")) and f"/static/{hashed}" in html
    ]
    assert named, "the home page names no hashed static file"
    assert all(f"/static/{original}" not in html for original in named)


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/no-such-page/", "/bookings/999999/", "/vouchers/programs/999999/"])
def test_a_404_answers_the_sites_404_page_not_the_debug_page(production, client, url):
    # given a logged-in startup member (object pages need one)
    from tests import factories

    client.force_login(factories.member_of(factories.StartupFactory()))
    # when a page that does not exist is asked for
    response = client.get(url)
    # then the site's own 404 page (templates/404.html in the site's layout), not Django's technical page
    html = response.content.decode()
    assert response.status_code == 404
    assert "404.html" in [template.name for template in response.templates]
    assert 'class="error-page"' in html and "DEBUG = True" not in html and "Using the URLconf" not in html

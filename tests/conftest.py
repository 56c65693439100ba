"""Fixtures shared by the whole suite: API clients logged in as each kind of organization member, and the one
headless Chromium every browser test drives (tests/e2e and the auditor's journey in tests/oversight)."""

import os
import shutil

import pytest
from hypothesis import HealthCheck, settings
from rest_framework.test import APIClient

from tests import factories

# Property tests share two cores with race tests and browsers: a slow draw is the machine, not the property, and
# a per-example deadline would fail for the same reason. Every example still runs and every assertion holds.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")

CHROMIUM = os.environ.get("GPUX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


# One for the whole session: Playwright's sync API runs one event loop per thread, so two browsers started by two
# fixtures would collide whichever test module comes first.
@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: `make test` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def api():
    return APIClient()


def _client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    client.user = user
    return client


@pytest.fixture
def startup(db):
    return factories.StartupFactory()


@pytest.fixture
def provider(db):
    return factories.ProviderFactory()


@pytest.fixture
def issuer(db):
    return factories.IssuerFactory()


@pytest.fixture
def platform_org(db):
    return factories.PlatformFactory()


@pytest.fixture
def startup_client(startup):
    return _client_for(factories.member_of(startup))


@pytest.fixture
def provider_client(provider):
    return _client_for(factories.member_of(provider))


@pytest.fixture
def issuer_client(issuer):
    return _client_for(factories.member_of(issuer))


@pytest.fixture
def staff_client(platform_org):
    return _client_for(factories.member_of(platform_org))


@pytest.fixture
def auditor_client(platform_org):
    return _client_for(factories.member_of(platform_org, role="auditor"))


@pytest.fixture
def client_for():
    """``client_for(user)`` → an APIClient authenticated as ``user``."""
    return _client_for

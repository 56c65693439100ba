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


def _verify_second_factor(client, user) -> None:
    """Mark ``client``'s session as having given the second factor, as django-otp's ``login`` does after a right
    code (a confirmed TOTP device is created for a user who has none)."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts import two_factor

    if two_factor.needs_code(user):
        device = two_factor.confirmed_device(user) or TOTPDevice.objects.create(user=user, name="test", confirmed=True)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()


@pytest.fixture(autouse=True)
def _test_client_logins_include_the_second_factor(monkeypatch):
    """The test client's shortcuts ``Client.force_login`` (no password) and ``Client.login`` (the password, not the
    login page) give the second factor too, for a user who needs one (platform staff, issuers, auditors:
    ``accounts.two_factor``): tests of other pages start signed in. The sign-in steps themselves are tested through
    the login page and the token endpoint (tests/accounts/test_two_factor.py); browser tests type codes."""
    from django.contrib.auth import get_user_model
    from django.test.client import Client

    original_force_login, original_login = Client.force_login, Client.login

    def force_login(self, user, backend=None):
        original_force_login(self, user, backend)
        _verify_second_factor(self, user)

    def login(self, **credentials):
        done = original_login(self, **credentials)
        if done:
            _verify_second_factor(self, get_user_model().objects.get(pk=self.session["_auth_user_id"]))
        return done

    monkeypatch.setattr(Client, "force_login", force_login)
    monkeypatch.setattr(Client, "login", login)


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

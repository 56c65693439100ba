"""Browser tests: headless Chromium from Debian's packages, driven by Playwright, against pytest-django's live server.

Screenshots go to ``test-artifacts/screenshots/`` (the best ones are copied to ``docs/screenshots/`` for the README).
"""

import base64
import os
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def screenshot(page):
    """``screenshot(name)`` saves a full-page PNG of the current page and returns its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def page_errors(page) -> list[str]:
    """What went wrong in the page, collected as it happens: console errors (CSP violations among them), failed
    requests (the browser's own favicon probe aside) and uncaught script errors."""
    errors: list[str] = []
    page.on(
        "console",
        lambda msg: errors.append(msg.text)
        if msg.type == "error" and not msg.text.startswith("Failed to load resource")
        else None,
    )
    page.on(
        "response",
        lambda r: errors.append(f"{r.status} {r.url}")
        if r.status >= 400 and not r.url.endswith("/favicon.ico")
        else None,
    )
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def log_in(page, username: str, password: str) -> None:
    """Log in through the page; a user who needs a second factor (platform staff, issuers, auditors) then types the
    code an authenticator holding their key shows (``tests.helpers.totp_code``): their demo device's key, or, at
    first sign-in, the key the set-up page shows."""
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.locator("main").get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: urlparse(url).path != "/login/")
    give_second_factor(page, username)
    page.wait_for_url("**/")


def give_second_factor(page, username: str) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from tests.helpers import totp_code

    path = urlparse(page.url).path
    if path == "/login/two-factor/":
        code = totp_code(TOTPDevice.objects.get(user__username=username, confirmed=True))
    elif path == "/account/two-factor/":
        secret = page.locator("#totp-secret").inner_text().replace(" ", "")
        code = totp_code(key_hex=base64.b32decode(secret + "=" * (-len(secret) % 8)).hex())
    else:
        return
    page.get_by_label("Code from your authenticator app").fill(code)
    page.locator("main").get_by_role("button", name=re.compile("Verify|Turn on")).click()
    page.wait_for_url(lambda url: "two-factor" not in urlparse(url).path)


def confirm_after_one_dismissal(page, button, posting_key: str) -> None:
    """Click ``button`` and dismiss its confirmation dialog: the ledger posting ``posting_key`` must not exist then;
    click again and accept."""
    from ledger.models import JournalTransaction

    page.once("dialog", lambda dialog: dialog.dismiss())
    button.click()
    page.wait_for_timeout(300)
    assert not JournalTransaction.objects.filter(idempotency_key=posting_key).exists()
    page.once("dialog", lambda dialog: dialog.accept())
    button.click()

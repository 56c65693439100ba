"""Browser tests: headless Chromium from Debian's packages, driven by Playwright, against pytest-django's live server.

Screenshots go to ``test-artifacts/screenshots/`` (the best ones are copied to ``docs/screenshots/`` for the README).
"""

import os
from pathlib import Path

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
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.locator("main").get_by_role("button", name="Log in").click()
    page.wait_for_url("**/")


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

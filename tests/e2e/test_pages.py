"""Pages render under the Content-Security-Policy: charts draw from static scripts, the API docs load from our own
static files, and the browser reports no policy violation."""

import pytest
from django.core.management import call_command

from accounts.demo import DEMO_PASSWORD
from tests.e2e.conftest import log_in
from vouchers.models import VoucherProgram

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def csp_violations(page):
    """Console messages in which the browser refused something under the CSP."""
    seen: list[str] = []
    page.on("console", lambda msg: seen.append(msg.text) if "Content Security Policy" in msg.text else None)
    return seen


def test_charts_and_api_docs_work_under_the_csp(live_server, page, screenshot, csp_violations):
    call_command("seed_demo")
    # the issuer's budget burn-down chart
    log_in(page, "ivy", DEMO_PASSWORD)
    program = VoucherProgram.objects.get(issuer__memberships__user__username="ivy")
    page.goto(f"/vouchers/programs/{program.pk}/")
    page.locator("canvas#burndown[data-drawn]").wait_for()
    screenshot("issuer-program-burndown")
    # the market depth chart for a chip with asks
    page.goto("/market/?accelerator=ascend-910b")
    page.locator("canvas#depth[data-drawn]").wait_for()
    screenshot("market-depth")
    # the API docs (Swagger UI from the sidecar's static files)
    page.goto("/api/v1/docs/")
    page.locator(".swagger-ui .information-container").wait_for()
    screenshot("api-docs")
    assert csp_violations == []

"""The issuer pays a statement in a real browser: statements nav link, detail, confirmation dialog, htmx swap,
CSV download, no CSP violation or script error."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from ledger.models import JournalTransaction
from tests import factories
from tests.e2e.conftest import confirm_after_one_dismissal, log_in
from tests.settlement.statement_factories import issued_statement

pytestmark = pytest.mark.django_db(transaction=True)


def test_issuer_pays_a_statement_after_confirming(live_server, page, page_errors, screenshot):
    # given an issued statement of two claims and a member of its issuer
    statement = issued_statement(count=2)
    user = factories.member_of(statement.program.issuer)
    user.set_password("pw-statements-1")
    user.save()
    log_in(page, user.username, "pw-statements-1")
    # when she opens her statement from the navigation
    page.get_by_role("link", name="Statements").first.click()
    page.get_by_role("link", name=f"#{statement.pk}").click()
    expect(page.locator("#statement-total")).to_contain_text("¥4,000.00")
    screenshot("statement-detail")
    # and downloads its lines
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download lines (CSV)").click()
    lines = Path(download_info.value.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("statement,program,period_start") and len(lines) == 3
    # when she dismisses the confirmation first, then accepts it
    confirm_after_one_dismissal(page, page.get_by_role("button", name="Mark paid"), f"statement:{statement.pk}:paid")
    # then the statement is swapped in place as paid, posted once, with no script error or CSP violation
    expect(page.locator("#statement-status")).to_have_text("Paid")
    expect(page.get_by_role("button", name="Mark paid")).to_have_count(0)
    screenshot("statement-paid")
    assert JournalTransaction.objects.filter(idempotency_key=f"statement:{statement.pk}:paid").count() == 1
    assert page_errors == []

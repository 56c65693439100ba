"""Platform staff record a startup's bank transfer in a real browser: deposits nav link, form errors in place, the
recorded transfer listed, no CSP violation or script error."""

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from ledger.deposits import deposit_record
from ledger.selectors import wallet_summary
from tests import factories
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_staff_record_a_bank_transfer(live_server, page, page_errors, screenshot):
    # given a startup whose transfer CMB-1 of 100.00 is already recorded, and a platform staff member
    startup = factories.StartupFactory(name="Deposit Labs")
    deposit_record(organization_id=startup.pk, amount=Decimal("100.00"), reference="CMB-1")
    user = factories.member_of(factories.PlatformFactory())
    user.set_password("pw-deposits-1")
    user.save()
    log_in(page, user.username, "pw-deposits-1")
    page.get_by_role("link", name="Deposits").first.click()
    form = page.locator("#new-deposit")
    form.get_by_label("Startup").select_option(label=startup.name)
    form.get_by_label("Amount").fill("250000.00")
    # when CMB-1 is recorded again with another amount, the form says so and nothing is credited
    form.get_by_label("Bank reference").fill("CMB-1")
    form.get_by_role("button", name="Record deposit").click()
    expect(page.locator("#new-deposit")).to_contain_text("Already recorded.")
    assert wallet_summary(startup.pk)["balance"] == Decimal("100.00")
    # when the right reference is entered (the form kept the other fields)
    page.locator("#new-deposit").get_by_label("Bank reference").fill("CMB-20261129-7")
    page.locator("#new-deposit").get_by_role("button", name="Record deposit").click()
    # then the transfer is listed and the startup's wallet is credited
    expect(page.locator("main")).to_contain_text("Recorded 250000.00")
    expect(page.locator("#deposits")).to_contain_text("CMB-20261129-7")
    expect(page.locator("#deposits")).to_contain_text("Deposit Labs")
    screenshot("deposits-staff")
    assert wallet_summary(startup.pk)["balance"] == Decimal("250100.00")
    # no script error or CSP violation; the refused form's 400 is the only failed request
    assert [error for error in page_errors if not error.startswith("400 ")] == []

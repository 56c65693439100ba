"""Platform staff pay a provider's payout in a real browser: payouts nav link, status filter, confirmation dialog,
htmx row swap, no CSP violation or script error."""

import pytest
from playwright.sync_api import expect

from ledger.models import JournalTransaction
from settlement import payout_services, services
from tests import factories
from tests.e2e.conftest import confirm_after_one_dismissal, log_in
from tests.settlement.factories import completed_booking

pytestmark = pytest.mark.django_db(transaction=True)


def settled_payouts(count: int) -> list:
    """One pending payout for each of ``count`` providers (a settled booking each)."""
    for i in range(count):
        provider = factories.ProviderFactory(name=f"Payout provider {i + 1}")
        listing = factories.ListingFactory(cluster__data_center__provider=provider)
        booking = completed_booking(buyer=factories.StartupFactory(), listing=listing, subtotal=f"{(i + 1) * 1000}.00")
        services.booking_settle(booking_id=booking.pk)
    return payout_services.payout_batch_create()


def test_staff_mark_a_payout_paid_after_confirming(live_server, page, page_errors, screenshot):
    # given pending payouts of two providers and a platform staff member
    first, second = sorted(settled_payouts(2), key=lambda payout: payout.pk)
    user = factories.member_of(factories.PlatformFactory())
    user.set_password("pw-payouts-1")
    user.save()
    log_in(page, user.username, "pw-payouts-1")
    # when he opens the payouts from the navigation and shows the pending ones
    page.get_by_role("link", name="Payouts").first.click()
    page.get_by_label("Show").select_option("pending")
    expect(page.locator(f"#payout-{first.pk}")).to_contain_text(first.provider.name)
    expect(page.locator(f"#payout-{second.pk}")).to_contain_text(second.provider.name)
    # and marks the first paid, dismissing the confirmation once
    row = page.locator(f"#payout-{first.pk}")
    confirm_after_one_dismissal(page, row.get_by_role("button", name="Mark paid"), f"payout:{first.pk}:paid")
    # then its row is swapped in place as paid, posted once; the other payout still waits
    expect(row).to_contain_text("Paid")
    expect(row.get_by_role("button", name="Mark paid")).to_have_count(0)
    expect(page.locator(f"#payout-{second.pk}").get_by_role("button", name="Mark paid")).to_have_count(1)
    screenshot("payouts-staff")
    assert JournalTransaction.objects.filter(idempotency_key=f"payout:{first.pk}:paid").count() == 1
    assert page_errors == []

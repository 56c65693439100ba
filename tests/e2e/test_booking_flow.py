"""The booking flow in a browser, on a phone in Chinese: the quote shows the free nodes, "Book and confirm" opens a
confirmation step with the voucher and cash parts (nothing is booked before "Confirm and pay"), the booking links to
its money page, and cancelling asks first. Screenshots: test-artifacts/screenshots/zh-booking-*.png."""

import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from listings.models import Listing
from orders.models import Booking
from tests.e2e.conftest import SCREENSHOTS, confirm_after_one_dismissal
from tests.e2e.test_layout import session_cookie
from tests.marketplace.test_i18n import compile_catalog

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_phone_books_through_the_confirmation_step_and_cancels_after_a_question(live_server, browser):
    # given alice on a phone with a Chinese browser, on the booking form of an Ascend listing
    compile_catalog()
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    listing = Listing.objects.filter(status="active", cluster__accelerator__slug="ascend-910b").order_by("pk").first()
    context = browser.new_context(
        base_url=live_server.url, locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 390, "height": 844}
    )
    context.add_cookies([session_cookie("alice", live_server.url)])
    page = context.new_page()
    page.set_default_timeout(15_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        page.goto(f"/listings/{listing.pk}/book/")
        # then her voucher, which pays for this listing, is already ticked
        expect(page.locator("input[name=vouchers]").first).to_be_checked()
        # when she asks for more nodes than the cluster has free, then the quote says how many are
        page.get_by_label("节点数").fill(str(listing.cluster.node_count + 1))
        page.get_by_role("button", name="获取报价").click()
        expect(page.locator("#quote")).to_contain_text("该集群只有")
        # when she asks for two nodes, then the quote shows the free nodes and her wallet
        page.get_by_label("节点数").fill("2")
        page.get_by_role("button", name="获取报价").click()
        expect(page.locator("#quote-free-nodes")).to_contain_text(f"/ {listing.cluster.node_count}")
        expect(page.locator("#quote")).to_contain_text("您的钱包")
        # when she presses "Book and confirm", then a confirmation step shows the split and nothing is booked yet
        before = Booking.objects.count()
        page.get_by_role("button", name="预订并确认").click()
        expect(page.get_by_role("heading", name="核对并确认预订")).to_be_visible()
        expect(page.locator("#confirm-voucher-amount")).not_to_have_text("¥0.00")
        page.screenshot(path=str(SCREENSHOTS / "zh-booking-confirm-phone.png"), full_page=True)
        assert Booking.objects.count() == before
        # when she confirms and pays, then the booking is made and its page links to its money page
        page.get_by_role("button", name=re.compile("^确认并支付")).click()
        page.wait_for_url(re.compile(r"/bookings/\d+/$"))
        booking = Booking.objects.latest("pk")
        assert booking.status == "confirmed" and booking.voucher_amount > 0 and booking.nodes == 2
        expect(page.locator("#booking-money-link")).to_have_attribute("href", f"/settlement/bookings/{booking.pk}/")
        # when she cancels, then a question comes first: dismissed, nothing moves; accepted, the hold is released
        cancel = page.get_by_role("button", name=re.compile("^取消"))
        confirm_after_one_dismissal(page, cancel, f"booking:{booking.pk}:release")
        page.wait_for_load_state()
        expect(page.locator("article.message")).to_contain_text(f"预订 {booking.pk}")
        booking.refresh_from_db()
        assert booking.status == "cancelled"
        # and the page never scrolled sideways
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        context.close()

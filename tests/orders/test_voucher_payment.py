"""Bookings paid partly with vouchers: the split, the holds, and the release on cancel."""

from decimal import Decimal

import pytest

from ledger.models import LedgerAccount
from ledger.selectors import ledger_breaches, wallet_summary
from ledger.services import InsufficientFunds
from orders import services
from tests.factories import AcceleratorFactory, ClusterFactory, ListingFactory, StartupFactory
from tests.orders.factories import booking_body, booking_kwargs, fund
from tests.vouchers.factories import funded_program, issued_voucher
from vouchers.models import Redemption

pytestmark = pytest.mark.django_db


def voucher_balance(voucher, kind="voucher"):
    return LedgerAccount.objects.get(kind=kind, owner_id=voucher.pk).balance


@pytest.fixture
def domestic_listing():
    chip = AcceleratorFactory(slug="ascend-910b-test", vendor="Huawei", domestic=True)
    # 8 GPUs × 3 h × 10.00 = 240.00 per node
    return ListingFactory(cluster=ClusterFactory(accelerator=chip), price_per_gpu_hour=Decimal("10"))


def test_quote_shows_the_voucher_part_and_the_rule_that_bound_it(startup_client, domestic_listing):
    # given a 30 % domestic-tier voucher of this startup
    startup = startup_client.user.memberships.get().organization
    voucher = issued_voucher(holder=startup, face_value="100000.00")
    # when quoting 2 nodes for 3 hours
    response = startup_client.post(
        "/api/v1/quotes/", booking_body(domestic_listing, nodes=2, vouchers=[voucher.pk]), format="json"
    )
    # then 30 % of 480.00 is paid by the voucher, the rest in cash, and the ratio is named as the binding rule
    assert response.status_code == 200, response.data
    assert (response.data["subtotal"], response.data["voucher_amount"], response.data["cash_amount"]) == (
        "480.00",
        "144.00",
        "336.00",
    )
    assert [(p["voucher"], p["amount"], p["rule"]) for p in response.data["voucher_parts"]] == [
        (voucher.pk, "144.00", "coverage_ratio")
    ]


def test_booking_holds_both_parts_and_cancel_releases_both_in_full(domestic_listing):
    # given
    startup = StartupFactory()
    fund(startup, "1000.00")
    voucher = issued_voucher(holder=startup, face_value="100000.00")
    # when booking with the voucher
    booking = services.booking_create(buyer=startup, **booking_kwargs(domestic_listing, nodes=2, vouchers=[voucher.pk]))
    # then the voucher part is held on the voucher and the cash part on the wallet
    assert (booking.voucher_amount, booking.cash_amount) == (Decimal("144.00"), Decimal("336.00"))
    assert voucher_balance(voucher, "voucher_hold") == Decimal("144.00")
    assert wallet_summary(startup.pk) == {"balance": Decimal("664.00"), "held": Decimal("336.00")}
    # when cancelled before the start
    services.booking_cancel(booking=booking)
    # then both holds are back where they came from
    assert voucher_balance(voucher) == Decimal("100000.00")
    assert voucher_balance(voucher, "voucher_hold") == Decimal("0.00")
    assert wallet_summary(startup.pk) == {"balance": Decimal("1000.00"), "held": Decimal("0.00")}
    assert Redemption.objects.get(booking=booking).status == Redemption.Status.RELEASED
    assert ledger_breaches() == []


def test_short_wallet_rolls_back_the_voucher_hold_too(domestic_listing):
    # given a voucher but only 10.00 of cash for a 336.00 cash part
    startup = StartupFactory()
    fund(startup, "10.00")
    voucher = issued_voucher(holder=startup, program=funded_program(), face_value="100000.00")
    # when / then the booking is refused and nothing stays held
    with pytest.raises(InsufficientFunds):
        services.booking_create(buyer=startup, **booking_kwargs(domestic_listing, nodes=2, vouchers=[voucher.pk]))
    assert voucher_balance(voucher) == Decimal("100000.00")
    assert not Redemption.objects.exists()
    assert ledger_breaches() == []

"""Several vouchers in one quote over HTTP: the split pays the most the rules allow, whatever the vouchers' order or
expiry (issue 17, defects 1 and 2)."""

from decimal import Decimal

import pytest

from tests.factories import ListingFactory
from tests.orders.factories import booking_body
from tests.vouchers.factories import funded_program, issued_voucher

pytestmark = pytest.mark.django_db


@pytest.fixture
def listing_800():
    # 1 node × 8 GPUs × 4 h × 25.00 = 800.00, a non-domestic chip (the programs' "other" ratio)
    return ListingFactory(price_per_gpu_hour=Decimal("25"))


def quote(client, listing, vouchers):
    response = client.post("/api/v1/quotes/", booking_body(listing, hours=4, vouchers=vouchers), format="json")
    assert response.status_code == 200, response.data
    assert response.data["subtotal"] == "800.00"
    return response.data


def startup_of(client):
    return client.user.memberships.get().organization


@pytest.mark.parametrize(("p1_days", "p2_days"), [(30, 60), (60, 30)])
def test_a_stacking_limit_bounds_the_booking_whichever_voucher_expires_first(
    startup_client, listing_800, p1_days, p2_days
):
    # given P1 pays 20 % with no stacking limit; P2 pays 30 % and caps all vouchers together at 30 %
    startup = startup_of(startup_client)
    p1 = funded_program(other_ratio=Decimal("0.20"), validity_days=p1_days)
    p2 = funded_program(other_ratio=Decimal("0.30"), max_stacked_share=Decimal("0.30"), validity_days=p2_days)
    v1, v2 = issued_voucher(holder=startup, program=p1), issued_voucher(holder=startup, program=p2)
    # when quoting with both, named in either order
    first, second = (
        quote(startup_client, listing_800, [v1.pk, v2.pk]),
        quote(startup_client, listing_800, [v2.pk, v1.pk]),
    )
    # then 30 % of 800 in total, never 50 %, and the same split both times
    assert first["voucher_amount"] == second["voucher_amount"] == "240.00"
    assert first["voucher_parts"] == second["voucher_parts"]
    assert first["cash_amount"] == "560.00"


def test_two_vouchers_of_one_program_pay_its_ratio_once(startup_client, listing_800):
    # given two vouchers of one 30 % program
    startup = startup_of(startup_client)
    program = funded_program(other_ratio=Decimal("0.30"))
    vouchers = [issued_voucher(holder=startup, program=program).pk for _ in range(2)]
    # when
    data = quote(startup_client, listing_800, vouchers)
    # then 240 (30 %), not 480 (60 %); the second voucher says why it pays nothing
    assert data["voucher_amount"] == "240.00"
    assert [(p["amount"], p["rule"]) for p in data["voucher_parts"]] == [
        ("240.00", "coverage_ratio"),
        ("0.00", "coverage_ratio"),
    ]
    assert data["voucher_parts"][1]["explanation"] == "the program pays at most its coverage ratio of the booking"


def test_two_vouchers_of_one_program_share_its_per_booking_cap(startup_client, listing_800):
    # given two vouchers of one 30 % program capped at 200 per booking
    startup = startup_of(startup_client)
    program = funded_program(other_ratio=Decimal("0.30"), per_booking_cap=Decimal("200.00"))
    vouchers = [issued_voucher(holder=startup, program=program).pk for _ in range(2)]
    # when
    data = quote(startup_client, listing_800, vouchers)
    # then 200 together, not 400
    assert data["voucher_amount"] == "200.00"
    assert sorted(p["amount"] for p in data["voucher_parts"]) == ["0.00", "200.00"]


def test_a_booking_holds_what_the_quote_showed(startup_client, listing_800):
    # given the two-program case, and cash to pay the rest
    from tests.orders.factories import fund

    startup = startup_of(startup_client)
    fund(startup, "1000.00")
    p1 = funded_program(other_ratio=Decimal("0.20"), validity_days=30)
    p2 = funded_program(other_ratio=Decimal("0.30"), max_stacked_share=Decimal("0.30"), validity_days=60)
    vouchers = [issued_voucher(holder=startup, program=p).pk for p in (p1, p2)]
    # when booking
    response = startup_client.post(
        "/api/v1/bookings/", booking_body(listing_800, hours=4, vouchers=vouchers), format="json"
    )
    # then the booking holds 240 in vouchers and 560 in cash
    assert response.status_code == 201, response.data
    assert (response.data["voucher_amount"], response.data["cash_amount"]) == ("240.00", "560.00")


def test_too_many_vouchers_is_a_field_error(startup_client, listing_800):
    response = startup_client.post(
        "/api/v1/quotes/", booking_body(listing_800, hours=4, vouchers=list(range(1, 10))), format="json"
    )
    assert response.status_code == 400
    assert "vouchers" in response.data["errors"]

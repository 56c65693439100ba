import datetime as dt
from decimal import Decimal

import pytest

from ledger.selectors import wallet_summary
from listings.models import Listing
from orders.models import Booking, NodeReservation
from tests.factories import (
    ClusterFactory,
    DataCenterFactory,
    ListingFactory,
    MembershipFactory,
    StartupFactory,
    member_of,
    next_hour,
)
from tests.helpers import iso
from tests.orders.factories import booking_body, fund

pytestmark = pytest.mark.django_db

QUOTES, BOOKINGS = "/api/v1/quotes/", "/api/v1/bookings/"


def _body(listing, *, nodes=2, start=2, hours=3, **extra) -> dict:
    return {
        "listing": listing.pk,
        "nodes": nodes,
        "start": iso(next_hour(start)),
        "end": iso(next_hour(start + hours)),
        **extra,
    }


@pytest.fixture
def listing():
    return ListingFactory()


@pytest.fixture
def funded(startup):
    fund(startup, "10000.00")
    return startup


def _nothing_written():
    return not Booking.objects.exists() and not NodeReservation.objects.exists()


def test_quote_answers_amounts_and_writes_nothing(startup_client, listing):
    # when
    response = startup_client.post(QUOTES, _body(listing), format="json")
    # then
    assert response.status_code == 200, response.data
    assert response.data["gpu_hours"] == 48
    assert response.data["subtotal"] == "480.00"
    assert response.data["voucher_amount"] == "0.00"
    assert response.data["cash_amount"] == "480.00"
    assert response.data["voucher_parts"] == []
    assert _nothing_written()


def test_booking_201_shape_and_hold(startup_client, funded, listing):
    # when
    response = startup_client.post(BOOKINGS, _body(listing), format="json")
    # then
    assert response.status_code == 201, response.data
    data = response.data
    assert {
        "id",
        "status",
        "listing",
        "nodes",
        "start",
        "end",
        "gpu_hours",
        "price_per_gpu_hour",
        "subtotal",
        "voucher_amount",
        "cash_amount",
        "hold_expires_at",
        "reserved_nodes",
    } <= set(data)
    assert (data["status"], data["listing"], data["nodes"], data["reserved_nodes"]) == ("held", listing.pk, 2, [1, 2])
    assert (data["subtotal"], data["cash_amount"], data["price_per_gpu_hour"]) == ("480.00", "480.00", "10.0000")
    assert data["hold_expires_at"] is not None
    assert wallet_summary(funded.pk) == {"balance": Decimal("9520.00"), "held": Decimal("480.00")}


def test_booking_with_confirm_true_is_confirmed(startup_client, funded, listing):
    response = startup_client.post(BOOKINGS, _body(listing, confirm=True), format="json")
    assert response.status_code == 201
    assert response.data["status"] == "confirmed"
    assert response.data["hold_expires_at"] is None


def test_booking_409_when_nodes_are_short(startup_client, funded, listing):
    # given 3 of 4 nodes booked
    assert startup_client.post(BOOKINGS, _body(listing, nodes=3), format="json").status_code == 201
    # when
    response = startup_client.post(BOOKINGS, _body(listing, nodes=2, start=3), format="json")
    # then
    assert response.status_code == 409
    assert response.data["detail"].startswith("Not enough free nodes")
    assert response.data["errors"] == {"nodes": ["Not enough free nodes in this window."]}
    assert Booking.objects.count() == 1


def test_booking_409_when_funds_are_short(startup_client, startup, listing):
    # given 100.00 for a 480.00 booking
    fund(startup, "100.00")
    # when
    response = startup_client.post(BOOKINGS, _body(listing), format="json")
    # then
    assert response.status_code == 409
    assert "Insufficient funds" in response.data["detail"]
    assert _nothing_written()
    assert wallet_summary(startup.pk) == {"balance": Decimal("100.00"), "held": Decimal("0.00")}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"nodes": 0}, "nodes"),
        ({"nodes": 5}, "nodes"),
        ({"nodes": "two"}, "nodes"),
        ({"start": iso(next_hour(-2))}, "start"),
        ({"start": iso(next_hour(2) + dt.timedelta(minutes=15))}, "start"),
        ({"start": next_hour(2).replace(tzinfo=None).isoformat()}, "start"),
        ({"end": next_hour(5).replace(tzinfo=None).isoformat()}, "end"),
        ({"end": iso(next_hour(24 * 45))}, "end"),
        ({"end": iso(next_hour(1))}, "end"),
        ({"start": "tomorrow"}, "start"),
        ({"listing": 987654}, "listing"),
        ({"listing": "x"}, "listing"),
        ({"vouchers": [1]}, "vouchers"),
    ],
)
@pytest.mark.parametrize("url", [QUOTES, BOOKINGS])
def test_bad_input_is_400_with_field_errors_and_nothing_written(startup_client, funded, listing, url, change, field):
    # when
    response = startup_client.post(url, _body(listing) | change, format="json")
    # then
    assert response.status_code == 400, response.data
    assert field in response.data["errors"], response.data
    assert set(response.data) == {"detail", "errors"}
    assert _nothing_written()
    assert wallet_summary(funded.pk)["held"] == Decimal("0.00")


def test_someone_elses_voucher_is_400_naming_the_rule(startup_client, funded, listing):
    from tests.vouchers.factories import issued_voucher

    # given a voucher held by another startup
    other = issued_voucher(holder=StartupFactory())
    # when this startup tries to pay with it
    response = startup_client.post(BOOKINGS, _body(listing, vouchers=[other.pk]), format="json")
    # then 400 naming the organization rule, and nothing is written
    assert response.status_code == 400
    assert response.data["errors"] == {
        "vouchers": [f"Voucher {other.pk}: not one of your vouchers (rule: organization)."]
    }
    assert _nothing_written()


def test_someone_elses_unpublished_listing_is_400_like_an_unknown_one(startup_client, funded):
    draft = ListingFactory(status=Listing.Status.DRAFT)
    response = startup_client.post(BOOKINGS, _body(draft), format="json")
    assert response.status_code == 400
    assert response.data["errors"] == {"listing": ["No open listing with this id."]}


def test_only_startup_members_book(provider_client, listing):
    response = provider_client.post(BOOKINGS, _body(listing), format="json")
    assert response.status_code == 403
    assert _nothing_written()


def test_x_organization_picks_among_several_startups(startup_client, funded, listing):
    # given the user belongs to a second, funded startup
    other = StartupFactory()
    fund(other, "1000.00")
    MembershipFactory(user=startup_client.user, organization=other, role="member")
    # when without a header / with one
    ambiguous = startup_client.post(BOOKINGS, _body(listing), format="json")
    chosen = startup_client.post(BOOKINGS, _body(listing), format="json", HTTP_X_ORGANIZATION=str(other.pk))
    # then
    assert ambiguous.status_code == 400
    assert "organization" in ambiguous.data["errors"]
    assert chosen.status_code == 201
    assert chosen.data["buyer"] == other.pk


def test_list_is_paginated_scoped_and_filtered(startup_client, funded, listing, client_for):
    # given two bookings of mine (one cancelled) and one of another startup
    mine = startup_client.post(BOOKINGS, _body(listing, nodes=1), format="json").data
    startup_client.post(BOOKINGS, _body(listing, nodes=1, start=10), format="json")
    startup_client.post(f"{BOOKINGS}{mine['id']}/cancel/")
    other = StartupFactory()
    fund(other)
    client_for(member_of(other)).post(BOOKINGS, _body(listing, nodes=1), format="json")
    # when
    everything = startup_client.get(BOOKINGS)
    cancelled = startup_client.get(BOOKINGS, {"status": "cancelled"})
    # then
    assert set(everything.data) == {"count", "next", "previous", "results"}
    assert everything.data["count"] == 2
    assert [b["id"] for b in cancelled.data["results"]] == [mine["id"]]
    refused = startup_client.get(BOOKINGS, {"status": "nonsense"})
    assert refused.status_code == 400 and "status" in refused.data["errors"]


def test_detail_of_another_orgs_booking_is_404(startup_client, funded, listing, client_for):
    other = StartupFactory()
    fund(other)
    theirs = client_for(member_of(other)).post(BOOKINGS, _body(listing), format="json").data
    assert startup_client.get(f"{BOOKINGS}{theirs['id']}/").status_code == 404
    assert startup_client.post(f"{BOOKINGS}{theirs['id']}/cancel/").status_code == 404
    assert startup_client.get(f"{BOOKINGS}999999/").status_code == 404
    assert Booking.objects.get(pk=theirs["id"]).status == "held"


def test_provider_members_read_bookings_on_their_clusters_only(startup_client, funded, provider, client_for):
    # given a listing on the provider's cluster and one elsewhere
    own = ListingFactory(cluster=ClusterFactory(data_center=DataCenterFactory(provider=provider)))
    elsewhere = ListingFactory()
    on_mine = startup_client.post(BOOKINGS, _body(own), format="json").data
    not_mine = startup_client.post(BOOKINGS, _body(elsewhere), format="json").data
    provider_client = client_for(member_of(provider))
    # when / then
    assert provider_client.get(f"{BOOKINGS}{on_mine['id']}/").status_code == 200
    assert provider_client.get(f"{BOOKINGS}{not_mine['id']}/").status_code == 404
    assert [b["id"] for b in provider_client.get(BOOKINGS).data["results"]] == [on_mine["id"]]
    assert provider_client.post(f"{BOOKINGS}{on_mine['id']}/cancel/").status_code == 403


def test_confirm_then_cancel_then_confirm_again_is_409(startup_client, funded, listing):
    booking = startup_client.post(BOOKINGS, _body(listing), format="json").data
    confirmed = startup_client.post(f"{BOOKINGS}{booking['id']}/confirm/")
    cancelled = startup_client.post(f"{BOOKINGS}{booking['id']}/cancel/")
    again = startup_client.post(f"{BOOKINGS}{booking['id']}/confirm/")
    assert (confirmed.status_code, confirmed.data["status"]) == (200, "confirmed")
    assert (cancelled.status_code, cancelled.data["status"]) == (200, "cancelled")
    assert [c["to_status"] for c in cancelled.data["status_changes"]] == ["held", "confirmed", "cancelled"]
    assert again.status_code == 409
    assert set(again.data) == {"detail", "errors"}
    assert wallet_summary(funded.pk) == {"balance": Decimal("10000.00"), "held": Decimal("0.00")}


def test_idempotency_key_replays_the_first_booking(startup_client, funded, listing):
    # when the same request is sent twice with one key, then with another body
    body = _body(listing)
    first = startup_client.post(BOOKINGS, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    replay = startup_client.post(BOOKINGS, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    other = startup_client.post(BOOKINGS, body | {"nodes": 1}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    # then
    assert (first.status_code, replay.status_code, other.status_code) == (201, 201, 422)
    assert replay.data["id"] == first.data["id"]
    assert Booking.objects.count() == 1
    assert wallet_summary(funded.pk)["held"] == Decimal("480.00")


def test_booking_body_helper_makes_a_valid_request(startup_client, funded):
    response = startup_client.post(BOOKINGS, booking_body(confirm=True), format="json")
    assert response.status_code == 201, response.data
    assert response.data["status"] == "confirmed"

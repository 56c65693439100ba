"""The resale API (issue 21): resell, search, withdraw, buy; bad input answers 4xx with field errors and writes
nothing."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from ledger.models import JournalTransaction
from orders.models import Booking, NodeReservation, ResaleAsk, ResaleSale
from tests.factories import StartupFactory, member_of
from tests.helpers import iso
from tests.orders.factories import fund
from tests.orders.resale_factories import hours_after, voucher_booking

pytestmark = pytest.mark.django_db


def _rows() -> tuple:
    """What a refused request must not change."""
    return (
        ResaleAsk.objects.count(),
        ResaleSale.objects.count(),
        Booking.objects.count(),
        JournalTransaction.objects.count(),
        sorted(NodeReservation.objects.values_list("pk", "active")),
        AuditEvent.objects.count(),
    )


@pytest.fixture
def seller_booking(client_for):
    booking, _ = voucher_booking()
    booking.client = client_for(member_of(booking.buyer))
    return booking


def _resell_body(booking, *, nodes=2, from_hour=5, to_hour=10, price="12.0000") -> dict:
    return {
        "nodes": nodes,
        "start": iso(hours_after(booking.start, from_hour)),
        "end": iso(hours_after(booking.start, to_hour)),
        "price_per_gpu_hour": price,
    }


def test_resell_then_search_then_buy(seller_booking, client_for):
    # when the seller resells 2 nodes of the last 5 hours
    response = seller_booking.client.post(
        f"/api/v1/bookings/{seller_booking.pk}/resell/", _resell_body(seller_booking), format="json"
    )
    # then a 201 open ask of the booking's cluster
    assert response.status_code == 201, response.data
    ask = response.data
    assert (ask["status"], ask["nodes"], ask["nodes_left"], ask["price_per_gpu_hour"]) == ("open", 2, 2, "12.0000")
    assert ask["cluster"] == seller_booking.listing.cluster_id
    # and it shows in the resale search of its accelerator, for anyone signed in
    buyer = StartupFactory()
    fund(buyer)
    buyer_client = client_for(member_of(buyer))
    accelerator = seller_booking.listing.cluster.accelerator.slug
    found = buyer_client.get("/api/v1/resale-asks/", {"accelerator": accelerator})
    assert found.status_code == 200
    assert [row["id"] for row in found.data["results"]] == [ask["id"]]
    assert buyer_client.get(f"/api/v1/resale-asks/{ask['id']}/").status_code == 200
    # when a startup buys one node for its last 3 hours
    start = hours_after(seller_booking.start, 7)
    bought = buyer_client.post(
        f"/api/v1/resale-asks/{ask['id']}/buy/",
        {"nodes": 1, "start": iso(start), "end": iso(hours_after(start, 3))},
        format="json",
    )
    # then 24 GPU-hours × 12.00 = 288.00 paid, a confirmed booking of its own
    assert bought.status_code == 201, bought.data
    assert (bought.data["amount"], bought.data["nodes"]) == ("288.00", 1)
    assert bought.data["booking"]["status"] == "confirmed"
    assert bought.data["booking"]["buyer"] == buyer.pk
    mine = seller_booking.client.get("/api/v1/resale-asks/", {"mine": "true"})
    assert [(row["id"], row["nodes_left"]) for row in mine.data["results"]] == [(ask["id"], 1)]


def test_withdraw(seller_booking, client_for):
    ask = seller_booking.client.post(
        f"/api/v1/bookings/{seller_booking.pk}/resell/", _resell_body(seller_booking), format="json"
    ).data
    # another startup cannot withdraw it
    other = client_for(member_of(StartupFactory()))
    assert other.post(f"/api/v1/resale-asks/{ask['id']}/withdraw/").status_code == 404
    # the seller can, once
    response = seller_booking.client.post(f"/api/v1/resale-asks/{ask['id']}/withdraw/")
    assert response.status_code == 200 and response.data["status"] == "withdrawn"
    assert seller_booking.client.post(f"/api/v1/resale-asks/{ask['id']}/withdraw/").status_code == 409
    # a withdrawn ask is no longer public
    assert other.get(f"/api/v1/resale-asks/{ask['id']}/").status_code == 404


def _past(hours: int) -> str:
    moment = timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=hours)
    return iso(moment)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"nodes": 5}, "nodes"),  # more nodes than the booking holds
        ({"nodes": 0}, "nodes"),
        ({"end": "WIDER"}, "end"),  # a wider window than owned
        ({"start": "EARLIER"}, "start"),
        ({"start": "PAST", "end": "PAST_END"}, "start"),  # a past window
        ({"price_per_gpu_hour": "-1"}, "price_per_gpu_hour"),
        ({"price_per_gpu_hour": "0"}, "price_per_gpu_hour"),
        ({"price_per_gpu_hour": "1e30"}, "price_per_gpu_hour"),
        ({"price_per_gpu_hour": 1e30}, "price_per_gpu_hour"),
        ({"price_per_gpu_hour": "1.00001"}, "price_per_gpu_hour"),
        ({"price_per_gpu_hour": "2.0000"}, "price_per_gpu_hour"),  # below the voucher share (3.00 per GPU-hour)
        ({"price_per_gpu_hour": "1\x002"}, "price_per_gpu_hour"),  # NUL
        ({"start": "2030-01-01T00:00:00\x00Z"}, "start"),
        ({"nodes": 2**63}, "nodes"),
        ({"end": "HALF_HOUR"}, "end"),
        ({"end": "BEFORE_END"}, "end"),  # resold time runs to the booking's end
    ],
)
def test_bad_resell_input_answers_400_with_field_errors_and_writes_nothing(seller_booking, change, field):
    # given
    body = _resell_body(seller_booking)
    replacements = {
        "WIDER": iso(hours_after(seller_booking.end, 1)),
        "EARLIER": iso(hours_after(seller_booking.start, -1)),
        "PAST": _past(3),
        "PAST_END": _past(1),
        "HALF_HOUR": iso(hours_after(seller_booking.end, -1) + dt.timedelta(minutes=30)),
        "BEFORE_END": iso(hours_after(seller_booking.end, -1)),
    }
    body.update({k: replacements.get(v, v) if isinstance(v, str) else v for k, v in change.items()})
    before = _rows()
    # when
    response = seller_booking.client.post(f"/api/v1/bookings/{seller_booking.pk}/resell/", body, format="json")
    # then
    assert response.status_code == 400, response.data
    assert field in response.json()["errors"], response.json()
    assert _rows() == before


def test_someone_elses_booking_answers_404_and_writes_nothing(seller_booking, client_for):
    other = client_for(member_of(StartupFactory()))
    before = _rows()
    response = other.post(f"/api/v1/bookings/{seller_booking.pk}/resell/", _resell_body(seller_booking), format="json")
    assert response.status_code == 404
    assert _rows() == before


def test_reselling_more_than_is_left_after_open_asks_is_refused(seller_booking):
    # given an open ask of 3 of the 4 nodes for the last 5 hours
    first = _resell_body(seller_booking, nodes=3)
    assert (
        seller_booking.client.post(f"/api/v1/bookings/{seller_booking.pk}/resell/", first, format="json").status_code
        == 201
    )
    before = _rows()
    # when 2 more nodes are offered for an overlapping window / then 400 on nodes
    response = seller_booking.client.post(
        f"/api/v1/bookings/{seller_booking.pk}/resell/",
        _resell_body(seller_booking, nodes=2, from_hour=7),
        format="json",
    )
    assert response.status_code == 400 and "nodes" in response.json()["errors"]
    assert _rows() == before


@pytest.mark.parametrize(
    ("change", "field", "status"),
    [
        ({"nodes": 3}, "nodes", 400),  # more than the ask offers
        ({"nodes": -1}, "nodes", 400),
        ({"start": "EARLIER"}, "start", 400),  # wider than the ask
        ({"end": "LATER"}, "end", 400),
        ({"start": "PAST", "end": "PAST_END"}, "start", 400),
        ({"start": "a\x00b"}, "start", 400),
        ({"nodes": "1e30"}, "nodes", 400),
        ({"nodes": 1e30}, "nodes", 400),
        ({"end": "BEFORE_END"}, "end", 400),  # resold time runs to the ask's end
    ],
)
def test_bad_purchase_input_answers_4xx_with_field_errors_and_writes_nothing(
    seller_booking, client_for, change, field, status
):
    ask = seller_booking.client.post(
        f"/api/v1/bookings/{seller_booking.pk}/resell/", _resell_body(seller_booking), format="json"
    ).data
    buyer = StartupFactory()
    fund(buyer)
    client = client_for(member_of(buyer))
    body = {"nodes": 1, "start": ask["start"], "end": ask["end"]}
    replacements = {
        "EARLIER": iso(hours_after(seller_booking.start, 4)),
        "LATER": iso(hours_after(seller_booking.end, 1)),
        "BEFORE_END": iso(hours_after(seller_booking.end, -1)),
        "PAST": _past(3),
        "PAST_END": _past(1),
    }
    body.update({k: replacements.get(v, v) if isinstance(v, str) else v for k, v in change.items()})
    before = _rows()
    response = client.post(f"/api/v1/resale-asks/{ask['id']}/buy/", body, format="json")
    assert response.status_code == status, response.data
    assert field in response.json()["errors"], response.json()
    assert _rows() == before


def test_buying_your_own_ask_or_without_funds_is_refused(seller_booking, client_for):
    ask = seller_booking.client.post(
        f"/api/v1/bookings/{seller_booking.pk}/resell/", _resell_body(seller_booking), format="json"
    ).data
    body = {"nodes": 1, "start": ask["start"], "end": ask["end"]}
    before = _rows()
    own = seller_booking.client.post(f"/api/v1/resale-asks/{ask['id']}/buy/", body, format="json")
    assert own.status_code == 400 and "ask" in own.json()["errors"]
    poor = client_for(member_of(StartupFactory()))
    short = poor.post(f"/api/v1/resale-asks/{ask['id']}/buy/", body, format="json")
    assert short.status_code == 409, short.data
    assert _rows() == before
    assert Decimal(ask["price_per_gpu_hour"]) == Decimal("12")

"""The bids API and the order-book depth: permissions, bad input, scoping, idempotency."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ledger.selectors import wallet_summary
from orders.models import Bid
from tests.factories import (
    AcceleratorFactory,
    ClusterFactory,
    DataCenterFactory,
    ListingFactory,
    ProviderFactory,
    StartupFactory,
    member_of,
    next_hour,
)
from tests.helpers import iso
from tests.orders.factories import fund
from tests.vouchers.factories import funded_program, issued_voucher

pytestmark = pytest.mark.django_db


@pytest.fixture
def chip():
    accelerator = AcceleratorFactory(slug="api-chip")
    ListingFactory(
        cluster=ClusterFactory(accelerator=accelerator, gpus_per_node=8, node_count=2), price_per_gpu_hour=Decimal("50")
    )
    return accelerator


def body(chip, **extra):
    start = next_hour(2)
    return {
        "accelerators": [chip.slug],
        "nodes": 1,
        "duration_hours": 2,
        "earliest_start": iso(start),
        "latest_end": iso(start + dt.timedelta(hours=4)),
        "max_price_per_gpu_hour": "10.5",
        **extra,
    }


def test_startup_places_lists_reads_and_cancels_a_bid(startup, startup_client, chip):
    # given
    fund(startup, "1000.00")
    # when
    created = startup_client.post("/api/v1/bids/", body(chip), format="json")
    # then
    assert created.status_code == 201, created.json()
    bid = created.json()
    assert (bid["status"], bid["held_amount"], bid["accelerators"]) == ("open", "168.00", [chip.slug])
    assert startup_client.get("/api/v1/bids/").json()["count"] == 1
    assert startup_client.get(f"/api/v1/bids/{bid['id']}/").json()["booking"] is None
    cancelled = startup_client.post(f"/api/v1/bids/{bid['id']}/cancel/")
    assert cancelled.json()["status"] == "cancelled"
    assert startup_client.post(f"/api/v1/bids/{bid['id']}/cancel/").status_code == 409
    assert wallet_summary(startup.pk)["held"] == Decimal("0")


def test_bad_input_answers_400_with_field_errors_and_writes_nothing(startup, startup_client, chip):
    # given
    fund(startup, "1000.00")
    bad = body(chip, accelerators=["nope"], nodes=0, earliest_start="2030-01-01T10:00:00")
    # when
    response = startup_client.post("/api/v1/bids/", bad, format="json")
    # then
    assert response.status_code == 400
    assert {"nodes", "earliest_start"} <= set(response.json()["errors"])
    response = startup_client.post("/api/v1/bids/", body(chip, accelerators=["nope"], duration_hours=9), format="json")
    assert response.status_code == 400
    assert {"accelerators", "latest_end"} <= set(response.json()["errors"])
    assert not Bid.objects.exists()


def test_short_wallet_answers_409(startup, startup_client, chip):
    # given: no deposit
    # when
    response = startup_client.post("/api/v1/bids/", body(chip), format="json")
    # then
    assert response.status_code == 409
    assert not Bid.objects.exists()


def test_other_organizations_bids_answer_404_and_providers_cannot_bid(
    startup_client, provider_client, client_for, chip
):
    # given
    other = StartupFactory()
    fund(other, "1000.00")
    other_client = client_for(member_of(other))
    bid_id = other_client.post("/api/v1/bids/", body(chip), format="json").json()["id"]
    # when / then
    assert startup_client.get(f"/api/v1/bids/{bid_id}/").status_code == 404
    assert startup_client.post(f"/api/v1/bids/{bid_id}/cancel/").status_code == 404
    assert startup_client.get("/api/v1/bids/").json()["count"] == 0
    assert provider_client.post("/api/v1/bids/", body(chip), format="json").status_code == 403
    assert Bid.objects.get(pk=bid_id).status == Bid.Status.OPEN


def test_idempotency_key_replays_the_first_bid(startup, startup_client, chip):
    # given
    fund(startup, "1000.00")
    # when
    first = startup_client.post("/api/v1/bids/", body(chip), format="json", HTTP_IDEMPOTENCY_KEY="bid-1")
    again = startup_client.post("/api/v1/bids/", body(chip), format="json", HTTP_IDEMPOTENCY_KEY="bid-1")
    # then
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert Bid.objects.count() == 1


def test_depth_shows_ask_and_bid_levels(startup, startup_client, chip):
    # given
    fund(startup, "1000.00")
    startup_client.post("/api/v1/bids/", body(chip), format="json")
    # when
    response = startup_client.get("/api/v1/market/depth/", {"accelerator": chip.slug})
    # then
    assert response.status_code == 200
    assert response.json() == {
        "accelerator": chip.slug,
        "asks": [{"price": "50.0000", "gpus": 16}],
        "bids": [{"price": "10.5000", "gpus": 8}],
    }
    assert startup_client.get("/api/v1/market/depth/", {"accelerator": "nope"}).status_code == 400


# --- vouchers: matching by what the buyer pays (issue 17, defect 3) ---------------------------------------------


def city_listing(chip, city: str, price: str):
    data_center = DataCenterFactory(provider=ProviderFactory(city=city), city=city)
    return ListingFactory(
        cluster=ClusterFactory(data_center=data_center, accelerator=chip, gpus_per_node=8, node_count=1),
        price_per_gpu_hour=Decimal(price),
    )


def test_a_bid_with_a_shanghai_voucher_fills_on_shanghai_at_the_net_price(
    startup, startup_client, django_capture_on_commit_callbacks
):
    # given: Hangzhou at 8, Shanghai at 10; a 50 % voucher that only pays for Shanghai data centres
    chip = AcceleratorFactory(slug="voucher-chip")
    hangzhou = city_listing(chip, "Hangzhou", "8")
    shanghai = city_listing(chip, "Shanghai", "10")
    program = funded_program(
        city="Shanghai", city_data_centers_only=True, domestic_ratio=Decimal("0.50"), other_ratio=Decimal("0.50")
    )
    voucher = issued_voucher(holder=startup, program=program)
    fund(startup, "1000.00")
    # when: a bid of at most 12 per GPU-hour with that voucher (1 node × 2 h × 8 GPUs)
    with django_capture_on_commit_callbacks(execute=True):
        created = startup_client.post(
            "/api/v1/bids/", body(chip, max_price_per_gpu_hour="12", vouchers=[voucher.pk]), format="json"
        )
    # then: it fills on Shanghai, paying 5 per GPU-hour in cash (10 less the voucher's half); Hangzhou stays free
    assert created.status_code == 201, created.json()
    detail = startup_client.get(f"/api/v1/bids/{created.json()['id']}/").json()
    assert detail["status"] == "matched"
    booking = detail["booking"]
    assert (booking["listing"], booking["price_per_gpu_hour"]) == (shanghai.pk, "10.0000")
    assert (booking["subtotal"], booking["voucher_amount"], booking["cash_amount"]) == ("160.00", "80.00", "80.00")
    assert wallet_summary(startup.pk)["held"] == Decimal("80.00")
    assert hangzhou.bookings.count() == 0

"""A listing going active triggers continuous matching of the open bids it could serve: ``listings`` sends
``listing_activated`` on commit, ``orders`` receives it and enqueues ``orders.match_listing`` (fail-soft)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from ledger.selectors import ledger_breaches, wallet_summary
from listings import services as listing_services
from listings.models import Listing
from listings.signals import listing_activated
from marketplace.core.exceptions import Conflict
from orders import bid_services, tasks
from orders.models import Bid
from tests.factories import AcceleratorFactory, ClusterFactory, ListingFactory, UserFactory, next_hour
from tests.orders.factories import funded_startup
from tests.settlement import workers

pytestmark = pytest.mark.django_db

CLOSED_PORT_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1


class Received:
    """A real receiver, connected for one test: the listing ids it was sent."""

    def __init__(self):
        self.listing_ids: list[int] = []

    def __call__(self, sender, *, listing_id, **kwargs):
        self.listing_ids.append(listing_id)


@pytest.fixture
def received():
    receiver = Received()
    listing_activated.connect(receiver, weak=False, dispatch_uid="test-listing-activated")
    yield receiver
    listing_activated.disconnect(dispatch_uid="test-listing-activated")


def pending_listing(accelerator=None, *, price="20", node_count=2) -> Listing:
    cluster = ClusterFactory(accelerator=accelerator or AcceleratorFactory(), node_count=node_count, gpus_per_node=8)
    return ListingFactory(cluster=cluster, price_per_gpu_hour=Decimal(price), status=Listing.Status.PENDING_REVIEW)


def bid_for(accelerator, *, price, nodes=1, hours=3, start_in=3, window=6):
    start = next_hour(start_in)
    return bid_services.bid_place(
        buyer=funded_startup("10000.00"),
        accelerators=[accelerator.slug],
        nodes=nodes,
        duration_hours=hours,
        earliest_start=start,
        latest_end=start + dt.timedelta(hours=window),
        max_price_per_gpu_hour=Decimal(price),
    )


# --- the signal (listings) -----------------------------------------------------------------------------------


def test_approval_sends_listing_activated_only_after_commit(received, django_capture_on_commit_callbacks):
    # given
    listing = pending_listing()
    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        listing_services.listing_review(listing=listing, actor=UserFactory(), decision="approve")
        # then: nothing is sent inside the transaction
        assert received.listing_ids == []
    for callback in callbacks:
        callback()
    assert received.listing_ids == [listing.pk]


def test_resume_sends_it_and_pause_reject_do_not(received, django_capture_on_commit_callbacks):
    # given: an active listing and a pending one
    active = ListingFactory()
    pending = pending_listing()
    # when
    with django_capture_on_commit_callbacks(execute=True):
        listing_services.listing_pause(listing=active)
        listing_services.listing_review(listing=pending, actor=UserFactory(), decision="reject", note="no")
    paused_only = list(received.listing_ids)
    with django_capture_on_commit_callbacks(execute=True):
        listing_services.listing_resume(listing=active)
    # then
    assert paused_only == []
    assert received.listing_ids == [active.pk]


def test_a_failed_activation_sends_nothing(received, django_capture_on_commit_callbacks):
    # given: an active listing cannot be approved again
    listing = ListingFactory()
    # when
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Conflict, match="reviewed"):
        listing_services.listing_review(listing=listing, actor=UserFactory(), decision="approve")
    # then
    assert received.listing_ids == []


# --- the receiver (orders) -----------------------------------------------------------------------------------


def test_activation_enqueues_match_listing_on_the_broker(django_capture_on_commit_callbacks):
    # given: a broker of our own
    listing = pending_listing()
    with workers.broker(workers.own_broker_url()) as url:
        # when
        with django_capture_on_commit_callbacks(execute=True):
            listing_services.listing_review(listing=listing, actor=UserFactory(), decision="approve")
        # then: one orders.match_listing message for this listing waits in the default queue
        messages = [json.loads(m) for m in workers.broker_client(url).lrange("celery", 0, -1)]
    sent = [m for m in messages if m["headers"]["task"] == "orders.match_listing"]
    assert [m["headers"]["argsrepr"] for m in sent] == [f"({listing.pk},)"]


def test_activation_with_the_broker_down_is_logged_not_raised(caplog, django_capture_on_commit_callbacks):
    # given: a broker nobody listens on
    listing = pending_listing()
    with workers.broker(CLOSED_PORT_BROKER):
        # when
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            approved = listing_services.listing_review(listing=listing, actor=UserFactory(), decision="approve")
        sent = tasks.enqueue_listing_matching(listing.pk)
    # then: the approval stands; the failure is logged (the batch clearing catches up)
    assert len(callbacks) == 1 and sent is False
    assert approved.status == Listing.Status.ACTIVE
    assert Listing.objects.get(pk=listing.pk).status == Listing.Status.ACTIVE
    assert caplog.text.count(f"could not enqueue orders.match_listing({listing.pk})") == 2


# --- the task's work (orders.bid_services.bids_match_listing) ------------------------------------------------


def test_match_listing_fills_the_open_bids_the_new_listing_can_serve():
    # given: open bids placed while the only h100 listing was dearer than their maximum
    h100, a800 = AcceleratorFactory(slug="h100-act"), AcceleratorFactory(slug="a800-act")
    ListingFactory(cluster=ClusterFactory(accelerator=h100, node_count=2), price_per_gpu_hour=Decimal("50"))
    ListingFactory(cluster=ClusterFactory(accelerator=a800, node_count=2), price_per_gpu_hour=Decimal("50"))
    served = bid_for(h100, price="30")
    too_low = bid_for(h100, price="15")
    other_chip = bid_for(a800, price="30")
    new = pending_listing(h100, price="20")
    listing_services.listing_review(listing=new, actor=UserFactory(), decision="approve")
    # when: the task the activation enqueued runs (here in-process)
    matched = tasks.match_listing(new.pk)
    again = tasks.match_listing(new.pk)
    # then: only the bid the listing can serve is filled, on it, at its price (pay-as-ask)
    assert (matched, again) == (1, 0)
    served.refresh_from_db()
    assert served.status == Bid.Status.MATCHED
    assert served.booking.listing_id == new.pk
    assert served.booking.price_per_gpu_hour == Decimal("20")
    assert Bid.objects.get(pk=too_low.pk).status == Bid.Status.OPEN
    assert Bid.objects.get(pk=other_chip.pk).status == Bid.Status.OPEN
    # the matched bid's hold was released; only its booking's cash part is held
    assert wallet_summary(served.buyer_id)["held"] == served.booking.cash_amount
    assert ledger_breaches() == []


def test_match_listing_of_a_listing_no_longer_active_does_nothing():
    # given
    h100 = AcceleratorFactory(slug="h100-gone")
    ListingFactory(cluster=ClusterFactory(accelerator=h100, node_count=2), price_per_gpu_hour=Decimal("50"))
    bid = bid_for(h100, price="30")
    paused = ListingFactory(
        cluster=ClusterFactory(accelerator=h100, node_count=2),
        price_per_gpu_hour=Decimal("20"),
        status=Listing.Status.PAUSED,
    )
    # when / then
    assert tasks.match_listing(paused.pk) == 0
    assert Bid.objects.get(pk=bid.pk).status == Bid.Status.OPEN

"""marketplace.core.pipeline: transitions live on the model; ``advance`` is the one writer of a status."""

import pytest
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from listings.models import Listing
from marketplace.core.exceptions import Conflict
from marketplace.core.filters import status_filter_serializer, validated_query
from marketplace.core.pipeline import advance, advance_many
from orders.models import Bid, Booking
from settlement.models import Payout, ReimbursementClaim, ReimbursementStatement
from tests import factories
from vouchers.models import VoucherApplication, VoucherProgram

PIPELINES = [
    Booking,
    Bid,
    Listing,
    VoucherProgram,
    VoucherApplication,
    Payout,
    ReimbursementClaim,
    ReimbursementStatement,
]


@pytest.mark.parametrize("model", PIPELINES, ids=lambda model: model.__name__)
def test_every_status_has_a_transition_entry_and_targets_are_statuses(model):
    statuses = set(model.Status.values)
    assert set(model.TRANSITIONS) == statuses
    assert all(targets <= statuses for targets in model.TRANSITIONS.values())


@pytest.mark.django_db
def test_advance_moves_a_row_writes_its_fields_and_returns_the_status_it_left():
    listing = factories.ListingFactory(status=Listing.Status.DRAFT)
    # when
    left = advance(listing, Listing.Status.PENDING_REVIEW, review_note="checked")
    # then
    listing.refresh_from_db()
    assert left == Listing.Status.DRAFT
    assert (listing.status, listing.review_note) == (Listing.Status.PENDING_REVIEW, "checked")


@pytest.mark.django_db
def test_advance_refuses_a_move_the_model_does_not_allow_naming_both_statuses():
    listing = factories.ListingFactory(status=Listing.Status.DRAFT)
    with pytest.raises(Conflict, match="A draft listing cannot become active") as refused:
        advance(listing, Listing.Status.ACTIVE)
    assert refused.value.code == "invalid_transition"
    listing.refresh_from_db()
    assert listing.status == Listing.Status.DRAFT


@pytest.mark.django_db
def test_advance_refuses_when_the_row_changed_since_it_was_read():
    listing = factories.ListingFactory(status=Listing.Status.DRAFT)
    Listing.objects.filter(pk=listing.pk).update(status=Listing.Status.CLOSED)
    with pytest.raises(Conflict) as refused:
        advance(listing, Listing.Status.PENDING_REVIEW)  # the object still says draft
    assert refused.value.code == "concurrent_update"
    assert Listing.objects.get(pk=listing.pk).status == Listing.Status.CLOSED


@pytest.mark.django_db
def test_advance_many_moves_only_rows_in_the_from_status():
    draft, closed = factories.ListingFactory(status="draft"), factories.ListingFactory(status="closed")
    moved = advance_many(Listing, [closed.pk, draft.pk], Listing.Status.DRAFT, Listing.Status.PENDING_REVIEW)
    assert moved == [draft.pk]
    assert Listing.objects.get(pk=closed.pk).status == "closed"
    with pytest.raises(Conflict):
        advance_many(Listing, [draft.pk], Listing.Status.CLOSED, Listing.Status.ACTIVE)


def test_available_statuses_and_statuses_leading_to():
    assert Booking(status="held").cancellable and Booking(status="held").confirmable
    assert not Booking(status="active").cancellable
    assert Booking(status="settled").available_statuses() == frozenset()
    assert set(Booking.statuses_leading_to(Booking.Status.CANCELLED)) == {"held", "confirmed"}


def test_a_status_filter_answers_400_on_a_bad_value_and_drops_an_empty_one():
    query = status_filter_serializer("TestFilter", Booking.Status.choices)
    request = APIRequestFactory().get("/", {"status": "held"})
    assert validated_query(query, Request(request)) == {"status": "held"}
    assert validated_query(query, Request(APIRequestFactory().get("/", {"status": ""}))) == {}
    with pytest.raises(ValidationError) as refused:
        validated_query(query, Request(APIRequestFactory().get("/", {"status": "nonsense"})))
    assert "status" in refused.value.detail

"""Idempotency-Key on POSTs that create money or capacity, exercised through the deposits endpoint."""

import datetime as dt

import pytest
from rest_framework.test import APIRequestFactory

from ledger.models import JournalTransaction
from marketplace.core.idempotency import request_fingerprint
from marketplace.core.models import IdempotencyRecord
from tests import factories
from tests.helpers import run_concurrently

DEPOSITS = "/api/v1/wallet/deposits/"


def _post(client, body, key):
    return client.post(DEPOSITS, body, HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
def test_a_replay_returns_the_first_response_and_does_not_run_again(startup, staff_client):
    # given
    body = {"organization": startup.pk, "amount": "10.00", "reference": "TX-1"}
    first = _post(staff_client, body, "k-1")
    # when
    replay = _post(staff_client, dict(reversed(body.items())), "k-1")  # key order does not matter
    # then
    assert first.status_code == replay.status_code == 201
    assert replay.content == first.content  # byte for byte
    assert replay["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert JournalTransaction.objects.count() == 1


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_422(startup, staff_client):
    # given
    _post(staff_client, {"organization": startup.pk, "amount": "10.00", "reference": "TX-1"}, "k-1")
    # when
    response = _post(staff_client, {"organization": startup.pk, "amount": "11.00", "reference": "TX-2"}, "k-1")
    # then
    assert response.status_code == 422
    assert set(response.json()) == {"detail", "errors"}
    assert "Idempotency-Key" in response.json()["errors"]
    assert JournalTransaction.objects.count() == 1


@pytest.mark.django_db
def test_an_error_response_is_not_stored_so_the_key_can_be_retried(startup, staff_client):
    # given
    bad = _post(staff_client, {"organization": startup.pk, "amount": "10.001", "reference": "TX-1"}, "k-1")
    # when
    fixed = _post(staff_client, {"organization": startup.pk, "amount": "10.00", "reference": "TX-1"}, "k-1")
    # then
    assert (bad.status_code, fixed.status_code) == (400, 201)
    assert IdempotencyRecord.objects.get().status_code == 201


@pytest.mark.django_db
def test_keys_are_scoped_to_the_user(startup, staff_client, platform_org, client_for):
    # given
    colleague = client_for(factories.member_of(platform_org))
    _post(staff_client, {"organization": startup.pk, "amount": "10.00", "reference": "TX-1"}, "k-1")
    # when
    response = _post(colleague, {"organization": startup.pk, "amount": "20.00", "reference": "TX-2"}, "k-1")
    # then
    assert response.status_code == 201
    assert JournalTransaction.objects.count() == 2


@pytest.mark.django_db
def test_an_overlong_key_is_a_field_error(startup, staff_client):
    response = _post(staff_client, {"organization": startup.pk, "amount": "1.00", "reference": "T"}, "k" * 256)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["errors"]


def test_the_fingerprint_covers_method_path_and_body_but_not_key_order():
    # given
    factory = APIRequestFactory()

    def fingerprint(path, body):
        from rest_framework.parsers import JSONParser
        from rest_framework.request import Request

        return request_fingerprint(Request(factory.post(path, body, format="json"), parsers=[JSONParser()]))

    # then
    assert fingerprint("/a/", {"x": 1, "y": 2}) == fingerprint("/a/", {"y": 2, "x": 1})
    assert fingerprint("/a/", {"x": 1}) != fingerprint("/b/", {"x": 1})
    assert fingerprint("/a/", {"x": 1}) != fingerprint("/a/", {"x": 2})


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_run_once_and_replay_the_first_response(startup, staff_client, client_for):
    # given
    body = {"organization": startup.pk, "amount": "10.00", "reference": "TX-race"}

    def post():
        response = _post(client_for(staff_client.user), body, "k-race")  # one client per thread
        return response.status_code, response.json(), response.has_header("Idempotent-Replayed")

    # when
    results = run_concurrently(post, [()] * 8)
    # then: one ran, seven waited on the unique index and replayed its response
    assert all(isinstance(r, tuple) for r in results), results
    assert {status for status, _, _ in results} == {201}
    assert all(body == results[0][1] for _, body, _ in results)
    assert sorted(replayed for _, _, replayed in results) == [False] + [True] * 7
    assert JournalTransaction.objects.count() == 1


@pytest.mark.django_db
def test_records_past_their_retention_are_purged_in_batches(settings):
    # given 7 records three days and a minute old and 2 fresh ones, with a retention of 72 hours
    from django.utils import timezone

    from marketplace.core.idempotency import idempotency_records_purge
    from marketplace.core.tasks import purge_idempotency_records

    settings.IDEMPOTENCY_RETENTION_HOURS = 72
    user = factories.UserFactory()
    now = timezone.now()
    for i in range(9):
        IdempotencyRecord.objects.create(
            user=user, key=f"k{i}", method="POST", path="/api/v1/bookings/", fingerprint="0" * 64, status_code=201
        )
    IdempotencyRecord.objects.filter(key__in=[f"k{i}" for i in range(7)]).update(
        created_at=now - dt.timedelta(hours=72, minutes=1)
    )
    # when purged 3 rows per statement, then again by the beat task
    deleted = idempotency_records_purge(now=now, batch=3)
    again = purge_idempotency_records.run()
    # then the old ones are gone, the fresh ones kept, and the second run finds nothing
    assert deleted == 7 and again == 0
    assert sorted(IdempotencyRecord.objects.values_list("key", flat=True)) == ["k7", "k8"]
    assert settings.CELERY_BEAT_SCHEDULE["core-purge-idempotency-records"]["task"] == "core.purge_idempotency_records"


@pytest.mark.django_db
def test_keys_are_scoped_to_the_organization_acted_for(client_for):
    # given a user in two funded startups and one listing
    from orders.models import Booking
    from tests.orders.factories import booking_body, fund

    first, second = factories.StartupFactory(), factories.StartupFactory()
    user = factories.member_of(first)
    factories.MembershipFactory(user=user, organization=second)
    for startup in (first, second):
        fund(startup, "10000.00")
    client = client_for(user)
    body = booking_body(confirm=True)

    def book(org, key="k-1"):
        return client.post(
            "/api/v1/bookings/", body, format="json", HTTP_IDEMPOTENCY_KEY=key, HTTP_X_ORGANIZATION=str(org.pk)
        )

    # when the same body is posted with the same key for s1, then for s2, then for s1 again
    for_first, for_second, again = book(first), book(second), book(first)
    # then s2 got its own booking, and only the repeat for s1 is a replay
    assert (for_first.status_code, for_second.status_code, again.status_code) == (201, 201, 201)
    assert for_first.json()["id"] != for_second.json()["id"]
    assert not for_second.has_header("Idempotent-Replayed")
    assert again["Idempotent-Replayed"] == "true" and again.json() == for_first.json()
    assert sorted(Booking.objects.values_list("buyer_id", flat=True)) == sorted([first.pk, second.pk])


@pytest.mark.django_db
def test_a_key_sent_without_an_organization_header_still_replays(startup, startup_client):
    # given a member of one startup who names no organization
    from orders.models import Booking
    from tests.orders.factories import booking_body, fund

    fund(startup, "10000.00")
    body = booking_body(confirm=True)
    # when the same booking is posted twice with one key
    first = startup_client.post("/api/v1/bookings/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    replay = startup_client.post("/api/v1/bookings/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    # then the second is the first's replay
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay["Idempotent-Replayed"] == "true" and replay.json() == first.json()
    assert Booking.objects.count() == 1
    assert IdempotencyRecord.objects.get().organization_id is None

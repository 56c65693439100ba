"""What one booking POST costs the database (issue #3's benchmark), and that its audit event takes no global lock.

The booking request runs on the hot path of the booking benchmark: these tests keep its statement count from
creeping back up. The audit event is a plain INSERT anywhere in the transaction (issue 24: the audit sequencer
appends it to the signed log after the commit), so no statement order is required of it any more.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from audit.models import AuditEvent
from marketplace.core.models import IdempotencyRecord
from orders.models import Booking, BookingStatusChange, NodeReservation
from tests.factories import ListingFactory, member_of
from tests.orders.factories import booking_body, fund, funded_startup

pytestmark = pytest.mark.django_db

BOOKINGS = "/api/v1/bookings/"
# Token lookup, idempotency claim, acting organization, listing lock, booking + its status change, capacity lock,
# reservations, the ledger posting (which finds and locks the two wallet accounts itself), the audit event, the
# idempotency record's response: 11. A held booking adds its open-order counter (one statement).
MAX_STATEMENTS = {True: 11, False: 12}
# Savepoints: only the request's own transaction (a savepoint only under the test's transaction). booking_create
# runs in it without one of its own (an error rolls the request's transaction back whole), and neither the node
# choice nor the ledger posting needs one: both avoid the error instead of catching it.
MAX_SAVEPOINTS = 1


def _statements(queries) -> list[str]:
    """The SQL sent, without transaction control (BEGIN/COMMIT/SAVEPOINT/RELEASE: the test's own transaction turns
    the request's outermost one into a savepoint)."""
    control = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT", "BEGIN", "COMMIT")
    return [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith(control)]


def _token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.mark.parametrize("confirm", [True, False])
def test_one_booking_post_stays_within_its_statement_budget(confirm):
    # given a funded startup member with an API token, an open listing, and a first booking behind them (which
    # created the wallet-hold account)
    startup = funded_startup()
    client = _token_client(member_of(startup))
    listing = ListingFactory()
    first = client.post(
        BOOKINGS, booking_body(listing, nodes=1, confirm=confirm), format="json", HTTP_IDEMPOTENCY_KEY="first"
    )
    assert first.status_code == 201, first.data
    # when one booking is posted the way the benchmark does (token, Idempotency-Key, confirm or not)
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            BOOKINGS,
            booking_body(listing, nodes=2, start_in_hours=6, confirm=confirm),
            format="json",
            HTTP_IDEMPOTENCY_KEY=f"budget-{confirm}",
        )
    # then it is booked, with everything it must write, in at most the budgeted statements
    assert response.status_code == 201, response.data
    booking = Booking.objects.get(pk=response.data["id"])
    assert booking.status == ("confirmed" if confirm else "held")
    assert NodeReservation.objects.filter(booking=booking).count() == 2
    assert BookingStatusChange.objects.filter(booking=booking, from_status="", to_status=booking.status).exists()
    assert AuditEvent.objects.filter(object_type="orders.booking", object_id=str(booking.pk)).count() == 1
    assert IdempotencyRecord.objects.get(key=f"budget-{confirm}").status_code == 201
    statements = _statements(queries.captured_queries)
    assert len(statements) <= MAX_STATEMENTS[confirm], "\n".join(statements)
    savepoints = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("SAVEPOINT")]
    assert len(savepoints) <= MAX_SAVEPOINTS, savepoints


def test_an_audited_booking_takes_no_global_audit_lock():
    # given
    startup = funded_startup()
    client = _token_client(member_of(startup))
    # when (the request runs in this test's transaction, whose locks are still held afterwards)
    response = client.post(
        BOOKINGS, booking_body(ListingFactory(), confirm=True), format="json", HTTP_IDEMPOTENCY_KEY="no-lock"
    )
    # then its audit event was recorded, and the old chain's advisory lock (7263001) was not taken
    assert response.status_code == 201
    booking_id = response.json()["id"]
    assert AuditEvent.objects.filter(object_type="orders.booking", object_id=str(booking_id)).count() == 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND objid = 7263001"
        )
        assert cursor.fetchone()[0] == 0


def test_a_booking_refused_late_in_the_idempotent_request_leaves_nothing_and_frees_its_key():
    # given a startup whose wallet cannot pay, so the booking is refused after its row and reservations went in
    startup = funded_startup("10.00")
    client = _token_client(member_of(startup))
    listing = ListingFactory()
    body = booking_body(listing, nodes=2, confirm=True)
    # when it is posted with an Idempotency-Key (the booking runs without a savepoint of its own)
    with CaptureQueriesContext(connection) as queries:
        refused = client.post(BOOKINGS, body, format="json", HTTP_IDEMPOTENCY_KEY="late")
    # then 409, and the request's transaction took everything back: booking, reservations, audit event, key
    assert refused.status_code == 409, refused.data
    assert any(q["sql"].startswith('INSERT INTO "orders_booking"') for q in queries.captured_queries)
    assert not Booking.objects.exists()
    assert not NodeReservation.objects.exists()
    assert not AuditEvent.objects.filter(object_type="orders.booking").exists()
    assert not IdempotencyRecord.objects.filter(key="late").exists()
    # and once funded, the same key books
    fund(startup)
    booked = client.post(BOOKINGS, body, format="json", HTTP_IDEMPOTENCY_KEY="late")
    assert booked.status_code == 201, booked.data
    assert NodeReservation.objects.filter(booking_id=booked.data["id"], active=True).count() == 2

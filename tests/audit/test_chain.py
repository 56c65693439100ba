"""The audit log is append-only and hash-chained by the database; verify_audit names the first broken link."""

import itertools

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from audit.models import AuditEvent
from audit.selectors import audit_chain_breaks
from audit.services import audit_record

pytestmark = pytest.mark.django_db


def record_three():
    return [
        audit_record(action=f"test.{i}", object_type="thing", object_id=str(i), data={"i": i, "amount": "1.00"})
        for i in range(3)
    ]


def test_events_are_chained_in_order():
    # given three recorded events
    ids = [e.pk for e in record_three()]
    # then each carries the previous one's hash and the chain verifies
    events = list(AuditEvent.objects.filter(pk__in=ids).order_by("seq"))
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert events[1].prev_hash == events[0].hash and events[2].prev_hash == events[1].hash
    assert all(len(e.hash) == 64 for e in events)
    assert audit_chain_breaks() == []
    call_command("verify_audit")


@pytest.mark.parametrize("statement", ["UPDATE audit_auditevent SET action = 'x'", "DELETE FROM audit_auditevent"])
def test_update_and_delete_are_refused_by_the_database(statement):
    record_three()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert AuditEvent.objects.filter(action__startswith="test.").count() == 3


def tamper(sql: str, params):
    """Change a row behind the triggers' back, as a database superuser could (replica mode skips triggers)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        cursor.execute("SET LOCAL session_replication_role = origin")


def test_verify_audit_names_a_tampered_row():
    # given a chain whose middle event's data was changed with raw SQL
    events = record_three()
    tamper('UPDATE audit_auditevent SET data = \'{"i": 1, "amount": "1000000.00"}\' WHERE id = %s', [events[1].pk])
    # when verified / then the command fails and names that event
    with pytest.raises(CommandError, match=rf"id={events[1].pk} .*hash does not match"):
        call_command("verify_audit")


def test_verify_audit_notices_a_deleted_row():
    events = record_three()
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [events[1].pk])
    breaks = audit_chain_breaks()
    assert breaks and breaks[0].event_id == events[2].pk


@pytest.mark.django_db(transaction=True)
def test_parallel_appends_keep_one_unbroken_chain():
    from tests.helpers import run_concurrently

    # given 12 transactions appending at once
    def append(i):
        with transaction.atomic():
            return audit_record(action="race", object_type="thing", object_id=str(i), data={"i": i}).pk

    results = run_concurrently(append, [(i,) for i in range(12)])
    # then every append succeeded and the chain has no gap or fork
    assert all(isinstance(r, int) for r in results), results
    seqs = sorted(AuditEvent.objects.filter(action="race").values_list("seq", flat=True))
    assert seqs == list(range(seqs[0], seqs[0] + 12))
    assert audit_chain_breaks() == []


def test_events_recorded_many_at_once_chain_like_one_at_a_time():
    from audit.services import audit_event, audit_record_many

    # given an event recorded alone, then five recorded with one INSERT, then one more alone
    first = audit_record(action="test.single", object_type="thing", object_id="0")
    many = audit_record_many(
        audit_event(action="test.many", object_type="thing", object_id=str(i), data={"i": i}) for i in range(1, 6)
    )
    last = audit_record(action="test.single", object_type="thing", object_id="6")
    # then the seven events form one chain, in the order given, and it verifies
    events = list(AuditEvent.objects.filter(pk__in=[first.pk, *(e.pk for e in many), last.pk]).order_by("seq"))
    assert [e.object_id for e in events] == [str(i) for i in range(7)]
    assert [e.seq for e in events] == list(range(events[0].seq, events[0].seq + 7))
    assert all(b.prev_hash == a.hash and len(b.hash) == 64 for a, b in itertools.pairwise(events))
    assert audit_chain_breaks() == []
    call_command("verify_audit")

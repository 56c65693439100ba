"""The audit log as a transparency log: events inserted without a lock, the sequencer's Merkle tree and signed heads,
append-only tables, and ``verify_audit`` naming the first thing that was altered."""

import base64
import datetime as dt
import itertools
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from audit import keys, merkle, sequencer, signing
from audit.integrity import audit_log_check
from audit.models import AuditEvent, AuditLeaf, MerkleNode, TreeHead
from audit.selectors import sequencer_lag_seconds, sequencer_status
from audit.sequencer import SequencerError, audit_sequence
from audit.services import audit_event, audit_record, audit_record_many
from audit.tree import event_leaf, head_document, timestamp_text
from tests import factories
from tests.audit.helpers import log_leaves, mth, proof, tamper

pytestmark = pytest.mark.django_db


def record(n: int, *, prefix: str = "test") -> list[AuditEvent]:
    return [
        audit_record(action=f"{prefix}.{i}", object_type="thing", object_id=str(i), data={"i": i, "amount": "1.00"})
        for i in range(n)
    ]


def newest_head() -> TreeHead:
    return TreeHead.objects.order_by("-tree_size").first()


# --- inserting: no lock, the transaction id given by the database -----------------------------------------------


def test_an_event_insert_takes_no_advisory_lock_and_carries_its_transaction_id():
    # when
    event = audit_record(action="test.one", object_type="thing", object_id="1")
    # then: no advisory lock is held by this transaction, and txid is this transaction's id
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        assert AuditEvent.objects.get(pk=event.pk).txid == cursor.fetchone()[0]


def test_events_recorded_many_at_once_carry_their_transaction_id_too():
    events = audit_record_many(audit_event(action="test.many", object_type="thing", object_id=str(i)) for i in range(3))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        current = cursor.fetchone()[0]
    assert {e.txid for e in events} == {current}  # returned by the INSERT
    assert set(AuditEvent.objects.filter(pk__in=[e.pk for e in events]).values_list("txid", flat=True)) == {current}


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_auditevent SET action = 'x'",
        "DELETE FROM audit_auditevent",
        "UPDATE audit_auditleaf SET leaf_hash = leaf_hash",
        "DELETE FROM audit_auditleaf",
        "UPDATE audit_merklenode SET hash = hash",
        "DELETE FROM audit_merklenode",
        "UPDATE audit_treehead SET signature = ''",
        "DELETE FROM audit_treehead",
    ],
)
def test_update_and_delete_are_refused_by_the_database(statement):
    record(4)
    audit_sequence()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert AuditEvent.objects.count() == AuditLeaf.objects.count() == 4
    assert MerkleNode.objects.count() == 3 and TreeHead.objects.count() == 1


# --- the leaf -----------------------------------------------------------------------------------------------------


def test_the_leaf_is_the_documented_canonical_json_of_the_event(startup):
    # given an event with an actor, an organization, an address and data with a nested object, text and numbers
    user = factories.member_of(startup)
    event = audit_record(
        action="voucher.hold",
        object_type="vouchers.redemption",
        object_id="12",
        actor=user,
        organization_id=startup.pk,
        ip="2001:db8::1",
        data={"amount": "12.50", "ratio": 0.25, "nodes": [3, 1], "城市": "武汉", "nested": {"b": True, "a": None}},
    )
    created = AuditEvent.objects.get(pk=event.pk).created_at
    # when
    leaf = event_leaf(event).decode()
    # then: exactly these keys, sorted, no spaces; the float became its decimal text
    assert leaf == (
        f'{{"action":"voucher.hold","actor":{user.pk},"created_at":"{timestamp_text(created)}",'
        '"data":{"amount":"12.50","nested":{"a":null,"b":true},"nodes":[3,1],"ratio":"0.25","城市":"武汉"},'
        f'"id":{event.pk},"ip":"2001:db8::1","object_id":"12","object_type":"vouchers.redemption",'
        f'"organization":{startup.pk}}}'
    )


def test_the_organization_is_a_relation_without_a_database_constraint(startup):
    # the ORM follows it (pages show the name) …
    event = audit_record(action="test.org", object_type="thing", object_id="1", organization_id=startup.pk)
    assert AuditEvent.objects.select_related("organization").get(pk=event.pk).organization.name == startup.name
    # … and the database checks nothing (no row lock on the organization at commit)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'audit_auditevent'::regclass AND contype = 'f' "
            "AND conkey = ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = 'audit_auditevent'::regclass "
            "AND attname = 'organization_id')]"
        )
        assert cursor.fetchone()[0] == 0


# --- the sequencer ------------------------------------------------------------------------------------------------


def test_the_sequencer_appends_events_in_transaction_order_and_signs_the_root():
    # given seven events, five of them with one INSERT
    first = audit_record(action="test.single", object_type="thing", object_id="0")
    many = audit_record_many(audit_event(action="test.many", object_type="thing", object_id=str(i)) for i in range(5))
    last = audit_record(action="test.single", object_type="thing", object_id="6")
    # when
    run = audit_sequence()
    # then: all appended once, in insertion order (one transaction), under a signed head of the right root
    assert (run.appended, run.tree_size, run.active) == (7, 7, True)
    ids = list(AuditLeaf.objects.order_by("leaf_index").values_list("event_id", flat=True))
    assert ids == [first.pk, *(e.pk for e in many), last.pk]
    head = newest_head()
    assert head.tree_size == 7 and bytes(head.root_hash) == mth(log_leaves())
    public_key = keys.signing_key().public_key()
    assert signing.verify_tree_head(public_key, head_document(head))
    assert head.key_id == signing.key_id(public_key)
    call_command("verify_audit")


def test_a_second_run_appends_nothing_and_signs_no_new_head():
    record(3)
    audit_sequence()
    # when
    run = audit_sequence()
    # then
    assert (run.appended, run.tree_size) == (0, 3)
    assert TreeHead.objects.count() == 1


def test_the_first_run_of_an_empty_log_signs_the_empty_tree():
    audit_sequence()
    head = newest_head()
    assert head.tree_size == 0 and bytes(head.root_hash) == merkle.EMPTY_ROOT
    assert signing.verify_tree_head(keys.signing_key().public_key(), head_document(head))


def test_batches_sign_one_head_each_and_every_head_extends_the_one_before():
    # given 23 events appended 5 at a time
    record(23)
    run = audit_sequence(batch_size=5)
    # then: heads of 5, 10, 15, 20, 23 leaves, each the root of its prefix, consistent with each other
    assert run.appended == 23
    sizes = sorted(TreeHead.objects.values_list("tree_size", flat=True))
    assert sizes == [5, 10, 15, 20, 23]
    leaves = log_leaves()
    roots = {head.tree_size: bytes(head.root_hash) for head in TreeHead.objects.all()}
    for size, root in roots.items():
        assert root == mth(leaves[:size])
    for first, second in itertools.pairwise(sizes):
        assert merkle.verify_consistency(first, second, proof(first, leaves[:second]), roots[first], roots[second])
    assert MerkleNode.objects.count() == 23 - 4  # n - popcount(n) perfect subtrees above the leaves (23 = 10111b)
    call_command("verify_audit")


def test_max_batches_leaves_the_rest_for_the_next_run():
    record(12)
    assert audit_sequence(batch_size=5, max_batches=1).appended == 5
    assert audit_sequence(batch_size=5).appended == 7
    assert log_leaves() == [event_leaf(e) for e in AuditEvent.objects.order_by("txid", "id")]


def test_heads_never_go_back_in_time():
    # given a head signed "in the future" (a clock step back afterwards)
    record(1)
    audit_sequence()
    future = newest_head().timestamp + dt.timedelta(hours=1)
    tamper("audit_treehead", "DELETE FROM audit_treehead")
    TreeHead.objects.create(**_resigned(1, timestamp=future))
    # when
    record(1, prefix="later")
    audit_sequence()
    # then the next head is not earlier
    assert newest_head().timestamp == future


def _resigned(size: int, *, timestamp) -> dict:
    root = merkle.root_from_leaf_hashes([merkle.leaf_hash(leaf) for leaf in log_leaves()[:size]])
    key = keys.signing_key()
    signature = signing.sign_tree_head(key, size, root.hex(), timestamp_text(timestamp))
    return {
        "tree_size": size,
        "root_hash": root,
        "timestamp": timestamp,
        "signature": signature,
        "key_id": keys.key_id(),
    }


def test_a_run_that_fails_mid_batch_leaves_nothing_and_the_next_run_completes(monkeypatch):
    # given a sequencer that fails after it stored the batch's leaves and nodes, before the head
    record(9)

    def crash(*args, **kwargs):
        assert AuditLeaf.objects.count() == 9  # the leaves were written …
        raise RuntimeError("killed")

    monkeypatch.setattr(sequencer, "_sign_head", crash)
    with pytest.raises(RuntimeError, match="killed"):
        audit_sequence()
    # then … and rolled back with the batch
    assert AuditLeaf.objects.count() == MerkleNode.objects.count() == TreeHead.objects.count() == 0
    # when the next run works
    monkeypatch.undo()
    run = audit_sequence()
    # then
    assert (run.appended, run.tree_size) == (9, 9)
    assert bytes(newest_head().root_hash) == mth(log_leaves())
    call_command("verify_audit")


def test_the_sequencer_refuses_to_extend_an_altered_tree():
    # given a log whose newest leaf hash was altered
    record(3)
    audit_sequence()
    tamper("audit_auditleaf", "UPDATE audit_auditleaf SET leaf_hash = %s WHERE leaf_index = 2", [bytes(32)])
    record(1, prefix="later")
    # when / then
    with pytest.raises(SequencerError, match="no longer has its signed root"):
        audit_sequence()


def test_the_sequencer_refuses_to_sign_over_leaves_no_head_covers():
    record(3)
    audit_sequence()
    tamper("audit_treehead", "DELETE FROM audit_treehead")
    with pytest.raises(SequencerError, match="holds 3 leaves but its newest signed head has tree size 0"):
        audit_sequence()


# --- verify_audit: tampering with any stored row is caught -------------------------------------------------------


@pytest.fixture
def log():
    """Ten events in the log, 4 + 6 (two heads)."""
    events = record(4) + record(6, prefix="more")
    audit_sequence(batch_size=4, max_batches=1)
    audit_sequence()
    assert sorted(TreeHead.objects.values_list("tree_size", flat=True)) == [4, 10]
    call_command("verify_audit")
    return events


def verify_fails(match: str):
    with pytest.raises(CommandError, match=match):
        call_command("verify_audit")


def test_an_altered_event_is_named(log):
    event = log[5]
    leaf = AuditLeaf.objects.get(event=event)
    tamper(
        "audit_auditevent",
        'UPDATE audit_auditevent SET data = \'{"i": 1, "amount": "1000000.00"}\' WHERE id = %s',
        [event.pk],
    )
    verify_fails(rf"leaf {leaf.leaf_index} \(event id={event.pk}\): the stored leaf hash is not the hash of the event")


def test_an_altered_leaf_is_named(log):
    tamper("audit_auditleaf", "UPDATE audit_auditleaf SET leaf_hash = %s WHERE leaf_index = 7", [bytes(range(32))])
    verify_fails(r"leaf 7 \(event id=\d+\): the stored leaf hash")


def test_a_removed_leaf_is_named(log):
    tamper("audit_auditleaf", "DELETE FROM audit_auditleaf WHERE leaf_index = 3")
    verify_fails(r"leaf 3 is missing \(the next stored leaf is 4\)")


def test_an_altered_node_is_named(log):
    tamper("audit_merklenode", "UPDATE audit_merklenode SET hash = %s WHERE level = 1 AND index = 2", [bytes(32)])
    verify_fails(r"node level 1 index 2: the stored hash is not the hash of the leaves below it")


def test_a_removed_node_is_named(log):
    tamper("audit_merklenode", "DELETE FROM audit_merklenode WHERE level = 2 AND index = 1")
    verify_fails(r"node level 2 index 1 is missing")


def test_an_altered_head_root_is_named(log):
    tamper("audit_treehead", "UPDATE audit_treehead SET root_hash = %s WHERE tree_size = 4", [bytes(32)])
    verify_fails(r"tree head of size 4: the signature does not verify")


def test_a_head_re_signed_over_another_root_is_named(log):
    # given a head of size 4 re-signed with our key over a forged root: the signature holds, the root does not
    forged = bytes(range(32))
    head = TreeHead.objects.get(tree_size=4)
    signature = signing.sign_tree_head(keys.signing_key(), 4, forged.hex(), timestamp_text(head.timestamp))
    tamper(
        "audit_treehead",
        "UPDATE audit_treehead SET root_hash = %s, signature = %s WHERE tree_size = 4",
        [forged, signature],
    )
    verify_fails(r"tree head of size 4: its root is not the root of the first 4 leaves")


def test_a_head_signed_by_another_key_is_named(log):
    other = signing.generate_dev_key()
    head = TreeHead.objects.get(tree_size=10)
    signature = signing.sign_tree_head(other, 10, bytes(head.root_hash).hex(), timestamp_text(head.timestamp))
    tamper(
        "audit_treehead",
        "UPDATE audit_treehead SET signature = %s, key_id = %s WHERE tree_size = 10",
        [signature, signing.key_id(other)],
    )
    verify_fails(
        rf"tree head of size 10: signed by key {signing.key_id(other)}, not by this exchange's key {keys.key_id()} nor "
        r"by a previous key \(AUDIT_PREVIOUS_PUBLIC_KEYS\)"
    )


def test_a_removed_newest_head_is_named(log):
    tamper("audit_treehead", "DELETE FROM audit_treehead WHERE tree_size = 10")
    verify_fails(r"the log holds 10 leaves but its newest signed head has tree size 4")


def test_verify_audit_all_lists_every_failure(log, capsys):
    tamper("audit_auditleaf", "UPDATE audit_auditleaf SET leaf_hash = %s WHERE leaf_index IN (1, 8)", [bytes(32)])
    with pytest.raises(CommandError, match="leaf 1 "):
        call_command("verify_audit", "--all")
    assert "leaf 8 " in capsys.readouterr().err
    assert len(audit_log_check().failures) >= 2


def test_pending_events_are_reported_but_are_not_a_failure(log, capsys):
    record(2, prefix="pending")
    call_command("verify_audit")
    assert "2 committed events wait for the sequencer" in capsys.readouterr().out


# --- rotating the signing key: heads of the previous key still verify ------------------------------------------


@pytest.fixture
def rotated(log, settings):
    """The log of ``log`` (heads of 4 and 10, signed by the test key A), then the signing key rotated to a new key B
    with A's public half kept in ``AUDIT_PREVIOUS_PUBLIC_KEYS``. Returns (A, B)."""
    before = keys.signing_key()
    after = signing.generate_dev_key()
    settings.AUDIT_SIGNING_KEY = signing.private_key_pem(after)
    settings.AUDIT_PREVIOUS_PUBLIC_KEYS = signing.public_key_pem(before)
    assert keys.key_id() == signing.key_id(after)
    return before, after


def test_after_a_rotation_old_heads_verify_and_new_heads_carry_the_new_key(rotated):
    before, after = rotated
    call_command("verify_audit")
    # when more events are appended under the new key
    record(3, prefix="rotated")
    audit_sequence()
    # then the new head names B, the old ones still name A, and the whole log verifies
    key_ids = dict(TreeHead.objects.values_list("tree_size", "key_id"))
    assert key_ids == {4: signing.key_id(before), 10: signing.key_id(before), 13: signing.key_id(after)}
    assert signing.verify_tree_head(after.public_key(), head_document(newest_head()))
    call_command("verify_audit")
    assert audit_log_check().failures == []


def test_after_a_rotation_without_the_previous_key_its_heads_fail_naming_it(rotated, settings):
    before, after = rotated
    settings.AUDIT_PREVIOUS_PUBLIC_KEYS = ""
    verify_fails(
        rf"tree head of size 4: signed by key {signing.key_id(before)}, not by this exchange's key "
        rf"{signing.key_id(after)} nor by a previous key"
    )


def test_a_tampered_head_of_the_previous_key_is_still_caught(rotated):
    record(3, prefix="rotated")
    audit_sequence()
    tamper("audit_treehead", "UPDATE audit_treehead SET root_hash = %s WHERE tree_size = 4", [bytes(32)])
    verify_fails(r"tree head of size 4: the signature does not verify")


def test_an_old_head_relabelled_with_the_new_key_id_is_caught(rotated):
    # given A's head of size 10 claiming to be B's (the signature is still A's)
    _, after = rotated
    tamper("audit_treehead", "UPDATE audit_treehead SET key_id = %s WHERE tree_size = 10", [signing.key_id(after)])
    verify_fails(r"tree head of size 10: the signature does not verify")


# --- health -------------------------------------------------------------------------------------------------------


def test_the_sequencer_is_lagging_when_an_event_waited_longer_than_the_threshold(settings):
    settings.AUDIT_SEQUENCER_LAG_SECONDS = 60
    assert sequencer_status() == "ok" and sequencer_lag_seconds() == 0
    with connection.cursor() as cursor:  # an event recorded two minutes ago, still not in the log
        cursor.execute(
            "INSERT INTO audit_auditevent (created_at, action, object_type, object_id, data) "
            "VALUES (now() - interval '2 minutes', 'test.old', 'thing', '1', '{}')"
        )
    assert sequencer_lag_seconds() >= 119 and sequencer_status() == "lagging"
    audit_sequence()
    assert sequencer_status() == "ok"


def test_healthz_reports_a_lagging_sequencer_without_failing(client, settings):
    settings.AUDIT_SEQUENCER_LAG_SECONDS = 60
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_auditevent (created_at, action, object_type, object_id, data) "
            "VALUES (now() - interval '2 minutes', 'test.old', 'thing', '1', '{}')"
        )
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "audit_sequencer": "lagging"},
    }


# --- keys ---------------------------------------------------------------------------------------------------------


def test_the_test_key_comes_from_the_setting():
    seed = base64.b64decode("dGVzdC1vbmx5LWF1ZGl0LWtleS1ub3QtZm9yLXByb2Q=")
    assert keys.key_id() == signing.key_id(signing.load_private_key(base64.b64encode(seed).decode()))


def test_a_dev_key_is_generated_once_under_debug(settings, tmp_path):
    settings.AUDIT_SIGNING_KEY = ""
    settings.DEBUG = True
    settings.AUDIT_DEV_KEY_FILE = tmp_path / "audit-signing-key.pem"
    first = keys.key_id()
    assert settings.AUDIT_DEV_KEY_FILE.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert oct(settings.AUDIT_DEV_KEY_FILE.stat().st_mode & 0o777) == "0o600"
    keys._key.cache_clear()
    assert keys.key_id() == first  # read back, not generated again


def test_without_a_key_outside_debug_nothing_is_signed(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.AUDIT_SIGNING_KEY = ""
    settings.DEBUG = False
    record(1)
    with pytest.raises(ImproperlyConfigured, match="AUDIT_SIGNING_KEY"):
        audit_sequence()


def test_a_pem_key_with_escaped_newlines_is_read(settings):
    pem = signing.private_key_pem(signing.generate_dev_key())
    settings.AUDIT_SIGNING_KEY = pem.replace("\n", "\\n")
    assert keys.key_id() == signing.key_id(signing.load_private_key(pem))
    assert json.loads(json.dumps(keys.public_key_pem())).startswith("-----BEGIN PUBLIC KEY-----")


def test_events_recorded_after_a_run_in_the_same_transaction_are_appended_by_the_next():
    record(2)
    audit_sequence()
    record(3, prefix="later")
    assert audit_sequence().appended == 3
    assert log_leaves() == [event_leaf(e) for e in AuditEvent.objects.order_by("id")]

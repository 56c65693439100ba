"""The signed audit log over the API: tree heads, the public key, inclusion and consistency proofs (checked against
an independent RFC 9162 implementation), who may read them, bad parameters, and the verifiable spend export —
round-tripped through the offline verifier, before and after tampering."""

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import keys, merkle, signing
from audit.models import AuditEvent, AuditLeaf, MerkleNode
from audit.sequencer import audit_sequence
from audit.services import audit_record
from settlement.services import booking_settle
from tests import factories
from tests.audit.helpers import log_leaves, mth, path, proof, tamper
from tests.settlement.factories import booking_in, completed_booking
from tests.vouchers.factories import funded_program, issued_voucher
from vouchers.services import redemptions_release

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def record_for(org, n: int, *, prefix: str = "test") -> list[AuditEvent]:
    return [
        audit_record(action=f"{prefix}.{i}", object_type="thing", object_id=str(i), organization_id=org.pk)
        for i in range(n)
    ]


def public_key(client):
    response = client.get("/api/v1/audit/public-key/")
    assert response.status_code == 200
    return signing.load_public_key(response.content.decode())


def b(hex_list: list[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hex_list]


# --- tree heads and the public key --------------------------------------------------------------------------------


def test_the_tree_head_is_404_until_the_sequencer_ran_then_signed(startup_client, startup):
    assert startup_client.get("/api/v1/audit/tree-head/").status_code == 404
    record_for(startup, 5)
    audit_sequence()
    # when
    head = startup_client.get("/api/v1/audit/tree-head/").json()
    # then: exactly the documented fields, signed over the canonical JSON of three of them
    assert set(head) == {"tree_size", "root_hash", "timestamp", "signature", "key_id"}
    assert head["tree_size"] == 5 and head["root_hash"] == mth(log_leaves()).hex()
    assert head["timestamp"].endswith("Z")
    key = public_key(startup_client)
    assert signing.verify_tree_head(key, head) and head["key_id"] == signing.key_id(key)
    signed = json.dumps(
        {"root_hash": head["root_hash"], "timestamp": head["timestamp"], "tree_size": 5},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    key.verify(base64.b64decode(head["signature"]), signed)


def test_the_public_key_is_pem_text_for_anyone(api):
    response = api.get("/api/v1/audit/public-key/")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert text.startswith("-----BEGIN PUBLIC KEY-----")
    assert response["X-Audit-Key-Id"] == signing.key_id(signing.load_public_key(text))


@pytest.fixture
def rotated(settings):
    """The signing key rotated from the test key A to a new key B, A kept in AUDIT_PREVIOUS_PUBLIC_KEYS. (A, B)."""
    before = keys.signing_key()
    after = signing.generate_dev_key()
    settings.AUDIT_SIGNING_KEY = signing.private_key_pem(after)
    settings.AUDIT_PREVIOUS_PUBLIC_KEYS = signing.public_key_pem(before)
    return before, after


def test_the_public_keys_are_listed_for_anyone_current_first(api, rotated):
    before, after = rotated
    response = api.get("/api/v1/audit/public-keys/")
    assert response.status_code == 200
    assert response.json() == [
        {"key_id": signing.key_id(after), "public_key": signing.public_key_pem(after), "current": True},
        {"key_id": signing.key_id(before), "public_key": signing.public_key_pem(before), "current": False},
    ]


def test_without_a_rotation_one_key_is_listed(api):
    assert api.get("/api/v1/audit/public-keys/").json() == [
        {"key_id": keys.key_id(), "public_key": keys.public_key_pem(), "current": True}
    ]


def test_a_previous_public_key_is_served_by_its_key_id(api, rotated):
    before, after = rotated
    # when the previous key is asked for by id
    response = api.get(f"/api/v1/audit/public-key/?key_id={signing.key_id(before)}")
    # then its PEM, with its id in the header
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == signing.public_key_pem(before)
    assert response["X-Audit-Key-Id"] == signing.key_id(before)
    # and without key_id, or with the current key's id, the current key as before
    for query in ("", f"?key_id={signing.key_id(after)}"):
        current = api.get(f"/api/v1/audit/public-key/{query}")
        assert current.content.decode() == signing.public_key_pem(after)
        assert current["X-Audit-Key-Id"] == signing.key_id(after)


def test_an_unknown_key_id_is_404(api, rotated):
    stranger = signing.key_id(signing.generate_dev_key())
    response = api.get(f"/api/v1/audit/public-key/?key_id={stranger}")
    assert response.status_code == 404
    assert response.json()["detail"] == (
        "This exchange has no audit signing key with that key id, current or previous."
    )


@pytest.mark.parametrize("key_id", ["AB" * 32, "ab" * 31, "ab" * 33, "zz" * 32, "ab" * 16 + "%20" + "ab" * 16])
def test_a_malformed_key_id_is_400(api, key_id):
    response = api.get(f"/api/v1/audit/public-key/?key_id={key_id}")
    assert response.status_code == 400
    assert "64 lowercase hex" in " ".join(response.json()["errors"]["key_id"])


def test_old_heads_are_kept_and_listed_newest_first(auditor_client, startup):
    record_for(startup, 6)
    audit_sequence(batch_size=2)
    response = auditor_client.get("/api/v1/audit/tree-heads/?page_size=2")
    body = response.json()
    assert body["count"] == 3 and [h["tree_size"] for h in body["results"]] == [6, 4]
    assert body["next"]
    key = public_key(auditor_client)
    assert all(signing.verify_tree_head(key, h) for h in body["results"])


def test_tree_heads_need_a_login(api):
    assert api.get("/api/v1/audit/tree-head/").status_code == 401
    assert api.get("/api/v1/audit/tree-heads/").status_code == 401
    assert api.get("/api/v1/audit/consistency/?first=0&second=0").status_code == 401


# --- inclusion proofs ---------------------------------------------------------------------------------------------


def test_proofs_verify_for_random_events_and_tree_sizes(auditor_client, startup):
    # given a log of 37 events signed in several batches
    events = record_for(startup, 37)
    audit_sequence(batch_size=9)
    leaves = log_leaves()
    index_of = dict(AuditLeaf.objects.values_list("event_id", "leaf_index"))

    @settings(max_examples=60)
    @given(st.data())
    def check(data):
        event = data.draw(st.sampled_from(events))
        leaf_index = index_of[event.pk]
        size = data.draw(st.integers(min_value=leaf_index + 1, max_value=len(leaves)))
        # when
        response = auditor_client.get(f"/api/v1/audit/events/{event.pk}/proof/?tree_size={size}")
        # then: the served path is the RFC's PATH(m, D[n]) and leads to MTH(D[n])
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"leaf_index", "leaf", "audit_path"}
        assert body["leaf_index"] == leaf_index and body["leaf"].encode() == leaves[leaf_index]
        assert b(body["audit_path"]) == path(leaf_index, leaves[:size])
        leaf_hash = merkle.leaf_hash(body["leaf"].encode())
        assert merkle.verify_inclusion(leaf_hash, leaf_index, size, b(body["audit_path"]), mth(leaves[:size]))

    check()


def test_a_proof_defaults_to_the_newest_head(startup_client, startup):
    events = record_for(startup, 3)
    audit_sequence()
    body = startup_client.get(f"/api/v1/audit/events/{events[1].pk}/proof/").json()
    head = startup_client.get("/api/v1/audit/tree-head/").json()
    leaf_hash = merkle.leaf_hash(body["leaf"].encode())
    assert merkle.verify_inclusion(leaf_hash, 1, 3, b(body["audit_path"]), bytes.fromhex(head["root_hash"]))


def test_who_may_prove_an_event(client_for, startup, auditor_client, issuer_client, startup_client):
    # given an event of the startup, in the log
    event = record_for(startup, 1)[0]
    audit_sequence()
    url = f"/api/v1/audit/events/{event.pk}/proof/"
    other_startup = factories.StartupFactory()
    # then: the organization it concerns (any member, auditors of it too) and platform auditors; others 404
    assert startup_client.get(url).status_code == 200
    assert client_for(factories.member_of(startup, role="auditor")).get(url).status_code == 200
    assert auditor_client.get(url).status_code == 200
    assert issuer_client.get(url).status_code == 404
    assert client_for(factories.member_of(other_startup)).get(url).status_code == 404
    assert startup_client.get("/api/v1/audit/events/999999999/proof/").status_code == 404


def test_an_event_without_an_organization_is_proven_to_auditors_only(auditor_client, startup_client):
    event = audit_record(action="test.system", object_type="thing", object_id="1")
    audit_sequence()
    assert auditor_client.get(f"/api/v1/audit/events/{event.pk}/proof/").status_code == 200
    assert startup_client.get(f"/api/v1/audit/events/{event.pk}/proof/").status_code == 404


def test_an_event_not_in_the_log_yet_is_409(startup_client, startup):
    record_for(startup, 1)
    audit_sequence()
    pending = record_for(startup, 1, prefix="pending")[0]
    response = startup_client.get(f"/api/v1/audit/events/{pending.pk}/proof/")
    assert response.status_code == 409 and "not in the signed log yet" in response.json()["detail"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("tree_size=abc", "valid integer"),
        ("tree_size=0", "greater than or equal to 1"),
        ("tree_size=4", "The newest signed tree has 3 leaves."),
        ("tree_size=1", "The event is leaf 2: a tree of 1 leaves does not hold it."),
        ("tree_size=99999999999999999999999", "The newest signed tree has 3 leaves."),
    ],
)
def test_bad_proof_parameters_are_400_with_field_errors(startup_client, startup, query, message):
    events = record_for(startup, 3)
    audit_sequence()
    response = startup_client.get(f"/api/v1/audit/events/{events[2].pk}/proof/?{query}")
    assert response.status_code == 400, response.content
    assert message in " ".join(response.json()["errors"]["tree_size"])


# --- consistency proofs -------------------------------------------------------------------------------------------


def test_consistency_proofs_verify_between_any_two_sizes(startup_client, startup):
    record_for(startup, 21)
    audit_sequence(batch_size=4)
    leaves = log_leaves()

    @settings(max_examples=60)
    @given(st.integers(min_value=0, max_value=21), st.integers(min_value=0, max_value=21))
    def check(m, n):
        first, second = min(m, n), max(m, n)
        response = startup_client.get(f"/api/v1/audit/consistency/?first={first}&second={second}")
        assert response.status_code == 200, response.content
        served = b(response.json()["proof"])
        assert list(response.json()) == ["proof"]
        if 0 < first < second:
            assert served == proof(first, leaves[:second])
        else:
            assert served == []
        assert merkle.verify_consistency(first, second, served, mth(leaves[:first]), mth(leaves[:second]))

    check()


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("", "first", "required"),
        ("first=1", "second", "required"),
        ("first=x&second=2", "first", "valid integer"),
        ("first=-1&second=2", "first", "greater than or equal to 0"),
        ("first=3&second=2", "first", "Must not be larger than second."),
        ("first=1&second=6", "second", "The newest signed tree has 5 leaves."),
    ],
)
def test_bad_consistency_parameters_are_400_with_field_errors(startup_client, startup, query, field, message):
    record_for(startup, 5)
    audit_sequence()
    response = startup_client.get(f"/api/v1/audit/consistency/?{query}")
    assert response.status_code == 400, response.content
    assert message in " ".join(response.json()["errors"][field])


# --- the verifiable spend export ----------------------------------------------------------------------------------


@pytest.fixture
def spend(startup):
    """Voucher spend of two issuers' programs: a settled booking, a held one and a released one."""
    shanghai = funded_program(city="Shanghai")
    beijing = funded_program(city="Beijing")
    v_sh = issued_voucher(holder=startup, program=shanghai)
    v_bj = issued_voucher(holder=startup, program=beijing)
    booking_settle(booking_id=completed_booking(buyer=startup, vouchers=[v_sh], subtotal="1000.00").pk)
    booking_in("confirmed", buyer=startup, vouchers=[v_sh], subtotal="2000.00", start=factories.next_hour(5))
    released = booking_in("confirmed", buyer=startup, vouchers=[v_bj], subtotal="3000.00", start=factories.next_hour(8))
    redemptions_release(booking=released)
    return {"shanghai": shanghai, "beijing": beijing}


def verifier(tmp_path: Path, client, export: bytes) -> subprocess.CompletedProcess:
    key_file = tmp_path / "exchange-audit.pem"
    key_file.write_bytes(client.get("/api/v1/audit/public-key/").content)
    export_file = tmp_path / "export.json"
    export_file.write_bytes(export)
    return subprocess.run(
        [sys.executable, "-m", "audit.verify", "--public-key", str(key_file), str(export_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def export(client, query: str = "") -> bytes:
    response = client.get(f"/api/v1/audit/export.json{query}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-export-')
    return response.content


def test_the_export_round_trips_through_the_offline_verifier(tmp_path, spend, auditor_client):
    # given the spend in the log
    audit_sequence()
    # when an auditor downloads the export and runs the verifier on it
    document = export(auditor_client, "?group_by=program")
    result = verifier(tmp_path, auditor_client, document)
    # then it passes, and holds the spend events with their proofs and the report
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(document)
    actions = sorted(json.loads(entry["leaf"])["action"] for entry in data["entries"])
    assert actions == ["voucher.capture", "voucher.hold", "voucher.hold", "voucher.hold", "voucher.release"]
    assert data["report"]["group_by"] == "program" and data["pending_event_ids"] == []
    assert "OK: 5 entries proven included, 1 signed tree heads" in result.stdout


def test_the_export_of_an_issuer_holds_its_own_programs_only(tmp_path, spend, client_for):
    audit_sequence()
    shanghai = client_for(factories.member_of(spend["shanghai"].issuer))
    data = json.loads(export(shanghai))
    vouchers = {json.loads(entry["leaf"])["data"]["voucher"] for entry in data["entries"]}
    assert len(data["entries"]) == 3 and len(vouchers) == 1
    assert verifier(tmp_path, shanghai, json.dumps(data).encode()).returncode == 0


def test_an_export_with_an_earlier_head_proves_the_log_only_grew(tmp_path, spend, auditor_client, startup):
    audit_sequence()
    earlier = auditor_client.get("/api/v1/audit/tree-head/").json()["tree_size"]
    record_for(startup, 5, prefix="later")
    audit_sequence()
    data = json.loads(export(auditor_client, f"?previous_tree_size={earlier}"))
    assert [h["tree_size"] for h in data["tree_heads"]] == [earlier, earlier + 5]
    assert data["consistency"][0]["first"] == earlier
    result = verifier(tmp_path, auditor_client, json.dumps(data).encode())
    assert result.returncode == 0, result.stdout
    assert "2 signed tree heads and 1 consistency proofs" in result.stdout


def test_an_export_spanning_a_key_rotation_verifies_with_the_listed_keys(tmp_path, spend, auditor_client, settings):
    # given heads signed by the test key A, then the key rotated to B (A kept as previous) and more heads
    audit_sequence()
    earlier = auditor_client.get("/api/v1/audit/tree-head/").json()["tree_size"]
    before = keys.signing_key()
    settings.AUDIT_SIGNING_KEY = signing.private_key_pem(signing.generate_dev_key())
    settings.AUDIT_PREVIOUS_PUBLIC_KEYS = signing.public_key_pem(before)
    record_for(spend["shanghai"].issuer, 3, prefix="rotated")
    audit_sequence()
    call_command("verify_audit")
    document = export(auditor_client, f"?previous_tree_size={earlier}")
    assert [head["key_id"] for head in json.loads(document)["tree_heads"]] == [signing.key_id(before), keys.key_id()]
    # when an auditor saves every listed key and runs the verifier with them
    listed = auditor_client.get("/api/v1/audit/public-keys/").json()
    key_args = []
    for number, item in enumerate(listed):
        key_file = tmp_path / f"key-{number}.pem"
        key_file.write_text(item["public_key"])
        key_args += ["--public-key", str(key_file)]
    export_file = tmp_path / "export.json"
    export_file.write_bytes(document)
    both = subprocess.run(
        [sys.executable, "-m", "audit.verify", *key_args, str(export_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then it passes; with the current key alone, the old head is named by its key id
    assert both.returncode == 0, both.stdout + both.stderr
    only_current = verifier(tmp_path, auditor_client, document)
    assert only_current.returncode == 1
    assert f"signed by key {signing.key_id(before)}, not by the public key given" in only_current.stdout


def test_export_parameters_are_checked(spend, auditor_client, startup_client):
    audit_sequence()
    bad = auditor_client.get("/api/v1/audit/export.json?previous_tree_size=123456")
    assert bad.status_code == 400 and "previous_tree_size" in bad.json()["errors"]
    bad = auditor_client.get("/api/v1/audit/export.json?since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z")
    assert bad.status_code == 400 and "until" in bad.json()["errors"]
    assert auditor_client.get("/api/v1/audit/export.json?since=yesterday").status_code == 400
    assert startup_client.get("/api/v1/audit/export.json").status_code == 403


def test_an_export_too_large_is_refused(spend, auditor_client, settings):
    audit_sequence()
    settings.AUDIT_EXPORT_MAX_ENTRIES = 2
    response = auditor_client.get("/api/v1/audit/export.json")
    assert response.status_code == 400 and "since" in response.json()["errors"]


@pytest.mark.parametrize("target", ["event", "leaf", "node", "head"])
def test_tampering_is_caught_by_verify_audit_and_by_the_offline_verifier(tmp_path, spend, auditor_client, target):
    # given the spend in the log, and an honest export that verifies
    audit_sequence()
    honest = export(auditor_client)
    assert verifier(tmp_path, auditor_client, honest).returncode == 0
    data = json.loads(honest)
    size = data["tree_heads"][-1]["tree_size"]
    # when one stored row is changed behind the database's back, as the tables' owner could
    if target == "event":  # the amount of a spend event
        tamper(
            "audit_auditevent",
            "UPDATE audit_auditevent SET data = jsonb_set(data, '{amount}', '\"1.00\"') WHERE id = %s",
            [data["entries"][0]["event_id"]],
        )
    elif target == "leaf":  # the leaf next to a spend event's, which that event's audit path carries
        sibling = next(e["leaf_index"] ^ 1 for e in data["entries"] if e["leaf_index"] ^ 1 < size)
        tamper(
            "audit_auditleaf", "UPDATE audit_auditleaf SET leaf_hash = %s WHERE leaf_index = %s", [bytes(32), sibling]
        )
    elif target == "node":  # a stored node of a spend event's audit path
        on_paths = {bytes.fromhex(h) for e in data["entries"] for h in e["audit_path"]}
        node = next(n for n in MerkleNode.objects.order_by("level", "index") if bytes(n.hash) in on_paths)
        tamper(
            "audit_merklenode",
            "UPDATE audit_merklenode SET hash = %s WHERE level = %s AND index = %s",
            [bytes(32), node.level, node.index],
        )
    else:  # the signed head's root
        tamper("audit_treehead", "UPDATE audit_treehead SET root_hash = %s", [bytes(32)])
    # then verify_audit names it …
    with pytest.raises(CommandError, match="Audit log check failed"):
        call_command("verify_audit")
    # … and an export made now no longer verifies offline
    result = verifier(tmp_path, auditor_client, export(auditor_client))
    assert result.returncode == 1, result.stdout
    assert result.stdout.startswith("FAILED: ")

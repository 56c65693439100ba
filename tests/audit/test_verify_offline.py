"""The offline verifier, run as an auditor runs it: ``python -m audit.verify --public-key k.pem export.json`` in a
separate interpreter, on an export built here with the pure modules only (no database)."""

import copy
import itertools
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from audit import merkle, signing
from audit.canonical import canonical_json
from audit.verify import EXPORT_FORMAT, MalformedExport, verify_export

REPO_ROOT = Path(__file__).resolve().parents[2]
LEAF_COUNT = 50
HEAD_SIZES = (7, 20, 32, 50)  # 32 is a power of two: the RFC's consistency special case
FIRST_EVENT_ID = 801
START = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def event_leaf(position: int) -> str:
    """The canonical JSON of a spend event, as the sequencer would put it in the log."""
    event = {
        "id": FIRST_EVENT_ID + position,
        "kind": "voucher.redeemed",
        "organization": f"org-{position % 4}",
        "amount": Decimal("12.50") + position,
        "city": "武汉",
        "created": START + timedelta(minutes=position),
    }
    return canonical_json(event).decode("utf-8")


def build_export(private_key, leaves: list[str] | None = None, *, head_keys: list | None = None) -> dict:
    """50 leaves, a signed head at each of HEAD_SIZES, every leaf proven against the first head that holds it, and
    consistency proofs between consecutive heads. ``head_keys``: the private key signing each head (a key rotation
    between two heads); the export names the last one, as the exchange names its current key."""
    head_keys = head_keys or [private_key] * len(HEAD_SIZES)
    leaves = leaves or [event_leaf(position) for position in range(LEAF_COUNT)]
    store: dict = {}
    rows = merkle.subtree_hashes_to_store(0, [merkle.leaf_hash(leaf.encode()) for leaf in leaves], store.get)
    store.update({(level, index): digest for level, index, digest in rows})

    def get(level, index):
        return store[level, index]

    heads = []
    for number, (size, head_key) in enumerate(zip(HEAD_SIZES, head_keys, strict=True)):
        root_hex = merkle.root(size, get).hex()
        timestamp = (START + timedelta(hours=number)).isoformat().replace("+00:00", "Z")
        heads.append(
            {
                "tree_size": size,
                "root_hash": root_hex,
                "timestamp": timestamp,
                "signature": signing.sign_tree_head(head_key, size, root_hex, timestamp),
                "key_id": signing.key_id(head_key),
            }
        )
    entries = []
    for position, leaf in enumerate(leaves):
        size = next(size for size in HEAD_SIZES if size > position)
        entries.append(
            {
                "event_id": FIRST_EVENT_ID + position,
                "leaf": leaf,
                "leaf_index": position,
                "tree_size": size,
                "audit_path": [digest.hex() for digest in merkle.inclusion_proof(position, size, get)],
            }
        )
    consistency = [
        {"first": first, "second": second, "proof": [d.hex() for d in merkle.consistency_proof(first, second, get)]}
        for first, second in itertools.pairwise(HEAD_SIZES)
    ]
    return {
        "format": EXPORT_FORMAT,
        "key_id": signing.key_id(head_keys[-1]),
        "tree_heads": heads,
        "entries": entries,
        "consistency": consistency,
    }


@pytest.fixture(scope="module")
def private_key():
    return signing.generate_dev_key()


@pytest.fixture(scope="module")
def export(private_key):
    return build_export(private_key)


@pytest.fixture
def key_file(tmp_path, private_key):
    path = tmp_path / "exchange-audit.pem"
    path.write_text(signing.public_key_pem(private_key))
    return path


def run_verifier(tmp_path: Path, key_file: Path | list[Path], export) -> subprocess.CompletedProcess:
    export_file = tmp_path / "export.json"
    if isinstance(export, dict):
        export_file.write_text(json.dumps(export, ensure_ascii=False), encoding="utf-8")
    else:
        export_file.write_bytes(export)
    key_files = key_file if isinstance(key_file, list) else [key_file]
    return run_cli(
        [*itertools.chain.from_iterable(("--public-key", str(path)) for path in key_files), str(export_file)]
    )


def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "audit.verify", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )


def entry_number_of(position: int) -> int:
    return position + 1  # messages number entries from 1


def head_index_of(export: dict, size: int) -> int:
    return next(i for i, head in enumerate(export["tree_heads"]) if head["tree_size"] == size)


# --- an honest export ---------------------------------------------------------------------------------------------


def test_an_honest_export_passes_with_a_one_line_summary(tmp_path, key_file, export):
    result = run_verifier(tmp_path, key_file, export)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: 50 entries proven included, 4 signed tree heads and 3 consistency proofs")
    assert len(result.stdout.strip().splitlines()) == 1
    assert export["tree_heads"][-1]["root_hash"] in result.stdout


def test_verify_export_returns_no_failure_for_an_honest_export(export, private_key):
    assert verify_export(export, private_key.public_key()) == []


def test_the_verifier_runs_without_django():
    code = "import sys, audit.verify; sys.exit(1 if any(m.split('.')[0] == 'django' for m in sys.modules) else 0)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, "importing audit.verify pulled Django in: " + result.stderr


# --- tampering: exit 1 with the first failure in plain words ------------------------------------------------------


def test_an_altered_amount_in_a_leaf_breaks_its_inclusion_proof(tmp_path, key_file, export):
    tampered = copy.deepcopy(export)
    entry = tampered["entries"][24]
    entry["leaf"] = entry["leaf"].replace('"amount":"36.50"', '"amount":"16.50"')
    assert entry["leaf"] != export["entries"][24]["leaf"]
    # when
    result = run_verifier(tmp_path, key_file, tampered)
    # then
    assert result.returncode == 1
    assert result.stdout.strip() == (
        f"FAILED: entry 25 (event {FIRST_EVENT_ID + 24}): inclusion proof does not lead to the signed root of "
        "tree size 32"
    )


def test_a_leaf_that_is_no_longer_canonical_is_reported_as_altered(tmp_path, key_file, export):
    tampered = copy.deepcopy(export)
    tampered["entries"][3]["leaf"] = tampered["entries"][3]["leaf"].replace('"kind":', '"kind": ')
    result = run_verifier(tmp_path, key_file, tampered)
    assert result.returncode == 1
    assert f"FAILED: entry 4 (event {FIRST_EVENT_ID + 3}): leaf was altered" in result.stdout


def test_an_altered_audit_path_hash_is_caught(tmp_path, key_file, export):
    tampered = copy.deepcopy(export)
    path = tampered["entries"][40]["audit_path"]
    path[1] = ("0" if path[1][0] != "0" else "1") + path[1][1:]
    result = run_verifier(tmp_path, key_file, tampered)
    assert result.returncode == 1
    assert result.stdout.strip() == (
        f"FAILED: entry 41 (event {FIRST_EVENT_ID + 40}): inclusion proof does not lead to the signed root of "
        "tree size 50"
    )


def test_an_altered_head_root_fails_its_signature(tmp_path, key_file, export):
    tampered = copy.deepcopy(export)
    head = tampered["tree_heads"][1]
    head["root_hash"] = export["tree_heads"][2]["root_hash"]
    result = run_verifier(tmp_path, key_file, tampered)
    assert result.returncode == 1
    assert result.stdout.strip() == (
        "FAILED: tree head 2 (tree size 20): signature does not verify with the public key (the head was altered)"
    )


def test_a_signature_by_another_key_is_caught(tmp_path, key_file, export):
    tampered = copy.deepcopy(export)
    head = tampered["tree_heads"][2]
    impostor = signing.generate_dev_key()
    head["signature"] = signing.sign_tree_head(impostor, head["tree_size"], head["root_hash"], head["timestamp"])
    result = run_verifier(tmp_path, key_file, tampered)
    assert result.returncode == 1
    assert "FAILED: tree head 3 (tree size 32): signature does not verify" in result.stdout


def test_removing_a_consistency_proof_leaves_heads_unlinked(tmp_path, key_file, export):
    tampered = copy.deepcopy(export)
    del tampered["consistency"][1]  # 20 → 32
    result = run_verifier(tmp_path, key_file, tampered)
    assert result.returncode == 1
    assert result.stdout.strip() == (
        "FAILED: signed tree head of tree size 7 is not linked to the newest head (tree size 50) by verified "
        "consistency proofs, so the export does not show that they belong to one append-only log"
    )


def test_removing_a_head_that_a_consistency_proof_needs_is_caught(tmp_path, key_file, export):
    # given an export whose head of size 20 is gone, along with the entries proven against it
    tampered = copy.deepcopy(export)
    del tampered["tree_heads"][head_index_of(export, 20)]
    tampered["entries"] = [entry for entry in tampered["entries"] if entry["tree_size"] != 20]
    # when
    result = run_verifier(tmp_path, key_file, tampered)
    # then
    assert result.returncode == 1
    assert result.stdout.strip() == (
        "FAILED: consistency proof 1 (tree size 7 to 20): no validly signed tree head of tree size 20 in the export"
    )


def test_a_forked_log_is_caught_even_when_every_head_is_signed(tmp_path, key_file, export, private_key):
    # given a second log that shares the first 25 events, then differs: its heads are genuinely signed too
    forked_leaves = [event_leaf(position) for position in range(LEAF_COUNT)]
    forked_leaves[25] = event_leaf(25).replace('"amount":"37.50"', '"amount":"7.50"')
    fork = build_export(private_key, forked_leaves)
    mixed = copy.deepcopy(export)
    mixed["tree_heads"][3] = fork["tree_heads"][3]
    mixed["entries"][32:] = fork["entries"][32:]  # the entries proven against the head of size 50
    mixed["consistency"][2] = fork["consistency"][2]
    # when
    result = run_verifier(tmp_path, key_file, mixed)
    # then every signature and inclusion proof holds, but 32 → 50 does not
    assert result.returncode == 1
    assert result.stdout.strip() == (
        "FAILED: consistency proof 3 (tree size 32 to 50): the signed tree of size 50 does not extend the signed "
        "tree of size 32"
    )


def test_two_signed_roots_for_one_size_are_reported_as_a_fork(export, private_key):
    forked = copy.deepcopy(export)
    other_root = "ab" * 32
    forked["tree_heads"].append(
        {
            **forked["tree_heads"][0],
            "root_hash": other_root,
            "signature": signing.sign_tree_head(private_key, 7, other_root, forked["tree_heads"][0]["timestamp"]),
        }
    )
    failures = verify_export(forked, private_key.public_key())
    assert failures == [
        "tree head 5 (tree size 7): tree head 1 signs the same tree size with another root (the log forked)"
    ]


def test_the_wrong_public_key_is_named(tmp_path, export):
    stranger = signing.generate_dev_key()
    key_file = tmp_path / "stranger.pem"
    key_file.write_text(signing.public_key_pem(stranger))
    result = run_verifier(tmp_path, key_file, export)
    assert result.returncode == 1
    assert result.stdout.strip() == (
        f"FAILED: the export names signing key {export['key_id']}, but the public key given has key id "
        f"{signing.key_id(stranger)}"
    )


def test_verify_export_lists_every_failure_in_check_order(export, private_key):
    tampered = copy.deepcopy(export)
    tampered["entries"][0]["leaf"] += " "
    tampered["entries"][45]["audit_path"][0] = "zz" * 32
    failures = verify_export(tampered, private_key.public_key())
    assert failures == [
        f"entry 1 (event {FIRST_EVENT_ID}): leaf was altered (it is not the canonical JSON the log hashes)",
        f"entry 46 (event {FIRST_EVENT_ID + 45}): audit path holds a value that is not a 64-character lowercase "
        "hex hash",
    ]


# --- a key rotation: heads of the previous key and of the current one in one export ------------------------------


@pytest.fixture(scope="module")
def rotated_keys(private_key):
    """(A, B): the heads of 7 and 20 leaves signed by A, then the key rotated: those of 32 and 50 by B."""
    return private_key, signing.generate_dev_key()


@pytest.fixture(scope="module")
def rotated_export(rotated_keys):
    before, after = rotated_keys
    return build_export(before, head_keys=[before, before, after, after])


def key_files(tmp_path: Path, *private_keys) -> list[Path]:
    paths = []
    for number, key in enumerate(private_keys):
        path = tmp_path / f"key-{number}.pem"
        path.write_text(signing.public_key_pem(key))
        paths.append(path)
    return paths


def test_an_export_spanning_a_rotation_passes_with_both_keys(tmp_path, rotated_keys, rotated_export):
    before, after = rotated_keys
    # when the current key and the previous one are given (in either order)
    for order in ((after, before), (before, after)):
        result = run_verifier(tmp_path, key_files(tmp_path, *order), rotated_export)
        # then every head verifies with the key it names
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith("OK: 50 entries proven included, 4 signed tree heads")
        assert f"verified with keys {signing.key_id(after)}, {signing.key_id(before)};" in result.stdout
    assert verify_export(rotated_export, [after.public_key(), before.public_key()]) == []


def test_an_export_spanning_a_rotation_fails_with_the_current_key_only_naming_the_previous(
    tmp_path, rotated_keys, rotated_export
):
    before, after = rotated_keys
    result = run_verifier(tmp_path, key_files(tmp_path, after), rotated_export)
    assert result.returncode == 1
    assert result.stdout.strip() == (
        f"FAILED: tree head 1 (tree size 7): signed by key {signing.key_id(before)}, not by the public key given"
    )


def test_a_head_of_a_key_not_given_is_named_among_several_keys(rotated_keys, rotated_export):
    before, after = rotated_keys
    stranger = signing.generate_dev_key()
    failures = verify_export(rotated_export, [after.public_key(), stranger.public_key()])
    assert failures[0] == (
        f"tree head 1 (tree size 7): signed by key {signing.key_id(before)}, not by any of the public keys given"
    )


def test_the_export_must_name_one_of_the_keys_given(tmp_path, rotated_keys, rotated_export):
    before, after = rotated_keys
    stranger = signing.generate_dev_key()
    result = run_verifier(tmp_path, key_files(tmp_path, before, stranger), rotated_export)
    assert result.returncode == 1
    assert result.stdout.strip() == (
        f"FAILED: the export names signing key {signing.key_id(after)}, but none of the 2 public keys given has that "
        f"key id (they have {signing.key_id(before)}, {signing.key_id(stranger)})"
    )


def test_a_tampered_head_of_the_previous_key_is_caught(tmp_path, rotated_keys, rotated_export):
    tampered = copy.deepcopy(rotated_export)
    tampered["tree_heads"][1]["root_hash"] = rotated_export["tree_heads"][2]["root_hash"]
    result = run_verifier(tmp_path, key_files(tmp_path, *reversed(rotated_keys)), tampered)
    assert result.returncode == 1
    assert result.stdout.strip() == (
        "FAILED: tree head 2 (tree size 20): signature does not verify with the public key (the head was altered)"
    )


def test_a_head_relabelled_with_another_given_key_id_is_caught(rotated_keys, rotated_export):
    # given A's head of size 20 claiming to be B's: B is given, but the signature is A's
    before, after = rotated_keys
    tampered = copy.deepcopy(rotated_export)
    tampered["tree_heads"][1]["key_id"] = signing.key_id(after)
    failures = verify_export(tampered, [after.public_key(), before.public_key()])
    assert failures[0] == (
        "tree head 2 (tree size 20): signature does not verify with the public key (the head was altered)"
    )


# --- unreadable input: exit 2, a message, no traceback ------------------------------------------------------------


def malformed_exports(export: dict) -> dict[str, bytes]:
    def changed(**fields) -> bytes:
        return json.dumps({**export, **fields}).encode()

    without_heads = {key: value for key, value in export.items() if key != "tree_heads"}
    entry_without_leaf = {key: value for key, value in export["entries"][0].items() if key != "leaf"}
    return {
        "not JSON": b'{"format": "gpux-audit-export/1", ',
        "not UTF-8": b"\xff\xfe{}",
        "a list": b"[]",
        "another format": changed(format="gpux-audit-export/0"),
        "no tree heads": json.dumps(without_heads).encode(),
        "an entry without leaf": changed(entries=[entry_without_leaf]),
        "a string tree size": changed(consistency=[{"first": "7", "second": 20, "proof": []}]),
        "a float leaf index": json.dumps(export).replace('"leaf_index": 3,', '"leaf_index": 3.0,').encode(),
        "a duplicate key": b'{"format": "gpux-audit-export/1", "format": "gpux-audit-export/1"}',
        "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    }


@pytest.mark.parametrize(
    "case",
    [
        "not JSON",
        "not UTF-8",
        "a list",
        "another format",
        "no tree heads",
        "an entry without leaf",
        "a string tree size",
        "a float leaf index",
        "a duplicate key",
        "deep nesting",
    ],
)
def test_a_malformed_export_exits_2_with_a_message(tmp_path, key_file, export, case):
    result = run_verifier(tmp_path, key_file, malformed_exports(export)[case])
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_verify_export_raises_on_a_malformed_export(private_key):
    with pytest.raises(MalformedExport, match="tree_heads"):
        no_heads = {"format": EXPORT_FORMAT, "key_id": "x", "entries": [], "consistency": []}
        verify_export(no_heads, private_key.public_key())


@pytest.mark.parametrize("problem", ["missing export", "missing key", "bad key", "bad second key"])
def test_unreadable_files_exit_2(tmp_path, key_file, export, problem):
    export_file = tmp_path / "export.json"
    export_file.write_text(json.dumps(export))
    if problem == "missing export":
        export_file = tmp_path / "nowhere.json"
    if problem == "missing key":
        key_file = tmp_path / "nowhere.pem"
    if problem == "bad key":
        key_file.write_text("-----BEGIN PUBLIC KEY-----\nnonsense\n-----END PUBLIC KEY-----\n")
    second = []
    if problem == "bad second key":
        bad = tmp_path / "bad.pem"
        bad.write_text("not a key")
        second = ["--public-key", str(bad)]
    result = run_cli(["--public-key", str(key_file), *second, str(export_file)])
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr

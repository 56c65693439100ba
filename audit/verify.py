"""Offline verifier of an audit export: checks, with nothing but the exchange's public keys, that the records an
auditor was shown are exactly those the exchange committed to in its signed, append-only Merkle log.

Usage (needs Python 3.11+ and ``pip install cryptography``; no Django, no database, no network)::

    python -m audit.verify --public-key exchange-audit.pem export.json
    python -m audit.verify --public-key current.pem --public-key previous.pem export.json

Run it from a copy of the repository, or of just ``audit/__init__.py``, ``audit/canonical.py``, ``audit/merkle.py``,
``audit/signing.py`` and ``audit/verify.py``. A public key is the PEM that ``GET /api/v1/audit/public-key/`` serves
(base64 of the raw 32-byte key works too). The exchange may rotate its signing key: heads signed before a rotation
carry the previous key's id, so give every key the export's heads name (``--public-key`` once per key; all of them,
current first, at ``GET /api/v1/audit/public-keys/``, one by id at ``GET /api/v1/audit/public-key/?key_id=<hex>``).

Exit status: 0 when every check passes (one summary line on stdout); 1 when a check fails (the FIRST failure, in
plain words, on stdout); 2 when the key or the export cannot be read or is not an export of this format (a message on
stderr, never a traceback).

Export format ``gpux-audit-export/1`` (one JSON object; hashes are 64 lowercase hex characters)::

    {
      "format": "gpux-audit-export/1",
      "key_id": "<key id of the current signing key: lowercase hex SHA-256 of the raw 32-byte Ed25519 public key>",
      "tree_heads": [
        {"tree_size": 1200, "root_hash": "<hex>", "timestamp": "2026-12-02T10:00:00Z",
         "signature": "<base64 Ed25519 signature>", "key_id": "<hex>"}
      ],
      "entries": [
        {"event_id": 812, "leaf": "<the event's canonical JSON, as a string>", "leaf_index": 811,
         "tree_size": 1200, "audit_path": ["<hex>", ...]}
      ],
      "consistency": [
        {"first": 1000, "second": 1200, "proof": ["<hex>", ...]}
      ]
    }

A tree head's signature covers ``canonical_json({"root_hash", "timestamp", "tree_size"})`` (see ``audit.signing``).
An entry's leaf hash is ``SHA-256(0x00 ‖ UTF-8 leaf)``; ``audit_path`` is its RFC 9162 inclusion proof in the tree of
``tree_size`` leaves; ``consistency`` holds RFC 9162 consistency proofs between two heads' tree sizes. ``event_id`` is
a label for messages: what is proven is the leaf itself.

Checks, in the order failures are reported (entries, heads and proofs are numbered from 1 in messages):
1. the export's ``key_id`` is the key id of one of the given public keys;
2. every tree head's ``key_id`` names one of the given public keys and its signature verifies with that key (heads
   signed before a key rotation name the previous key); no two signed heads of one size differ in root (that would
   be a forked log);
3. every entry's leaf is canonical JSON (parsing and re-encoding it gives the same bytes; otherwise the leaf was
   altered), a signed head of its ``tree_size`` is in the export, and its audit path leads from the leaf to that
   head's root;
4. every consistency proof joins two signed heads of the export and verifies;
5. every signed head is linked to the newest (largest) head by verified consistency proofs, so all the heads — and
   the entries proven against them — belong to one append-only log.
"""

import argparse
import json
import re
import sys
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.canonical import is_canonical_json
from audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from audit.signing import key_id, load_public_key, verify_tree_head

__all__ = ["EXPORT_FORMAT", "MalformedExport", "check_export_shape", "main", "parse_export", "verify_export"]

EXPORT_FORMAT = "gpux-audit-export/1"
EXIT_OK, EXIT_FAILED, EXIT_UNREADABLE = 0, 1, 2

_HASH_HEX = re.compile(r"[0-9a-f]{64}")
_HEAD_FIELDS = {"tree_size": int, "root_hash": str, "timestamp": str, "signature": str, "key_id": str}
_ENTRY_FIELDS = {"event_id": (int, str), "leaf": str, "leaf_index": int, "tree_size": int, "audit_path": list}
_CONSISTENCY_FIELDS = {"first": int, "second": int, "proof": list}
_LISTS = (("tree_heads", _HEAD_FIELDS), ("entries", _ENTRY_FIELDS), ("consistency", _CONSISTENCY_FIELDS))


class MalformedExport(ValueError):
    """The document is not a ``gpux-audit-export/1`` export (wrong format tag, missing field, wrong JSON type)."""


# --- reading ------------------------------------------------------------------------------------------------------


def parse_export(text: str) -> dict:
    """Parse an export's JSON text and check its shape.

    Raises ``MalformedExport`` when the text is not JSON, repeats a key in one object (two readers could see two
    different exports), or is not shaped as the module docstring says.
    """
    try:
        data = json.loads(
            text, object_pairs_hook=_refuse_duplicate_keys, parse_float=Decimal, parse_constant=_refuse_constant
        )
    except RecursionError:
        raise MalformedExport("the export is nested too deeply to be an audit export") from None
    except ValueError as error:
        raise MalformedExport(f"the export is not valid JSON: {error}") from None
    check_export_shape(data)
    return data


def check_export_shape(data) -> None:
    """Raise ``MalformedExport`` naming the first field that is missing or of the wrong JSON type."""
    if not isinstance(data, dict):
        raise MalformedExport("the export must be a JSON object")
    if data.get("format") != EXPORT_FORMAT:
        raise MalformedExport(f"not a {EXPORT_FORMAT} export (format is {data.get('format')!r})")
    _require_type(data.get("key_id"), str, "key_id")
    for name, fields in _LISTS:
        items = data.get(name)
        _require_type(items, list, name)
        for number, item in enumerate(items, start=1):
            _check_object(item, fields, f"{name}[{number}]")
    for number, entry in enumerate(data["entries"], start=1):
        _require_strings(entry["audit_path"], f"entries[{number}].audit_path")
    for number, item in enumerate(data["consistency"], start=1):
        _require_strings(item["proof"], f"consistency[{number}].proof")


def _check_object(item, fields: dict, where: str) -> None:
    if not isinstance(item, dict):
        raise MalformedExport(f"{where} must be a JSON object")
    for field, expected in fields.items():
        _require_type(item.get(field), expected, f"{where}.{field}")


def _require_type(value, expected, where: str) -> None:
    # JSON true/false parse as bool, an int subclass: a size or index must be a real number.
    if value is None or isinstance(value, bool) or not isinstance(value, expected):
        raise MalformedExport(f"{where} is missing or is not {_type_words(expected)}")


def _require_strings(values: list, where: str) -> None:
    if not all(isinstance(value, str) for value in values):
        raise MalformedExport(f"{where} must be a list of hex strings")


def _type_words(expected) -> str:
    names = {int: "an integer", str: "a string", list: "a list", dict: "an object"}
    if isinstance(expected, tuple):
        return " or ".join(names[kind] for kind in expected)
    return names[expected]


def _refuse_duplicate_keys(pairs: list) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} appears twice in one object")
        result[key] = value
    return result


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


# --- verifying ----------------------------------------------------------------------------------------------------


def verify_export(data: dict, public_keys: Ed25519PublicKey | Iterable[Ed25519PublicKey]) -> list[str]:
    """Every failed check of an export, in the order of the module docstring; an empty list means all passed.

    ``public_keys``: one key, or the exchange's keys (current and previous); each head is checked against the one
    its ``key_id`` names. Raises ``MalformedExport`` when ``data`` is not shaped as an export (see
    ``check_export_shape``).
    """
    check_export_shape(data)
    if isinstance(public_keys, Ed25519PublicKey):
        public_keys = [public_keys]
    given = {key_id(public_key): public_key for public_key in public_keys}
    failures = _export_key_failures(data["key_id"], given)
    signed_roots, head_failures = _signed_roots(data["tree_heads"], given)
    failures += head_failures
    if not signed_roots and not head_failures:
        failures.append("the export has no signed tree head, so nothing in it is proven")
    for number, entry in enumerate(data["entries"], start=1):
        failures += _entry_failures(number, entry, signed_roots)
    for number, item in enumerate(data["consistency"], start=1):
        failures += _consistency_failures(number, item, signed_roots)
    failures += _unlinked_head_failures(data["consistency"], signed_roots)
    return failures


def _export_key_failures(export_key_id: str, given: dict[str, Ed25519PublicKey]) -> list[str]:
    if export_key_id in given:
        return []
    named = f"the export names signing key {_printable(export_key_id)}"
    if len(given) == 1:
        return [f"{named}, but the public key given has key id {next(iter(given))}"]
    return [f"{named}, but none of the {len(given)} public keys given has that key id (they have {', '.join(given)})"]


def _signed_roots(heads: list[dict], given: dict[str, Ed25519PublicKey]):
    """Map tree size → root bytes of the heads whose signature verifies with the given key they name, and the
    failures of the others."""
    roots: dict[int, bytes] = {}
    first_head_of_size: dict[int, int] = {}
    failures = []
    not_given = "not by the public key given" if len(given) == 1 else "not by any of the public keys given"
    for number, head in enumerate(heads, start=1):
        size = head["tree_size"]
        label = f"tree head {number} (tree size {size})"
        public_key = given.get(head["key_id"])
        if public_key is None:
            failures.append(f"{label}: signed by key {_printable(head['key_id'])}, {not_given}")
        elif not verify_tree_head(public_key, head):
            failures.append(f"{label}: signature does not verify with the public key (the head was altered)")
        elif size in roots and roots[size] != bytes.fromhex(head["root_hash"]):
            failures.append(
                f"{label}: tree head {first_head_of_size[size]} signs the same tree size with another root "
                "(the log forked)"
            )
        elif size not in roots:
            roots[size] = bytes.fromhex(head["root_hash"])
            first_head_of_size[size] = number
    return roots, failures


def _entry_failures(number: int, entry: dict, signed_roots: dict[int, bytes]) -> list[str]:
    label = f"entry {number} (event {_printable(entry['event_id'])})"
    size, index = entry["tree_size"], entry["leaf_index"]
    if not is_canonical_json(entry["leaf"]):
        return [f"{label}: leaf was altered (it is not the canonical JSON the log hashes)"]
    if size not in signed_roots:
        return [f"{label}: no validly signed tree head of tree size {size} in the export to prove it against"]
    if not 0 <= index < size:
        return [f"{label}: leaf index {index} is not in a tree of size {size}"]
    path = _hashes(entry["audit_path"])
    if path is None:
        return [f"{label}: audit path holds a value that is not a 64-character lowercase hex hash"]
    if not verify_inclusion(leaf_hash(entry["leaf"].encode("utf-8")), index, size, path, signed_roots[size]):
        return [f"{label}: inclusion proof does not lead to the signed root of tree size {size}"]
    return []


def _consistency_failures(number: int, item: dict, signed_roots: dict[int, bytes]) -> list[str]:
    first, second = item["first"], item["second"]
    label = f"consistency proof {number} (tree size {first} to {second})"
    for size in (first, second):
        if size not in signed_roots:
            return [f"{label}: no validly signed tree head of tree size {size} in the export"]
    proof = _hashes(item["proof"])
    if proof is None:
        return [f"{label}: proof holds a value that is not a 64-character lowercase hex hash"]
    if not verify_consistency(first, second, proof, signed_roots[first], signed_roots[second]):
        return [f"{label}: the signed tree of size {second} does not extend the signed tree of size {first}"]
    return []


def _unlinked_head_failures(consistency: list[dict], signed_roots: dict[int, bytes]) -> list[str]:
    """Heads not joined to the newest head by a chain of verified consistency proofs.

    Two heads that each extend a third may still have forked from each other, so every head must reach the
    newest one: then each is a prefix of it, and all of them are prefixes of one another.
    """
    if not signed_roots:
        return []
    newest = max(signed_roots)
    successors: dict[int, set[int]] = {}
    for item in consistency:
        first, second = item["first"], item["second"]
        if not _consistency_failures(0, item, signed_roots) and first < second:
            successors.setdefault(first, set()).add(second)
    linked = {newest}
    for size in sorted(signed_roots, reverse=True):
        if successors.get(size, set()) & linked:
            linked.add(size)
    return [
        f"signed tree head of tree size {size} is not linked to the newest head (tree size {newest}) by verified "
        "consistency proofs, so the export does not show that they belong to one append-only log"
        for size in sorted(signed_roots)
        if size not in linked
    ]


def _printable(label: int | str) -> str:
    # An event id is the exporter's text: a newline in it must not split the one-line verdict.
    text = str(label)
    return text if text.isprintable() else repr(text)


def _hashes(values: list[str]) -> list[bytes] | None:
    if not all(_HASH_HEX.fullmatch(value) for value in values):
        return None
    return [bytes.fromhex(value) for value in values]


# --- command line -------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the verifier; returns the exit status (0 all checks pass, 1 a check failed, 2 unreadable input)."""
    args = _argument_parser().parse_args(argv)
    public_keys = []
    for path in args.public_key:
        try:
            public_keys.append(load_public_key(_read(path, "public key")))
        except ValueError as error:
            return _unreadable(f"the public key {path} cannot be used: {error}")
    try:
        data = parse_export(_read(args.export, "export").decode("utf-8"))
    except UnicodeDecodeError:
        return _unreadable(f"{args.export} is not UTF-8 text")
    except ValueError as error:
        return _unreadable(f"{args.export}: {error}")
    failures = verify_export(data, public_keys)
    if failures:
        print(f"FAILED: {failures[0]}")
        return EXIT_FAILED
    print(_summary(data))
    return EXIT_OK


def _argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m audit.verify",
        description="Verify an audit export offline against the exchange's Ed25519 public keys.",
    )
    parser.add_argument(
        "--public-key",
        required=True,
        action="append",
        type=Path,
        help="PEM file of an audit public key of the exchange; repeat it for each key the export's heads name (the "
        "current key and, after a rotation, the previous ones)",
    )
    parser.add_argument("export", type=Path, help=f"{EXPORT_FORMAT} JSON file")
    return parser


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read the {what} file: {error.strerror or error}") from None


def _unreadable(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_UNREADABLE


def _summary(data: dict) -> str:
    newest = max(data["tree_heads"], key=lambda head: head["tree_size"])
    signers = list(dict.fromkeys([data["key_id"], *(head["key_id"] for head in data["tree_heads"])]))
    return (
        f"OK: {len(data['entries'])} entries proven included, {len(data['tree_heads'])} signed tree heads "
        f"and {len(data['consistency'])} consistency proofs verified with key{'s' if len(signers) > 1 else ''} "
        f"{', '.join(signers)}; newest tree size {newest['tree_size']}, root {newest['root_hash']}"
    )


if __name__ == "__main__":
    sys.exit(main())

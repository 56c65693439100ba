"""The leaf of an audit event: the exact bytes the Merkle tree hashes (``SHA-256(0x00 ‖ leaf)``).

Pure stdlib (no Django): what an auditor re-derives from an event is fixed here, and nowhere else.

A leaf is ``audit.canonical.canonical_json`` (UTF-8, keys sorted, no whitespace) of an object with exactly these
nine keys, read from the stored event row:

======================  ============================================================================================
``id``                  the event's id (integer)
``created_at``          when it was recorded, UTC, as the API writes it: ``"2026-12-02T10:00:00.250000Z"``
                        (microseconds only when non-zero)
``actor``               the acting user's id (integer), ``null`` for the system (sweeps, settlement, sequencer)
``organization``        the id of the organization the event concerns (integer) or ``null``
``action``              e.g. ``"voucher.capture"``
``object_type``         e.g. ``"vouchers.redemption"``
``object_id``           the object's id as a string
``data``                the event's JSON data, as stored (PostgreSQL ``jsonb``): objects, arrays, strings,
                        integers, booleans and ``null`` as they are; a number with a fraction or an exponent is
                        written as a string of its decimal text (``jsonb`` keeps ``1.50`` as ``"1.50"``; amounts are
                        strings already), so that no verifier ever rounds through a float
``ip``                  the client address as text (``"203.0.113.7"``, ``"2001:db8::1"``) or ``null``
======================  ============================================================================================
"""

import datetime as dt
import json
from decimal import Decimal

__all__ = ["LEAF_FIELDS", "event_leaf", "utc_text"]

LEAF_FIELDS = ("id", "created_at", "actor", "organization", "action", "object_type", "object_id", "data", "ip")


def event_leaf(
    *,
    id: int,
    created_at: dt.datetime,
    actor: int | None,
    organization: int | None,
    action: str,
    object_type: str,
    object_id: str,
    data_json: str,
    ip: str | None,
) -> bytes:
    """The canonical JSON bytes of an event's leaf. ``data_json`` is the stored JSON text of ``data``.

    The same bytes as ``audit.canonical.canonical_json`` of the object above with ``data`` parsed with fractions as
    ``Decimal`` (tests hold the two equal), written directly: every value is already a plain JSON type here (a
    fraction becomes its ``Decimal`` text at parsing), so the sequencer skips ``canonical_json``'s type walk.
    Raises ``ValueError`` for a naive ``created_at`` or data that is not JSON.
    """
    leaf = {
        "id": id,
        "created_at": utc_text(created_at),
        "actor": actor,
        "organization": organization,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "data": json.loads(data_json, parse_float=_decimal_text, parse_constant=_refuse_constant),
        "ip": ip,
    }
    return json.dumps(leaf, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def utc_text(moment: dt.datetime) -> str:
    """An aware datetime as canonical JSON writes it (UTC ISO 8601 ending in ``Z``); ``ValueError`` when naive."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetimes are not allowed in canonical JSON: give an aware (UTC) datetime")
    return moment.astimezone(dt.UTC).isoformat().removesuffix("+00:00") + "Z"


def _decimal_text(text: str) -> str:
    value = Decimal(text)
    if not value.is_finite():
        raise ValueError(f"{text} is not a finite number")
    return format(value, "f")  # as canonical_json writes a Decimal


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not allowed in canonical JSON")

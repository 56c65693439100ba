"""Canonical JSON: the one byte form of an audit event (a Merkle leaf) and of a signed tree head.

Pure stdlib, no Django: the offline verifier imports it on an auditor's laptop.

The form, fixed because every leaf hash and signature depends on it:
- UTF-8 bytes, object keys sorted (by code point, as ``json.dumps(sort_keys=True)``), separators ``","`` and ``":"``
  (no whitespace), non-ASCII characters written as themselves (``ensure_ascii=False``).
- ``str``, ``int``, ``bool``, ``None``, ``dict`` (``str`` keys only), ``list`` and ``tuple`` (arrays) as JSON has them.
- ``Decimal`` → a JSON string in fixed-point notation, exactly as given (``Decimal("12.50")`` → ``"12.50"``, never
  ``"12.5"``; ``Decimal("1E+2")`` → ``"100"``), as DRF's ``DecimalField`` renders amounts.
- aware ``datetime`` → a JSON string in ISO 8601, converted to UTC, written the way DRF's ``DateTimeField`` returns it
  (``datetime.isoformat()`` with ``+00:00`` replaced by ``Z``): ``"2026-12-02T10:00:00Z"``, microseconds
  ``"2026-12-02T10:00:00.250000Z"`` only when non-zero. ``date`` → ``"2026-12-02"``; ``UUID`` → its hyphenated string.
- refused: ``float`` (money is never float; NaN and infinities with it), ``Decimal`` NaN/infinity, naive datetimes,
  non-string keys and every other type.
"""

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

__all__ = ["canonical_json", "is_canonical_json", "parse_canonical_json"]


def canonical_json(obj) -> bytes:
    """Return the canonical JSON bytes of ``obj`` (see the module docstring for the form).

    Raises ``TypeError`` for a float, a non-string object key or an unsupported type; ``ValueError`` for a naive
    datetime, a non-finite Decimal or a string that cannot be UTF-8 encoded (a lone surrogate).
    """
    plain = _to_plain(obj)
    text = json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def parse_canonical_json(text: str):
    """Parse JSON text as a verifier does: numbers with a fraction or exponent come back as ``Decimal`` (so that
    re-encoding cannot silently round them), and the constants NaN/Infinity are refused with ``ValueError``.

    Raises ``ValueError`` (``json.JSONDecodeError`` included) when ``text`` is not JSON.
    """
    return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)


def is_canonical_json(text: str) -> bool:
    """True when ``text`` is exactly the canonical encoding of the JSON it contains.

    False for anything else (whitespace, unsorted or duplicate keys, escaped non-ASCII, numbers with a fraction —
    amounts are strings —, invalid JSON); never raises on a ``str``.
    """
    if not isinstance(text, str):
        return False
    try:
        parsed = parse_canonical_json(text)
        return canonical_json(parsed) == text.encode("utf-8")
    except (ValueError, TypeError, RecursionError):
        return False


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not allowed in canonical JSON")


def _to_plain(value):
    """Convert ``value`` into the JSON types ``json.dumps`` writes without help, refusing what must not be signed."""
    # bool is checked before int because it is an int subclass; float before anything that could accept it.
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, float):
        raise TypeError("floats are not allowed in canonical JSON (money is never float): use Decimal or int")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, datetime):
        return _datetime_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {_key_text(key): _to_plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_to_plain(item) for item in value]
    raise TypeError(f"{type(value).__name__} cannot be written as canonical JSON")


def _key_text(key) -> str:
    # json.dumps would turn 1 and "1" into the same key: two different objects, one encoding.
    if not isinstance(key, str):
        raise TypeError(f"canonical JSON object keys must be str, not {type(key).__name__}")
    return key


def _decimal_text(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"Decimal {value} is not finite and cannot be written as canonical JSON")
    # "f" keeps the exponent given (12.50 stays 12.50) and never writes scientific notation (1E+2 → 100).
    return format(value, "f")


def _datetime_text(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetimes are not allowed in canonical JSON: give an aware (UTC) datetime")
    # In UTC, isoformat() always ends in "+00:00"; DRF writes that offset as "Z".
    return value.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"

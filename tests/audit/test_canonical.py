"""audit.canonical: the one byte form of an audit leaf — sorted, compact UTF-8 JSON, amounts and times as the API
writes them, floats refused."""

import json
import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rest_framework import serializers

from audit.canonical import canonical_json, is_canonical_json, parse_canonical_json


def test_keys_are_sorted_at_every_depth_without_whitespace():
    event = {"b": 1, "a": {"z": [3, {"y": None, "x": True}], "m": "v"}}
    assert canonical_json(event) == b'{"a":{"m":"v","z":[3,{"x":true,"y":null}]},"b":1}'


def test_non_ascii_is_written_as_utf8_not_escaped():
    assert canonical_json({"city": "武汉"}) == '{"city":"武汉"}'.encode()
    assert b"\\u" not in canonical_json({"city": "武汉"})


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Decimal("12.50"), "12.50"),
        (Decimal("0.00"), "0.00"),
        (Decimal("-3.1400"), "-3.1400"),
        (Decimal("1E+2"), "100"),
        (Decimal("1E-7"), "0.0000001"),
        (Decimal("123456789012.3456"), "123456789012.3456"),
    ],
)
def test_decimals_become_fixed_point_strings_exactly_as_given(amount, text):
    assert canonical_json({"amount": amount}) == f'{{"amount":"{text}"}}'.encode()


def test_decimal_amounts_match_what_drf_renders():
    field = serializers.DecimalField(max_digits=14, decimal_places=2)
    for amount in (Decimal("12.50"), Decimal("0.10"), Decimal("-7.00"), Decimal("99999999.99")):
        assert json.loads(canonical_json(amount)) == field.to_representation(amount)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 12, 2, 10, 0, tzinfo=UTC), "2026-12-02T10:00:00Z"),
        (datetime(2026, 12, 2, 18, 0, tzinfo=ZoneInfo("Asia/Shanghai")), "2026-12-02T10:00:00Z"),
        (datetime(2026, 12, 2, 10, 0, 0, 250000, tzinfo=UTC), "2026-12-02T10:00:00.250000Z"),
        (datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=-5))), "2026-01-01T05:30:00Z"),
    ],
)
def test_datetimes_become_utc_iso8601_with_z(moment, text):
    assert canonical_json(moment) == f'"{text}"'.encode()


def test_datetimes_match_what_drf_renders_in_utc():
    # The project's TIME_ZONE is UTC, so DRF's DateTimeField answers in UTC with "Z".
    field = serializers.DateTimeField()
    for moment in (
        datetime(2026, 12, 2, 10, 0, tzinfo=UTC),
        datetime(2026, 12, 2, 10, 0, 0, 123456, tzinfo=UTC),
        datetime(2026, 12, 2, 18, 0, tzinfo=ZoneInfo("Asia/Shanghai")),
    ):
        assert json.loads(canonical_json(moment)) == field.to_representation(moment)


def test_dates_uuids_ints_and_bools_keep_their_json_form():
    value = {
        "day": date(2026, 12, 2),
        "id": UUID("12345678-1234-5678-1234-567812345678"),
        "big": 10**20,
        "flag": False,
        "items": (1, 2),
    }
    assert canonical_json(value) == (
        b'{"big":100000000000000000000,"day":"2026-12-02","flag":false,'
        b'"id":"12345678-1234-5678-1234-567812345678","items":[1,2]}'
    )


@pytest.mark.parametrize("value", [1.5, 0.0, math.nan, math.inf, {"amount": 12.5}, [Decimal("1"), 2.0]])
def test_floats_are_refused_money_is_never_float(value):
    with pytest.raises(TypeError, match="float"):
        canonical_json(value)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (Decimal("NaN"), ValueError),
        (Decimal("Infinity"), ValueError),
        (datetime(2026, 12, 2, 10, 0), ValueError),  # naive
        ({1: "one"}, TypeError),  # would collide with {"1": ...}
        ({"tags": {"a", "b"}}, TypeError),
        (b"raw bytes", TypeError),
        ("\ud800", ValueError),  # a lone surrogate has no UTF-8 form
    ],
)
def test_values_without_one_canonical_form_are_refused(value, error):
    with pytest.raises(error):
        canonical_json(value)


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1, "b":2}',  # whitespace
        '{"b":2,"a":1}',  # unsorted
        '{"a":1,"a":1}',  # duplicate key
        '{"city":"\\u6b66\\u6c49"}',  # escaped non-ASCII
        '{"amount":12.5}',  # a float amount
        '{"amount":1e2}',
        '{"x":NaN}',
        '{"a":1',  # not JSON
        " {}",
        "",
    ],
)
def test_non_canonical_text_is_recognised(text):
    assert is_canonical_json(text) is False


def test_canonical_text_is_recognised():
    assert is_canonical_json('{"amount":"12.50","city":"武汉","n":3}') is True
    assert is_canonical_json(b'{"n":3}') is False  # bytes are not text


def test_parse_keeps_fractions_exact_and_refuses_nan():
    assert parse_canonical_json('{"x":0.10}') == {"x": Decimal("0.10")}
    with pytest.raises(ValueError):
        parse_canonical_json("[Infinity]")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.decimals(allow_nan=False, allow_infinity=False).map(str),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_canonical_bytes_round_trip_and_are_recognised(value):
    encoded = canonical_json(value)
    # then parsing gives the value back, and the text is recognised as canonical
    assert parse_canonical_json(encoded.decode("utf-8")) == value
    assert is_canonical_json(encoded.decode("utf-8"))
    # and a pretty-printed copy of a non-empty container is not (canonical JSON never holds a raw newline)
    if isinstance(value, dict | list) and value:
        assert not is_canonical_json(json.dumps(value, indent=1, ensure_ascii=False))

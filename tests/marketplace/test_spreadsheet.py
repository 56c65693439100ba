"""safe_cell: CSV cells a spreadsheet will not run as formulas."""

import datetime as dt
from decimal import Decimal

import pytest

from marketplace.core.spreadsheet import safe_cell


@pytest.mark.parametrize("text", ['=HYPERLINK("http://evil")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_text_that_would_run_as_a_formula_gets_an_apostrophe(text):
    assert safe_cell(text) == "'" + text


def test_plain_text_numbers_and_dates_stay_as_they_are():
    moment = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    assert [safe_cell(v) for v in ("Shanghai", Decimal("-12.50"), -3, 0, moment)] == [
        "Shanghai",
        Decimal("-12.50"),
        -3,
        0,
        moment,
    ]
    assert safe_cell(None) == ""

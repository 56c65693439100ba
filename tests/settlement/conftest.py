"""Fixtures of the settlement tests."""

import pytest

from tests.settlement.statement_factories import issued_statement


@pytest.fixture
def statement():
    """An issued statement of two claims (2 × 2000) of a program of its own issuer."""
    return issued_statement(count=2)

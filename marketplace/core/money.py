"""Money: ``Decimal`` only, 2 places, rounded half-up once when posted. Prices per GPU-hour carry 4 places."""

from decimal import ROUND_HALF_UP, Decimal

from django.db import models

CENT = Decimal("0.01")
PRICE_QUANTUM = Decimal("0.0001")
ZERO = Decimal("0.00")

# Database column shapes, used by every money field so the ledger and the orders agree.
AMOUNT_DIGITS, AMOUNT_PLACES = 16, 2
PRICE_DIGITS, PRICE_PLACES = 12, 4


def to_amount(value) -> Decimal:
    """Round ``value`` half-up to 2 places (fen). Raises ``TypeError`` for floats: money never passes through one."""
    if isinstance(value, float):
        raise TypeError("money must not be a float")
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def to_price(value) -> Decimal:
    """Round a per-GPU-hour price half-up to 4 places."""
    if isinstance(value, float):
        raise TypeError("prices must not be floats")
    return Decimal(value).quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP)


def AmountField(**kwargs) -> models.DecimalField:  # noqa: N802 - reads like a field class at call sites
    return models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES, **kwargs)


def PriceField(**kwargs) -> models.DecimalField:  # noqa: N802
    return models.DecimalField(max_digits=PRICE_DIGITS, decimal_places=PRICE_PLACES, **kwargs)

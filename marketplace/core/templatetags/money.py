"""One money format for every page: ``{% load money %}``.

``{{ x|money }}`` an amount: "¥1,498,662.52" (thousands separators, 2 places, half-up; "−¥12.00"; None → "—").
``{{ x|price }}`` a unit price: "¥6.03", or up to 4 places when it has them ("¥6.0312").
``{{ x|quantity }}`` a count or node-hours: "18,720" or "1,312.5" (thousands separators as in amounts, no ".0").
``{{ x|per_gpu_hour }}`` "¥6.03/GPU-h"; ``{{ x|per_node_hour:gpus_per_node }}`` "¥48.24/node-h" (a GPU-hour price
times the GPUs of a node; without the argument ``x`` is already a node-hour price).

The symbol follows ``settings.PLATFORM_CURRENCY``: CNY is "¥", any other code is written out ("USD 12.00").
Display only: CSV exports and the API keep plain decimals.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template
from django.conf import settings
from django.utils.translation import gettext

register = template.Library()

EMPTY = "—"
MINUS = "−"  # U+2212, the typographic minus
SYMBOLS = {"CNY": "¥"}
CENT = Decimal("0.01")
PRICE_STEP = Decimal("0.0001")


def currency_prefix(code: str | None = None) -> str:
    code = code or settings.PLATFORM_CURRENCY
    return SYMBOLS.get(code, f"{code} ")


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError, TypeError):
        return None
    return number if number.is_finite() else None


def _signed(number: Decimal, digits: str) -> str:
    sign = MINUS if number < 0 else ""
    return f"{sign}{currency_prefix()}{digits}"


def format_money(value) -> str:
    """An amount, half-up to the cent, with thousands separators; "—" for no amount."""
    number = _decimal(value)
    if number is None:
        return EMPTY if value is None or value == "" else str(value)
    rounded = number.quantize(CENT, rounding=ROUND_HALF_UP)
    if rounded == 0:
        rounded = abs(rounded)  # never "−¥0.00"
    return _signed(rounded, f"{abs(rounded):,.2f}")


def format_price(value) -> str:
    """A unit price: 2 places, or up to 4 when the price has them (half-up at the 4th)."""
    number = _decimal(value)
    if number is None:
        return EMPTY if value is None or value == "" else str(value)
    rounded = number.quantize(PRICE_STEP, rounding=ROUND_HALF_UP)
    if rounded == 0:
        rounded = abs(rounded)
    places = 4
    while places > 2 and rounded == rounded.quantize(Decimal(1).scaleb(-(places - 1))):
        places -= 1
    return _signed(rounded, f"{abs(rounded):,.{places}f}")


def format_quantity(value) -> str:
    """A count with thousands separators and only the places it has ("1,344", "1,312.5"); "—" for none."""
    number = _decimal(value)
    if number is None:
        return EMPTY if value is None or value == "" else str(value)
    if number == number.to_integral_value():
        return f"{number:,.0f}"
    return f"{number.normalize():,f}"


@register.filter
def quantity(value) -> str:
    return format_quantity(value)


@register.filter
def money(value) -> str:
    return format_money(value)


@register.filter
def price(value) -> str:
    return format_price(value)


@register.filter
def per_gpu_hour(value) -> str:
    if _decimal(value) is None:
        return format_price(value)
    return gettext("%(price)s/GPU-h") % {"price": format_price(value)}


@register.filter
def per_node_hour(value, gpus_per_node=None) -> str:
    number = _decimal(value)
    if number is None:
        return format_price(value)
    if gpus_per_node not in (None, ""):
        number *= Decimal(str(gpus_per_node))
    return gettext("%(price)s/node-h") % {"price": format_price(number)}

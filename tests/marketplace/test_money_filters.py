"""The one money format of the pages: ``money``, ``price``, ``per_gpu_hour``, ``per_node_hour`` (pure functions)."""

from decimal import Decimal

import pytest
from django.template import Context, Template
from django.test import override_settings
from django.utils import translation

from marketplace.core.templatetags.money import money, per_gpu_hour, per_node_hour, price, quantity


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("0"), "¥0.00"),
        (0, "¥0.00"),
        (Decimal("0.005"), "¥0.01"),  # half-up, not banker's
        (Decimal("0.004"), "¥0.00"),
        (Decimal("-0.004"), "¥0.00"),  # never "−¥0.00"
        (Decimal("1234567.895"), "¥1,234,567.90"),
        (Decimal("1498662.52"), "¥1,498,662.52"),
        (Decimal("98000"), "¥98,000.00"),
        (Decimal("999.995"), "¥1,000.00"),
        (Decimal("-12"), "−¥12.00"),
        (Decimal("-1234.5"), "−¥1,234.50"),
        (Decimal("6.0312"), "¥6.03"),  # a Decimal with 4 places, as an amount
        ("1234.5", "¥1,234.50"),
        (1234.5, "¥1,234.50"),
        (None, "—"),
        ("", "—"),
    ],
)
def test_money(value, expected):
    assert money(value) == expected


def test_money_leaves_what_is_not_a_number_as_it_is():
    assert money("n/a") == "n/a"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("0"), "¥0.00"),
        (Decimal("6.03"), "¥6.03"),
        (Decimal("6.0300"), "¥6.03"),  # 2 places when it has no more
        (Decimal("6.0312"), "¥6.0312"),  # a Decimal with 4 places keeps them
        (Decimal("6.0310"), "¥6.031"),
        (Decimal("6.00005"), "¥6.0001"),  # half-up at the 4th place
        (Decimal("0.005"), "¥0.005"),
        (Decimal("1234567.895"), "¥1,234,567.895"),
        (Decimal("-12"), "−¥12.00"),
        (None, "—"),
        ("", "—"),
    ],
)
def test_price(value, expected):
    assert price(value) == expected


def test_other_currencies_are_written_out():
    with override_settings(PLATFORM_CURRENCY="USD"):
        assert money(Decimal("1234.5")) == "USD 1,234.50"
        assert money(Decimal("-12")) == "−USD 12.00"
        assert price(Decimal("6.0312")) == "USD 6.0312"


def test_per_gpu_hour_and_per_node_hour():
    with translation.override("en"):
        assert per_gpu_hour(Decimal("6.0300")) == "¥6.03/GPU-h"
        assert per_node_hour(Decimal("6.03"), 8) == "¥48.24/node-h"
        assert per_node_hour(Decimal("48.24")) == "¥48.24/node-h"
        assert per_gpu_hour(None) == "—"
        assert per_node_hour(None, 8) == "—"


def test_per_hour_in_chinese():
    with translation.override("zh-hans"):
        assert per_gpu_hour(Decimal("6.03")) == "¥6.03/GPU 小时"
        assert per_node_hour(Decimal("6.03"), "8") == "¥48.24/节点小时"


def test_the_filters_in_a_template():
    template = Template("{% load money %}{{ a|money }} {{ p|price }} {{ p|per_gpu_hour }} {{ p|per_node_hour:8 }}")
    with translation.override("en"):
        html = template.render(Context({"a": Decimal("1498662.52"), "p": Decimal("6.0300")}))
        assert html == "¥1,498,662.52 ¥6.03 ¥6.03/GPU-h ¥48.24/node-h"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("1344.0"), "1,344"),
        (Decimal("18720.0"), "18,720"),
        (Decimal("1312.5"), "1,312.5"),
        (Decimal("0.0"), "0"),
        (Decimal("1E+3"), "1,000"),
        (12, "12"),
        (None, "—"),
        ("n/a", "n/a"),
    ],
)
def test_quantity(value, expected):
    assert quantity(value) == expected


def test_quantity_is_grouped_in_chinese_too():
    # Django's zh-Hans number format groups nothing; node-hour tables group like amounts in both languages
    with translation.override("zh-hans"):
        assert Template("{% load money %}{{ x|quantity }}").render(Context({"x": Decimal("18720.0")})) == "18,720"

"""API errors follow ``Accept-Language``: the same bad request answers in Chinese for a zh browser and in English
otherwise, with the JSON keys (``detail``, ``errors`` and the field names) in English either way. And no service,
selector or API module raises a user-visible message that gettext cannot translate."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.conf import settings

from tests import factories
from tests.helpers import iso
from tests.marketplace.test_i18n import compile_catalog
from tests.orders.factories import fund

pytestmark = pytest.mark.django_db

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.5"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module", autouse=True)
def _compiled():
    compile_catalog()


@pytest.fixture
def token_client(api):
    """An API client that authenticates as a startup member with a real ``Authorization: Token`` header."""
    startup = factories.StartupFactory()
    user = factories.member_of(startup)
    response = api.post("/api/v1/auth/token/", {"username": user.username, "password": factories.PASSWORD})
    assert response.status_code == 200, response.content
    api.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    api.organization = startup
    return api


def _booking(listing, **extra) -> dict:
    return {
        "listing": listing.pk,
        "nodes": 2,
        "start": iso(factories.next_hour(2)),
        "end": iso(factories.next_hour(5)),
        **extra,
    }


def test_insufficient_funds_on_booking_answers_in_the_browsers_language(token_client):
    # given a startup with ¥100.00 for a ¥480.00 booking, asking over a real token
    fund(token_client.organization, "100.00")
    listing = factories.ListingFactory()
    # when the same booking is asked for in Chinese and in English
    zh = token_client.post("/api/v1/bookings/", _booking(listing), format="json", **ZH)
    en = token_client.post("/api/v1/bookings/", _booking(listing), format="json", **EN)
    # then both refuse with 409; the Chinese one in Chinese, both with the amounts in yuan
    assert zh.status_code == en.status_code == 409
    assert zh.json().keys() == en.json().keys() == {"detail", "errors"}
    assert "余额不足" in zh.json()["detail"] and "¥100.00" in zh.json()["detail"], zh.json()
    assert en.json()["detail"] == "Insufficient funds in wallet: ¥100.00 available, ¥480.00 needed."
    assert not HAN.search(en.json()["detail"])


def test_a_bad_credit_code_at_sign_up_answers_in_chinese_under_the_english_field_name(api):
    body = {
        "kind": "startup",
        "name": "Moonshot Vision",
        "credit_code": "91330100MA2",
        "city": "Hangzhou",
        "legal_representative": "Liang Wen",
        "owners": ["Liang Wen"],
        "username": "liang",
        "email": "liang@moonshot.example.cn",
        "password": "correct-horse-battery-9",
    }
    zh = api.post("/api/v1/signup/", body, format="json", **ZH)
    en = api.post("/api/v1/signup/", body, format="json", **EN)
    assert zh.status_code == en.status_code == 400
    assert list(zh.json()["errors"]) == list(en.json()["errors"]) == ["credit_code"]
    assert zh.json()["errors"]["credit_code"] == ["统一社会信用代码应为 18 位。"]
    assert HAN.search(zh.json()["detail"])
    assert en.json()["errors"]["credit_code"] == ["A unified social credit code has 18 characters."]
    assert en.json()["detail"] == "Please correct the fields marked."


def test_a_refused_status_transition_names_the_statuses_in_words_in_each_language(token_client):
    # given a cancelled booking
    fund(token_client.organization)
    created = token_client.post("/api/v1/bookings/", _booking(factories.ListingFactory()), format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert token_client.post(f"/api/v1/bookings/{pk}/cancel/").status_code == 200
    # when it is confirmed after all
    zh = token_client.post(f"/api/v1/bookings/{pk}/confirm/", **ZH)
    en = token_client.post(f"/api/v1/bookings/{pk}/confirm/", **EN)
    # then 409 in words, not status codes
    assert zh.status_code == en.status_code == 409
    assert en.json()["detail"] == "A cancelled booking cannot become confirmed."
    assert en.json()["errors"] == {"status": ["Not allowed from cancelled."]}
    assert "预订" in zh.json()["detail"] and "cancelled" not in zh.json()["detail"], zh.json()
    assert list(zh.json()["errors"]) == ["status"] and HAN.search(zh.json()["errors"]["status"][0])


def test_drf_validation_messages_are_translated_too(token_client):
    # an unknown listing and a missing end: DRF's and the service's own messages, field names in English
    zh = token_client.post("/api/v1/bookings/", {"listing": 10**9, "nodes": 1, "start": "x"}, format="json", **ZH)
    assert zh.status_code == 400
    errors = zh.json()["errors"]
    assert errors and all(re.fullmatch(r"[a-z_.0-9]+", name) for name in errors), errors
    assert all(HAN.search(message) for messages in errors.values() for message in messages), errors


# --- no untranslatable message in the code -------------------------------------------------------------------------

APPS = ["accounts", "audit", "ledger", "listings", "vouchers", "orders", "settlement", "oversight", "portal", "market"]
# Programming errors and the pure engines' exceptions (no Django there): never shown to a person as they are.
INTERNAL = {
    "AssertionError",
    "CommandError",
    "ImproperlyConfigured",
    "KeyError",
    "LookupError",
    "MalformedExport",
    "MissingSubtreeError",
    "NoTreeHead",
    "NotImplementedError",
    "RuntimeError",
    "RulesError",
    "SequencerError",
    "TooLarge",
    "TypeError",
    "UnknownTreeHead",
    "ValueError",
}
GETTEXT = {"_", "gettext", "gettext_lazy", "ngettext", "ngettext_lazy", "pgettext", "pgettext_lazy", "format_lazy"}


def _name(node) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def _words(node):
    """String literals under ``node`` that read as a message (a space or a final full stop), outside gettext calls,
    dict keys (field names) and ``code=`` / ``status=`` arguments."""
    if isinstance(node, ast.Call):
        if _name(node.func) in GETTEXT:
            return
        for arg in node.args:
            yield from _words(arg)
        for keyword in node.keywords:
            if keyword.arg not in ("code", "status"):
                yield from _words(keyword.value)
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        if " " in node.value.strip() or node.value.rstrip().endswith((".", "?", "!")):
            yield node
    elif isinstance(node, ast.JoinedStr):
        yield node
    elif isinstance(node, ast.Dict):
        for value in node.values:
            yield from _words(value)
    elif isinstance(node, ast.DictComp):
        yield from _words(node.value)
    elif isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp):
        yield from _words(node.elt)
    else:
        for child in ast.iter_child_nodes(node):
            yield from _words(child)


def untranslated_raises(source: str) -> list[tuple[int, str]]:
    """``(line, literal)`` of every ``raise X("…")`` whose message (or field message) gettext never sees."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and _name(node.exc.func) not in INTERNAL:
            found.extend((literal.lineno, ast.unparse(literal)) for literal in _words(node.exc))
    return found


def test_the_scan_finds_an_untranslated_message():
    # given the shapes a refusal takes / then the plain ones are found and the translated ones are not
    source = """
def f(x):
    raise ApplicationError("Invalid listing.", errors={"cluster": ["Not one of your clusters."]}, code="bad code")
    raise Conflict(f"The bid is {x}, not open.")
    raise NotFound(gettext("No such bid."))
    raise ApplicationError(gettext("Invalid."), errors={"name": [gettext("Required.")]})
    raise _field_error("face_value", gettext("Cannot exceed %(amount)s.") % {"amount": x})
    raise ValueError(f"programming error {x}")
"""
    assert [line for line, _ in untranslated_raises(source)] == [3, 3, 4]


def test_no_service_selector_or_api_module_raises_an_untranslated_message():
    root = Path(settings.BASE_DIR)
    modules = [root / "marketplace" / "core"] + [root / app for app in APPS]
    offenders = []
    for folder in modules:
        for path in sorted(folder.rglob("*.py")):
            relative = path.relative_to(root)
            if {"migrations", "management"} & set(relative.parts):
                continue
            offenders += [f"{relative}:{line}: {text}" for line, text in untranslated_raises(path.read_text())]
    assert offenders == [], "wrap these messages in gettext (named %(placeholders)s for values):\n" + "\n".join(
        offenders
    )

"""Simplified Chinese and English: language negotiation, the remembered switch, a complete catalog, Chinese pages.

The catalog check extracts every translatable string of the project afresh (``makemessages`` into a scratch copy of
``locale/``) and fails on any msgid without a Chinese translation, so a new visible string cannot ship in English
only. The page check renders the main pages of every role for a zh-CN browser and fails when a text of the page is
one of the catalog's English msgids (derived from the catalog, not a hand-picked list).
"""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client

ROOT = Path(settings.BASE_DIR)
PO = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.5"}
# What makemessages reads: the apps, the project package and the templates (tests, docs, tools are not shown).
SOURCES = [
    "accounts",
    "audit",
    "ledger",
    "listings",
    "market",
    "marketplace",
    "orders",
    "oversight",
    "portal",
    "settlement",
    "vouchers",
    "templates",
]


def compile_catalog() -> None:
    """The .mo files are build output (``make test`` compiles them); compile here too so the tests stand alone."""
    mo = PO.with_suffix(".mo")
    if not mo.exists() or mo.stat().st_mtime < PO.stat().st_mtime:
        call_command("compilemessages", locale=["zh_Hans"], ignore_patterns=[".venv", ".data"], verbosity=0)


@pytest.fixture(scope="module", autouse=True)
def _compiled():
    compile_catalog()


def parse_po(path: Path) -> list[dict]:
    """``[{msgctxt?, msgid, msgid_plural?, msgstr | msgstr[0], fuzzy}]`` of a .po file (header left out)."""
    entries, current, key = [], None, None
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if not line.strip():
            if current and current.get("msgid"):
                entries.append(current)
            current, key = None, None
            continue
        current = current if current is not None else {"fuzzy": False}
        if line.startswith("#,") and "fuzzy" in line:
            current["fuzzy"] = True
        elif line.startswith("#"):
            continue
        elif match := re.match(r'^(msgctxt|msgid|msgid_plural|msgstr(?:\[\d+\])?) (".*")$', line):
            key = match.group(1)
            current[key] = json.loads(match.group(2))
        elif line.startswith('"') and key:
            current[key] += json.loads(line)
    return entries


def translation_of(entry: dict) -> str:
    return entry.get("msgstr", entry.get("msgstr[0]", ""))


def untranslated(entries: list[dict]) -> list[str]:
    return [entry["msgid"] for entry in entries if entry["fuzzy"] or not translation_of(entry).strip()]


# --- the catalog ---------------------------------------------------------------------------------------------------


def test_the_catalog_has_a_translation_for_every_msgid():
    # given the committed catalog / then no entry is empty or fuzzy
    entries = parse_po(PO)
    assert len(entries) > 500
    assert untranslated(entries) == []


def test_every_visible_string_of_the_code_is_in_the_catalog(tmp_path, settings):
    # given a scratch project: the sources (symlinked) and a copy of the catalog
    for name in SOURCES:
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    shutil.copytree(ROOT / "locale", tmp_path / "locale")
    settings.LOCALE_PATHS = [tmp_path / "locale"]
    # when every translatable string is extracted afresh and merged into the copy
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        call_command(
            "makemessages",
            locale=["zh_Hans"],
            symlinks=True,
            no_location=True,
            verbosity=0,
            ignore_patterns=["locale/*"],
        )
    finally:
        os.chdir(cwd)
    # then each one has a Chinese translation (a new msgid comes in empty, a changed one fuzzy)
    fresh = parse_po(tmp_path / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po")
    missing = untranslated(fresh)
    assert missing == [], f"untranslated: {missing[:20]} — run `make messages` and translate them in {PO}"


def test_placeholders_survive_translation():
    # a msgstr that drops or renames a %(name)s / {name} placeholder would raise or show the wrong value
    for entry in parse_po(PO):
        names = set(re.findall(r"%\((\w+)\)s|\{(\w+)\}", entry["msgid"]))
        assert set(re.findall(r"%\((\w+)\)s|\{(\w+)\}", translation_of(entry))) == names, entry["msgid"]


# --- negotiation and the switch ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_chinese_browser_gets_simplified_chinese():
    html = Client().get("/", **ZH).content.decode()
    assert '<html lang="zh-hans"' in html
    assert "GPU 算力交易平台" in html and "浏览集群" in html


@pytest.mark.django_db
@pytest.mark.parametrize("accept", ["", "en-US,en;q=0.9", "fr-FR", "de"])
def test_other_browsers_get_english(accept):
    extra = {"HTTP_ACCEPT_LANGUAGE": accept} if accept else {}
    html = Client().get("/", **extra).content.decode()
    assert '<html lang="en"' in html and "GPU compute exchange" in html


@pytest.mark.django_db
def test_the_language_switch_is_remembered_in_a_cookie():
    client = Client()
    # given a zh browser that switches to English from the listings page
    assert "GPU 集群租用" in client.get("/listings/", **ZH).content.decode()
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/listings/"}, **ZH)
    # then it goes back to the page, and English stays although the browser asks for Chinese
    assert response.status_code == 302 and response["Location"] == "/listings/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    html = client.get("/listings/", **ZH).content.decode()
    assert '<html lang="en"' in html and "GPU clusters for rent" in html
    # and back to Chinese from an English browser
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert '<html lang="zh-hans"' in client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


@pytest.mark.django_db
def test_every_page_has_the_switch_in_its_header():
    html = Client().get("/login/").content.decode()
    assert 'action="/i18n/setlang/"' in html and "简体中文" in html and ">English<" in html


@pytest.mark.django_db
def test_the_api_answers_in_english_field_names_whatever_the_language(startup_client):
    english = startup_client.get("/api/v1/me/").json()
    response = startup_client.get("/api/v1/me/", **ZH)
    assert response.status_code == 200
    assert response.json().keys() == english.keys() and "email" in english


# --- every main page of every role, in Chinese ---------------------------------------------------------------------


class _Text(HTMLParser):
    """The texts a person reads: text nodes (not scripts, styles or JSON data), titles, placeholders, labels."""

    SKIP = {"script", "style", "code"}

    def __init__(self):
        super().__init__()
        self.texts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self._skip += 1
        for name, value in attrs:
            if name in ("placeholder", "title", "aria-label", "hx-confirm") and value:
                self.texts.append(value.strip())
            if tag == "input" and name == "value" and dict(attrs).get("type") in ("submit", "button"):
                self.texts.append((value or "").strip())

    def handle_endtag(self, tag):
        if tag in self.SKIP and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.texts.append(" ".join(data.split()))


def visible_texts(html: str) -> list[str]:
    parser = _Text()
    parser.feed(html)
    return parser.texts


def english_ui_strings() -> set[str]:
    """The catalog's English texts that would show as they are when untranslated: whole msgids without
    placeholders or markup, and the plain-text pieces of those with markup (split at the tags)."""
    words = set()
    for entry in parse_po(PO):
        msgid, text = entry["msgid"], translation_of(entry)
        if text == msgid:
            continue
        for piece in re.split(r"<[^>]+>|%\(\w+\)s|\{\w+\}", msgid):
            piece = " ".join(piece.split()).strip(" ,.:;·()")
            if len(piece) >= 3 and re.search(r"[A-Za-z]{3}", piece) and not re.fullmatch(r"[A-Z0-9 ./-]+", piece):
                words.add(piece)
    return words


def leftover_english(html: str, vocabulary: set[str]) -> list[str]:
    """Texts of the page that are (or, for sentences of 3+ words, contain) an untranslated English msgid."""
    found = []
    for text in visible_texts(html):
        bare = text.strip(" ,.:;·()→←")
        if bare in vocabulary:
            found.append(text)
            continue
        found.extend(f"{word!r} in {text!r}" for word in vocabulary if word.count(" ") >= 2 and word in text)
    return found


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    """The demo data (every role has something on every page), seeded once for this module."""
    from django.contrib.auth import get_user_model

    from orders.models import Booking
    from settlement.models import ReimbursementStatement
    from vouchers.models import Voucher, VoucherProgram

    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)
        call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
        users = {name: get_user_model().objects.get(username=name) for name in ("alice", "pat", "ivy", "sam", "audrey")}
        booking = Booking.objects.filter(buyer__memberships__user=users["alice"]).order_by("pk").first()
        program = VoucherProgram.objects.filter(issuer__memberships__user=users["ivy"]).order_by("pk").first()
        voucher = Voucher.objects.filter(holder__memberships__user=users["alice"]).order_by("pk").first()
        statement = ReimbursementStatement.objects.order_by("pk").first()
        from listings.models import Listing

        listing = Listing.objects.filter(status="active").order_by("pk").first()
        ids = {
            "booking": booking.pk if booking else None,
            "program": program.pk if program else None,
            "voucher": voucher.pk if voucher else None,
            "statement": statement.pk if statement else None,
            "listing": listing.pk,
        }
        yield {"users": users, "ids": ids}
        call_command("flush", interactive=False, verbosity=0)
        from listings.catalog import load_catalog
        from listings.models import Accelerator

        load_catalog(Accelerator)  # what the data migration put there, for the tests that follow


PAGES = [
    (None, "/"),
    (None, "/listings/"),
    (None, "/login/"),
    (None, "/listings/{listing}/"),
    ("alice", "/"),
    ("alice", "/listings/"),
    ("alice", "/listings/{listing}/"),
    ("alice", "/listings/{listing}/book/"),
    ("alice", "/bookings/"),
    ("alice", "/bookings/{booking}/"),
    ("alice", "/settlement/bookings/{booking}/"),
    ("alice", "/bids/"),
    ("alice", "/market/"),
    ("alice", "/wallet/"),
    ("alice", "/vouchers/"),
    ("alice", "/vouchers/{voucher}/"),
    ("alice", "/vouchers/programs/"),
    ("alice", "/vouchers/programs/{program}/"),
    ("alice", "/account/preferences/"),
    ("pat", "/"),
    ("pat", "/provider/"),
    ("pat", "/payouts/"),
    ("ivy", "/"),
    ("ivy", "/vouchers/programs/"),
    ("ivy", "/vouchers/programs/{program}/"),
    ("ivy", "/vouchers/programs/new/"),
    ("ivy", "/vouchers/programs/{program}/edit/"),
    ("ivy", "/vouchers/applications/"),
    ("ivy", "/claims/"),
    ("ivy", "/statements/"),
    ("ivy", "/audit/"),
    ("sam", "/"),
    ("sam", "/review/"),
    ("sam", "/deposits/"),
    ("sam", "/payouts/"),
    ("sam", "/statements/"),
    ("sam", "/statements/{statement}/"),
    ("audrey", "/audit/"),
    ("audrey", "/audit/?group_by=program"),
    ("audrey", "/audit/events/"),
    ("audrey", "/audit/flags/"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("who", "path"), PAGES)
def test_main_pages_of_every_role_are_in_chinese(demo, who, path):
    if "{" in path and any(demo["ids"][key] is None for key in re.findall(r"\{(\w+)\}", path)):
        pytest.skip(f"the demo has nothing for {path}")
    client = Client()
    if who:
        client.force_login(demo["users"][who])
    response = client.get(path.format(**demo["ids"]), **ZH)
    assert response.status_code == 200, (path, response.status_code)
    html = response.content.decode()
    assert '<html lang="zh-hans"' in html
    assert re.search(r"[\u4e00-\u9fff]{2}", html)
    assert leftover_english(html, english_ui_strings()) == [], path


@pytest.mark.django_db
def test_the_page_check_finds_english_when_there_is_some(demo):
    # given the same page for an English browser / then the check sees its English words (it is not vacuous)
    client = Client()
    client.force_login(demo["users"]["alice"])
    html = client.get(f"/listings/{demo['ids']['listing']}/book/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    found = leftover_english(html, english_ui_strings())
    assert {"Book and confirm", "Get a quote", "My bookings"} <= {text.strip() for text in found}, found

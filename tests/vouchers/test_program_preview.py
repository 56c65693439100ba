"""The program form's preview: the rules typed so far applied to a sample booking by the pure rules engine, shown
in the site's money format, or the form's errors in plain words; nothing written; issuers of the program only."""

import datetime as dt
import re
from decimal import Decimal as D  # noqa: N817

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from listings.models import Accelerator
from marketplace.core.templatetags.money import format_money
from tests import factories
from tests.vouchers.factories import VoucherProgramFactory
from tests.vouchers.test_views import program_post
from vouchers import rules
from vouchers.models import VoucherProgram

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
NEW = "/vouchers/programs/new/preview/"


def logged_in(org) -> Client:
    client = Client()
    client.force_login(factories.member_of(org))
    return client


def sample_post(**overrides) -> dict:
    data = {
        "sample-accelerator": "",
        "sample-origin": "domestic",
        "sample-nodes": "2",
        "sample-gpus_per_node": "8",
        "sample-hours": "24",
        "sample-price_per_gpu_hour": "6.00",
        "sample-voucher_balance": "",
        "sample-buyer_is_sme": "on",
        "sample-buyer_has_model_filing": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def shown(html: str) -> dict[str, str]:
    """The preview's amounts as the page shows them: {"subtotal": "¥2,304.00", "voucher": …, "cash": …}."""
    return dict(re.findall(r'data-preview="(\w+)">([^<]*)<', html))


def engine(*, program: dict, sample: dict, chip: Accelerator | None, domestic: bool) -> tuple[D, D]:
    """The rules engine's own answer for the same rules and booking, built here from the typed values: (voucher
    part, subtotal)."""
    now = timezone.now()
    subtotal = (
        D(sample["sample-price_per_gpu_hour"]) * int(sample["sample-nodes"]) * 8 * int(sample["sample-hours"])
    ).quantize(D("0.01"))
    percent = lambda name, empty: D(program.get(name) or empty) / 100  # noqa: E731
    program_rules = rules.ProgramRules(
        program_id=0,
        city=program["city"],
        domestic_ratio=percent("domestic_ratio", 0),
        other_ratio=percent("other_ratio", 0),
        sme_bonus_ratio=percent("sme_bonus_ratio", 0),
        max_stacked_share=percent("max_stacked_share", 100),
        sme_contract_ratio=percent("sme_contract_ratio", 0),
        sme_contract_limit=D(program["sme_contract_limit"]) if program.get("sme_contract_limit") else None,
        annual_cap_per_org=D(program["annual_cap_per_org"]) if program.get("annual_cap_per_org") else None,
        per_booking_cap=D(program["per_booking_cap"]) if program.get("per_booking_cap") else None,
        requires_model_filing=bool(program.get("requires_model_filing")),
        eligible_accelerator_ids=frozenset(int(pk) for pk in program.get("eligible_accelerators", [])),
    )
    context = rules.BookingContext(
        subtotal=subtotal,
        buyer_id=1,
        provider_id=0,
        data_center_city=program["city"],
        accelerator_id=chip.pk if chip else 0,
        accelerator_domestic=domestic,
        buyer_is_sme=bool(sample.get("sample-buyer_is_sme")),
        buyer_has_model_filing=bool(sample.get("sample-buyer_has_model_filing")),
        now=now,
        buyer_city=program["city"],
    )
    balance = D(sample["sample-voucher_balance"] or program["face_value_max"])
    candidate = rules.VoucherCandidate(1, 1, now + dt.timedelta(days=365), balance, program_rules)
    try:
        (part,) = rules.compute_parts(context, [candidate])
    except rules.RulesError:
        return D("0.00"), subtotal
    return part.amount, subtotal


CHIPS = {"ascend": "ascend-910b"}


@pytest.mark.parametrize(
    ("program_change", "sample_change", "chip_slug", "domestic", "expected_voucher"),
    [
        # 50 % domestic + 10 % SME bonus of ¥2,304.00
        ({}, {}, None, True, "¥1,382.40"),
        # an imported chip, not an SME: 20 %
        ({}, {"sample-origin": "imported", "sample-buyer_is_sme": None}, None, False, "¥460.80"),
        # a cap per booking below the share
        ({"per_booking_cap": "500.00"}, {"sample-hours": "100"}, None, True, "¥500.00"),
        # the voucher's balance below the share
        ({}, {"sample-voucher_balance": "300.00"}, None, True, "¥300.00"),
        # the combined cap (40 %) below the share (60 %)
        ({"max_stacked_share": "40"}, {}, None, True, "¥921.60"),
        # a chosen domestic accelerator brings its own origin, whatever the origin field says
        ({}, {"sample-origin": "imported"}, "ascend-910b", True, "¥1,382.40"),
        # a model filing required, the buyer has none: nothing
        ({}, {"sample-buyer_has_model_filing": None}, None, True, "¥0.00"),
        # the SME contract tier: 70 % for bookings up to ¥10,000
        ({"sme_contract_limit": "10000.00", "sme_contract_ratio": "70"}, {}, None, True, "¥1,612.80"),
    ],
)
def test_preview_shows_what_the_rules_engine_computes(
    issuer, program_change, sample_change, chip_slug, domestic, expected_voucher
):
    # given the rules and a sample booking typed on the new-program form
    chip = Accelerator.objects.get(slug=chip_slug) if chip_slug else None
    program = program_post(**program_change)
    sample = sample_post(**sample_change, **({"sample-accelerator": str(chip.pk)} if chip else {}))
    # when the form's values are posted to the preview (as htmx does on every change)
    response = logged_in(issuer).post(NEW, {**program, **sample}, **HTMX)
    # then it shows the engine's own parts, in the site's money format
    assert response.status_code == 200
    voucher, subtotal = engine(program=program, sample=sample, chip=chip, domestic=domestic)
    assert shown(response.content.decode()) == {
        "subtotal": format_money(subtotal),
        "voucher": format_money(voucher),
        "cash": format_money(subtotal - voucher),
    }
    assert format_money(voucher) == expected_voucher


def test_preview_names_the_limit_and_the_refusal_in_plain_words(issuer):
    client = logged_in(issuer)
    # when the cap per booking binds / then the page says so, in words
    html = client.post(NEW, {**program_post(per_booking_cap="500.00"), **sample_post()}, **HTMX).content.decode()
    assert "Share 60 %." in html and "the program&#x27;s cap for one booking is reached" in html
    assert "2 nodes × 8 GPUs × 24 h = 384 GPU-hours at ¥6.00/GPU-h" in html
    # when the chosen chip is not on the program's list / then nothing, and why
    listed, other = Accelerator.objects.order_by("pk")[:2]
    data = {**program_post(eligible_accelerators=[listed.pk]), **sample_post(**{"sample-accelerator": str(other.pk)})}
    html = client.post(NEW, data, **HTMX).content.decode()
    assert "Nothing: the program does not cover this accelerator." in html and shown(html)["voucher"] == "¥0.00"
    assert "accelerator_not_eligible" not in html and "rule:" not in html


def test_preview_works_on_a_half_filled_form(issuer):
    # given a new form with only the shares typed (no name, dates or voucher sizes yet)
    data = {"city": "Hefei", "domestic_ratio": "30", "other_ratio": "20", "level": "city", **sample_post()}
    # when / then the preview has numbers (the balance is then as large as the booking needs)
    response = logged_in(issuer).post(NEW, data, **HTMX)
    assert shown(response.content.decode()) == {"subtotal": "¥2,304.00", "voucher": "¥691.20", "cash": "¥1,612.80"}


def test_bad_input_answers_with_messages_in_plain_words_and_writes_nothing(issuer):
    client = logged_in(issuer)
    programs, events = VoucherProgram.objects.count(), AuditEvent.objects.count()
    data = {**program_post(domestic_ratio="150"), **sample_post(**{"sample-nodes": "0", "sample-hours": "x"})}
    # when htmx posts bad values / then 200 (htmx swaps 2xx only) with each error as a sentence, and no numbers
    html = client.post(NEW, data, **HTMX).content.decode()
    assert "Share on domestic accelerators (%): Enter a percentage between 0 and 100." in html
    assert "Nodes: Ensure this value is greater than or equal to 1." in html
    assert "Hours: Enter a whole number." in html
    assert not shown(html) and "domestic_ratio" not in html and "sample-nodes" not in html
    # when a plain POST does the same / then 400
    assert client.post(NEW, data).status_code == 400
    # and a valid preview writes nothing either
    assert client.post(NEW, {**program_post(), **sample_post()}, **HTMX).status_code == 200
    assert (VoucherProgram.objects.count(), AuditEvent.objects.count()) == (programs, events)


def test_only_the_issuers_of_the_program_may_preview(startup, issuer):
    # given a program of this issuer and one of another issuer
    own = VoucherProgramFactory(issuer=issuer)
    other = VoucherProgramFactory()
    data = {**program_post(name=own.name), **sample_post()}
    client = logged_in(issuer)
    # then the issuer previews on the new form and on its own program's edit form
    assert client.post(NEW, data, **HTMX).status_code == 200
    response = client.post(f"/vouchers/programs/{own.pk}/preview/", data, **HTMX)
    assert response.status_code == 200 and shown(response.content.decode())["voucher"] == "¥1,382.40"
    # and not on another issuer's program (404), nor as a startup (403), nor signed out (to the login page)
    assert client.post(f"/vouchers/programs/{other.pk}/preview/", data, **HTMX).status_code == 404
    assert logged_in(startup).post(NEW, data, **HTMX).status_code == 403
    assert logged_in(startup).post(f"/vouchers/programs/{own.pk}/preview/", data).status_code == 404
    assert Client().post(NEW, data).status_code == 302
    # and the preview is a POST only
    assert client.get(NEW).status_code == 405


def test_the_form_asks_for_the_preview_as_it_changes(issuer):
    program = VoucherProgramFactory(issuer=issuer)
    client = logged_in(issuer)
    page = client.get("/vouchers/programs/new/").content.decode()
    assert f'hx-post="{NEW}"' in page and "change from:closest form" in page
    assert 'name="sample-nodes"' in page and 'name="sample-price_per_gpu_hour"' in page
    page = client.get(f"/vouchers/programs/{program.pk}/edit/").content.decode()
    assert f'hx-post="/vouchers/programs/{program.pk}/preview/"' in page

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
from vouchers import rules, selectors
from vouchers.forms import SampleBookingForm
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
        idle_threshold_percent=D(program["idle_threshold_percent"]) if program.get("idle_threshold_percent") else None,
        idle_extra_ratio=percent("idle_extra_ratio", 0) if program.get("idle_extra_ratio") else None,
    )
    utilisation = sample.get("sample-cluster_utilisation")
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
        cluster_utilisation=D(utilisation) / 100 if utilisation else None,
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


IDLE_RULE = {"idle_threshold_percent": "30", "idle_extra_ratio": "10"}


@pytest.mark.parametrize(
    ("utilisation", "expected_voucher", "idle", "sentence"),
    [
        # used 12 % < 30 %: 50 % domestic + 10 % SME + 10 % idle extra of ¥2,304.00
        ("12", "¥1,612.80", "applied", "idle-cluster extra of 10 %: the cluster was used 12 % over the last 7 days"),
        # just below the threshold still counts; at it, not (strictly below)
        ("29.99", "¥1,612.80", "applied", "used 29.99 % over the last 7 days, below 30 %"),
        ("30", "¥1,382.40", "busy", "No idle-cluster extra: the cluster was used 30 %"),
        ("45.5", "¥1,382.40", "busy", "used 45.5 % over the last 7 days, not below 30 %"),
        # blank = unknown: the rule does not apply
        ("", "¥1,382.40", "unknown", "No idle-cluster extra: the cluster's utilisation is unknown."),
    ],
)
def test_preview_applies_the_idle_capacity_rule_to_the_typed_utilisation(
    issuer, utilisation, expected_voucher, idle, sentence
):
    # given a program with an idle-capacity rule (10 % more below 30 % utilisation) and a sample on such a cluster
    program = program_post(**IDLE_RULE)
    sample = sample_post(**{"sample-cluster_utilisation": utilisation})
    # when it is previewed
    response = logged_in(issuer).post(NEW, {**program, **sample}, **HTMX)
    # then the amounts are the rules engine's, and the explanation says whether the idle extra applied
    assert response.status_code == 200
    html = response.content.decode()
    voucher, subtotal = engine(program=program, sample=sample, chip=None, domestic=True)
    assert shown(html) == {
        "subtotal": format_money(subtotal),
        "voucher": format_money(voucher),
        "cash": format_money(subtotal - voucher),
    }
    assert format_money(voucher) == expected_voucher
    assert f'data-idle="{idle}"' in html and sentence in html
    assert ("Share 70 %." if idle == "applied" else "Share 60 %.") in html


def test_preview_without_an_idle_rule_ignores_the_utilisation(issuer):
    # given a program without an idle-capacity rule, a sample on a nearly idle cluster
    data = {**program_post(), **sample_post(**{"sample-cluster_utilisation": "1"})}
    # when / then nothing extra, and nothing said about it
    html = logged_in(issuer).post(NEW, data, **HTMX).content.decode()
    assert shown(html)["voucher"] == "¥1,382.40" and "data-idle" not in html and "idle-cluster" not in html


@pytest.mark.parametrize("bad", ["-1", "100.01", "1e30", "NaN", "abc", "12.345"])
def test_a_bad_utilisation_is_a_field_error_not_a_500(issuer, bad):
    client = logged_in(issuer)
    data = {**program_post(**IDLE_RULE), **sample_post(**{"sample-cluster_utilisation": bad})}
    # when htmx posts it / then 200 with the field's error in words and no numbers
    response = client.post(NEW, data, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Cluster utilisation over the last 7 days (%):" in html and not shown(html)
    # and a plain POST answers 400
    assert client.post(NEW, data).status_code == 400


def test_the_form_offers_the_utilisation_input(issuer):
    page = logged_in(issuer).get("/vouchers/programs/new/").content.decode()
    assert 'name="sample-cluster_utilisation"' in page and "Cluster utilisation over the last 7 days (%)" in page


def test_a_nul_in_the_utilisation_is_refused_not_a_500(issuer):
    # when a NUL is posted / then the site's guard answers 400 before the view (PostgreSQL text cannot hold one)
    data = {**program_post(**IDLE_RULE), **sample_post(**{"sample-cluster_utilisation": "12\x00"})}
    assert logged_in(issuer).post(NEW, data, **HTMX).status_code == 400
    # and the form itself would refuse it with a field error
    form = SampleBookingForm(sample_post(**{"sample-cluster_utilisation": "\x00"}))
    assert not form.is_valid() and form.errors["cluster_utilisation"] == ["Enter a number."]


def test_the_sample_form_reads_the_utilisation_as_a_percentage():
    # given 12.5 % typed / then the sample carries it and the engine reads 0.125; blank = unknown
    form = SampleBookingForm(sample_post(**{"sample-cluster_utilisation": "12.5"}))
    assert form.is_valid()
    assert form.sample().cluster_utilisation_percent == D("12.5")
    program_rules = rules.ProgramRules(program_id=0, city="Hefei", domestic_ratio=D("0.3"), other_ratio=D("0.2"))
    context, _ = selectors.sample_engine_inputs(program_rules, form.sample(), now=timezone.now())
    assert context.cluster_utilisation == D("0.125")
    form = SampleBookingForm(sample_post())
    assert form.is_valid() and form.sample().cluster_utilisation_percent is None
    context, _ = selectors.sample_engine_inputs(program_rules, form.sample(), now=timezone.now())
    assert context.cluster_utilisation is None

"""Voucher pages: programs and apply, the issuer queue with approve/reject (htmx), my vouchers, the burn-down."""

import datetime as dt
from decimal import Decimal as D  # noqa: N817

import pytest
from django.test import Client

from ledger.services import account_for
from listings.models import Accelerator
from tests import factories
from tests.vouchers.factories import VoucherProgramFactory, capture_for, funded_program, held_booking, issued_voucher
from vouchers import services
from vouchers.models import Voucher, VoucherApplication, VoucherProgram

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def logged_in(org) -> Client:
    client = Client()
    client.force_login(factories.member_of(org))
    return client


def test_startup_sees_programs_and_applies_with_errors_in_place(startup):
    # given
    program = VoucherProgramFactory(name="Shanghai compute vouchers")
    client = logged_in(startup)
    # when listing and opening the program
    assert "Shanghai compute vouchers" in client.get("/vouchers/programs/").content.decode()
    assert 'name="requested_amount"' in client.get(f"/vouchers/programs/{program.pk}/").content.decode()
    # when applying below the minimum (htmx) / then the form comes back with the error next to the field
    url = f"/vouchers/programs/{program.pk}/apply/"
    response = client.post(url, {"requested_amount": "999.99", "purpose": "training"}, **HTMX)
    assert "Must be between" in response.content.decode() and not VoucherApplication.objects.exists()
    # when applying correctly / then htmx is redirected to the applications page
    response = client.post(url, {"requested_amount": "5000.00", "purpose": "training"}, **HTMX)
    assert response["HX-Redirect"] == "/vouchers/applications/"
    assert VoucherApplication.objects.get().applicant == startup


def test_issuer_approves_and_rejects_from_the_queue(startup, issuer):
    # given two applications to the issuer's funded program
    program = funded_program(issuer=issuer)
    first, second = (
        services.application_submit(program=program, applicant=startup, requested_amount=D("5000"), purpose=p)
        for p in ("a", "b")
    )
    client = logged_in(issuer)
    assert client.get("/vouchers/applications/").content.decode().count("Approve</button>") == 2
    # when approving one above the request (htmx) / then the row shows the error and nothing is issued
    response = client.post(f"/vouchers/applications/{first.pk}/approve/", {"face_value": "6000"}, **HTMX)
    assert "Cannot exceed" in response.content.decode() and not Voucher.objects.exists()
    # when approving and rejecting properly
    response = client.post(f"/vouchers/applications/{first.pk}/approve/", {"face_value": "4000"}, **HTMX)
    assert "Approved" in response.content.decode()
    response = client.post(f"/vouchers/applications/{second.pk}/reject/", {"reason": "Duplicate"})
    assert response.status_code == 302
    # then
    assert Voucher.objects.get().face_value == D("4000.00")
    assert VoucherApplication.objects.get(pk=second.pk).reject_reason == "Duplicate"


def test_another_issuer_cannot_decide(startup, issuer):
    application = services.application_submit(
        program=VoucherProgramFactory(), applicant=startup, requested_amount=D("5000"), purpose="x"
    )
    response = logged_in(issuer).post(f"/vouchers/applications/{application.pk}/approve/", {"face_value": "5000"})
    assert response.status_code == 404


def test_my_vouchers_show_balance_held_and_history(startup):
    # given a voucher with a held part
    voucher = issued_voucher(holder=startup, face_value="100000.00")
    booking = held_booking(buyer=startup, subtotal="10000.00")
    services.vouchers_hold_for_booking(booking=booking, voucher_ids=[voucher.pk])
    client = logged_in(startup)
    # when / then
    listing_page = client.get("/vouchers/").content.decode()
    assert "¥98,000.00" in listing_page and "¥2,000.00" in listing_page
    detail = client.get(f"/vouchers/{voucher.pk}/").content.decode()
    assert "the program pays at most its coverage ratio" in detail and f"/bookings/{booking.pk}/" in detail
    # and another startup gets 404
    assert logged_in(factories.StartupFactory()).get(f"/vouchers/{voucher.pk}/").status_code == 404


def test_empty_states_say_what_to_do(startup):
    client = logged_in(startup)
    assert "Apply to a city program" in client.get("/vouchers/").content.decode()
    assert "No applications yet" in client.get("/vouchers/applications/").content.decode()


def test_issuer_program_page_has_the_burn_down_chart(startup, issuer):
    # given a program with a voucher issued and part of it spent
    program = funded_program("500000.00", issuer=issuer)
    voucher = issued_voucher(holder=startup, program=program, face_value="100000.00")
    booking = held_booking(buyer=startup, subtotal="10000.00")
    services.vouchers_hold_for_booking(booking=booking, voucher_ids=[voucher.pk])
    capture_for(booking, account_for("reimbursement_due", program.pk))
    # when
    page = logged_in(issuer).get(f"/vouchers/programs/{program.pk}/").content.decode()
    # then the chart data carries the cumulative issued and spent amounts
    assert "chart-4.6.1.umd.min.js" in page and 'id="burndown-data"' in page
    assert '"issued": ["100000.00"]' in page and '"spent": ["2000.00"]' in page
    assert "available ¥400,000.00" in page
    # and a startup sees no chart
    assert "burndown-data" not in logged_in(startup).get(f"/vouchers/programs/{program.pk}/").content.decode()


def program_post(**overrides) -> dict:
    data = {
        "name": "Hefei compute vouchers 2027",
        "city": "Hefei",
        "description": "For AI startups.",
        "status": "draft",
        "face_value_min": "1000.00",
        "face_value_max": "500000.00",
        "validity_days": "180",
        "applications_open_from": "2027-01-01T00:00",
        "applications_open_until": "2027-06-30T00:00",
        "domestic_ratio": "50",
        "other_ratio": "20",
        "sme_bonus_ratio": "10",
        "max_stacked_share": "80",
        "level": "city",
        "stack_levels": ["national", "provincial", "city", "district"],
        "annual_cap_per_org": "1000000.00",
        "per_booking_cap": "",
        "requires_model_filing": "on",
        "ban_related_party": "on",
        "require_reviewed_listing": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_issuer_creates_a_program_with_its_rules(issuer):
    # given an issuer, a provider and a chip to put on the lists
    provider = factories.ProviderFactory()
    chip = Accelerator.objects.get(slug="ascend-910b")
    client = logged_in(issuer)
    assert 'href="/vouchers/programs/new/"' in client.get("/vouchers/programs/").content.decode()
    assert client.get("/vouchers/programs/new/").status_code == 200
    # when the form is posted
    response = client.post(
        "/vouchers/programs/new/", program_post(eligible_providers=[provider.pk], eligible_accelerators=[chip.pk])
    )
    # then the program exists as a draft with the given rules, and the page goes to it
    program = VoucherProgram.objects.get(issuer=issuer, name="Hefei compute vouchers 2027")
    assert response.status_code == 302 and response["Location"] == f"/vouchers/programs/{program.pk}/"
    assert (program.city, program.status, program.validity_days) == ("Hefei", "draft", 180)
    assert (program.face_value_min, program.face_value_max) == (D("1000.00"), D("500000.00"))
    assert (program.domestic_ratio, program.other_ratio, program.sme_bonus_ratio, program.max_stacked_share) == (
        D("0.5"),
        D("0.2"),
        D("0.1"),
        D("0.8"),
    )
    assert program.annual_cap_per_org == D("1000000.00") and program.per_booking_cap is None
    assert program.requires_model_filing and not program.city_data_centers_only
    assert list(program.eligible_providers.all()) == [provider]
    assert list(program.eligible_accelerators.all()) == [chip]
    # typed in Beijing time (the page's zone): midnight 1 January in Beijing is 16:00 UTC the day before
    assert program.applications_open_from == dt.datetime(2026, 12, 31, 16, tzinfo=dt.UTC)


def test_program_form_shows_errors_in_place_and_writes_nothing(issuer):
    client = logged_in(issuer)
    # when the minimum exceeds the maximum
    page = client.post("/vouchers/programs/new/", program_post(face_value_min="9000.00", face_value_max="10.00"))
    # then 400 with the error next to the field, and no program
    assert page.status_code == 400
    assert "The maximum face value must be at least the minimum." in page.content.decode()
    # when a share is above 100 %
    page = client.post("/vouchers/programs/new/", program_post(domestic_ratio="150"))
    assert page.status_code == 400 and "Enter a percentage between 0 and 100." in page.content.decode()
    assert 'value="150"' in page.content.decode()  # what was typed stays in the form
    assert not VoucherProgram.objects.filter(issuer=issuer).exists()


def test_issuer_edits_the_rules_of_own_program_only(startup, issuer):
    # given a program of this issuer and one of another issuer
    program = VoucherProgramFactory(issuer=issuer)
    other = VoucherProgramFactory()
    client = logged_in(issuer)
    assert (
        f'href="/vouchers/programs/{program.pk}/edit/"'
        in client.get(f"/vouchers/programs/{program.pk}/").content.decode()
    )
    form = client.get(f"/vouchers/programs/{program.pk}/edit/")
    assert form.status_code == 200 and f'value="{program.name}"' in form.content.decode()
    # when the ratio and the status are changed
    data = program_post(name=program.name, city=program.city, status="closed", domestic_ratio="40")
    assert client.post(f"/vouchers/programs/{program.pk}/edit/", data).status_code == 302
    # then they are saved
    program.refresh_from_db()
    assert (program.domestic_ratio, program.status) == (D("0.4"), "closed")
    # and a closed program cannot be reopened: 409 with the error on the status field
    reopen = client.post(f"/vouchers/programs/{program.pk}/edit/", {**data, "status": "active"})
    assert reopen.status_code == 409 and "Not allowed from closed." in reopen.content.decode()
    # and another issuer's program is not found; non-issuers may not create
    assert client.get(f"/vouchers/programs/{other.pk}/edit/").status_code == 404
    assert client.post(f"/vouchers/programs/{other.pk}/edit/", data).status_code == 404
    assert logged_in(startup).get("/vouchers/programs/new/").status_code == 403
    assert logged_in(startup).post("/vouchers/programs/new/", program_post()).status_code == 403


def field_block(page: str, name: str) -> str:
    """The HTML of one field's block on the program form: its label, input, help and errors."""
    start = page.index(f'name="{name}"')
    return page[page.rindex('<div class="form-field', 0, start) : page.index("</div>", start)]


def test_program_form_groups_fields_in_plain_words(issuer):
    # given other programs to exclude, of another issuer (active) and a hidden draft
    other = VoucherProgramFactory(name="Beijing national compute fund", level="national")
    hidden = VoucherProgramFactory(name="Someone's secret draft", status="draft")
    # when
    page = logged_in(issuer).get("/vouchers/programs/new/").content.decode()
    # then the fields sit in named groups, with labels people read and no internal names
    for legend in ("Basics", "Coverage", "Caps", "Stacking", "Eligibility"):
        assert f"<legend>{legend}</legend>" in page
    assert ">Combined cap for all vouchers (%)</label>" in page and ">Subsidy period (days)</label>" in page
    for internal in ("max_stacked_share", "sme_contract_ratio", "stack_levels", "eligible_buyer_cities"):
        assert f">{internal}" not in page and f"{internal}<" not in page
    # and lists are checkboxes, not multi-selects; every level is ticked for a new program
    assert "<select multiple" not in page and 'name="eligible_providers"' not in page.split("<select")[-1]
    assert page.count('type="checkbox" name="stack_levels"') == 4
    assert page.count('name="stack_levels" value="city" id="id_stack_levels_2" checked') == 1
    assert 'type="checkbox" name="eligible_buyer_cities" value="Beijing"' in page
    assert "Beijing national compute fund (Shanghai, national level)" in page and hidden.name not in page
    assert f'name="stack_excluded_programs" value="{other.pk}"' in page
    # and shares are typed in percent, the combined cap defaulting to 100 %
    assert 'name="max_stacked_share" value="100"' in page


def test_program_form_saves_percent_as_ratio_and_checkbox_lists(issuer):
    # given another program to exclude, a provider and a chip
    other = VoucherProgramFactory()
    provider = factories.ProviderFactory()
    chip = Accelerator.objects.get(slug="ascend-910b")
    client = logged_in(issuer)
    # when the form is posted with Hangzhou-like rules
    data = program_post(
        domestic_ratio="30",
        other_ratio="20.5",
        sme_bonus_ratio="",
        max_stacked_share="60",
        sme_contract_limit="500000.00",
        sme_contract_ratio="50",
        level="district",
        stack_levels=["national", "provincial"],
        stack_excluded_programs=[other.pk],
        eligible_buyer_cities=["Beijing", "Hangzhou"],
        subsidy_period_days="365",
        eligible_providers=[provider.pk],
        eligible_accelerators=[chip.pk],
        budget="250000.00",
    )
    response = client.post("/vouchers/programs/new/", data)
    # then percentages are stored as ratios and the ticked boxes as lists
    assert response.status_code == 302, response.content.decode()[:3000]
    program = VoucherProgram.objects.get(issuer=issuer, name="Hefei compute vouchers 2027")
    assert (program.domestic_ratio, program.other_ratio, program.sme_bonus_ratio) == (D("0.3"), D("0.205"), D("0"))
    assert (program.max_stacked_share, program.sme_contract_ratio, program.sme_contract_limit) == (
        D("0.6"),
        D("0.5"),
        D("500000.00"),
    )
    assert (program.level, program.stack_levels, program.subsidy_period_days) == (
        "district",
        ["national", "provincial"],
        365,
    )
    assert program.eligible_buyer_cities == ["Beijing", "Hangzhou"] and program.budget_total == D("250000.00")
    assert list(program.stack_excluded_programs.all()) == [other]
    assert list(program.eligible_providers.all()) == [provider]
    # when the edit form is opened / then the ratios come back as the percentages typed, boxes ticked
    page = client.get(f"/vouchers/programs/{program.pk}/edit/").content.decode()
    assert 'name="domestic_ratio" value="30"' in page and 'name="other_ratio" value="20.5"' in page
    assert 'name="max_stacked_share" value="60"' in page and 'name="sme_contract_ratio" value="50"' in page
    assert f'name="stack_excluded_programs" value="{other.pk}" id="id_stack_excluded_programs_0" checked' in page
    assert 'value="Hangzhou" id="id_eligible_buyer_cities_2" checked' in page
    assert 'value="city" id="id_stack_levels_2" checked' not in page
    assert f'value="{program.pk}"' not in page.split('name="stack_excluded_programs"', 1)[-1].split("</fieldset>")[0]
    assert 'name="budget"' not in page  # funded, not edited
    # when every box is unticked and saved / then the lists are cleared ("never combined", any city)
    data = program_post(level="district", stack_levels=None, subsidy_period_days="")
    assert client.post(f"/vouchers/programs/{program.pk}/edit/", data).status_code == 302
    program.refresh_from_db()
    assert (program.stack_levels, program.eligible_buyer_cities, program.subsidy_period_days) == ([], [], None)
    assert not program.stack_excluded_programs.exists() and not program.eligible_providers.exists()


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"max_stacked_share": "120"}, "max_stacked_share", "Enter a percentage between 0 and 100."),
        ({"sme_contract_ratio": "-5"}, "sme_contract_ratio", "Enter a percentage between 0 and 100."),
        ({"subsidy_period_days": "0"}, "subsidy_period_days", "greater than or equal to 1"),
        ({"sme_contract_limit": "-1"}, "sme_contract_limit", "greater than or equal to 0"),
        ({"level": "galactic"}, "level", "Select a valid choice."),
        ({"stack_levels": ["city", "galactic"]}, "stack_levels", "Select a valid choice."),
        ({"eligible_buyer_cities": ["Atlantis"]}, "eligible_buyer_cities", "Select a valid choice."),
        ({"stack_excluded_programs": ["999999"]}, "stack_excluded_programs", "Select a valid choice."),
    ],
)
def test_program_form_shows_rule_errors_next_to_the_field(issuer, change, field, message):
    page = logged_in(issuer).post("/vouchers/programs/new/", program_post(**change))
    assert page.status_code == 400
    html = page.content.decode()
    if field in ("stack_levels", "eligible_buyer_cities", "stack_excluded_programs"):
        block = html[html.index(f'id="id_{field}"') :]
        block = block[: block.index("</fieldset>")]
    else:
        block = field_block(html, field)
    assert message in block and 'class="error"' in block
    assert not VoucherProgram.objects.filter(issuer=issuer).exists()


def test_a_service_refusal_shows_next_to_its_field(issuer):
    # given our program / when it is made to exclude itself (only the service knows that rule)
    program = VoucherProgramFactory(issuer=issuer)
    client = logged_in(issuer)
    data = program_post(name=program.name, status="active", stack_excluded_programs=[program.pk])
    page = client.post(f"/vouchers/programs/{program.pk}/edit/", data)
    # then the form refuses it: the program is not among the choices
    assert page.status_code == 400 and "Select a valid choice." in page.content.decode()
    # and a duplicate name comes back from the service next to the name field
    VoucherProgramFactory(issuer=issuer, name="Taken")
    page = client.post(f"/vouchers/programs/{program.pk}/edit/", program_post(name="Taken", status="active"))
    assert page.status_code == 400
    assert "You already run a program with this name." in field_block(page.content.decode(), "name")


def test_program_page_states_the_stacking_rules_in_plain_words(startup, issuer):
    # given a Beijing-like program: no other city-level subsidy, 60 % combined cap, one year, buyer cities
    other = VoucherProgramFactory(name="Haidian district fund", level="district")
    program = VoucherProgramFactory(
        issuer=issuer,
        level="city",
        stack_levels=["national", "provincial", "district"],
        max_stacked_share=D("0.6"),
        subsidy_period_days=365,
        eligible_buyer_cities=["Beijing", "Hangzhou"],
        sme_contract_limit=D("500000.00"),
        sme_contract_ratio=D("0.5"),
        domestic_ratio=D("0.305"),
    )
    program.stack_excluded_programs.set([other])
    # when a startup opens it
    page = logged_in(startup).get(f"/vouchers/programs/{program.pk}/").content.decode()
    # then
    assert "A city-level program" in page
    assert (
        "May be combined only with vouchers of national, provincial and district-level programs "
        "(no other city-level subsidy)."
    ) in page
    assert f'Never combined with: <a href="/vouchers/programs/{other.pk}/">Haidian district fund</a>' in page
    assert "all vouchers together pay at most 60 % of a booking" in page
    assert "Subsidy period: 365 days from your organization's first booking this program pays for" in page
    assert "Only for organizations registered in Beijing or Hangzhou" in page
    assert "SMEs whose booking costs at most ¥500,000.00" in page and "get 50 % instead" in page
    assert "Pays 30.5 % on domestic accelerators" in page


def test_program_form_sets_the_idle_capacity_rule_in_percent(issuer):
    client = logged_in(issuer)
    # when the threshold is above 100 %
    page = client.post("/vouchers/programs/new/", program_post(idle_threshold_percent="150", idle_extra_ratio="10"))
    # then 400 with the error in place, and nothing written
    assert page.status_code == 400 and "Enter a percentage between 0 and 100." in page.content.decode()
    assert not VoucherProgram.objects.filter(issuer=issuer).exists()
    # when "10 % more below 30 %" is posted
    response = client.post("/vouchers/programs/new/", program_post(idle_threshold_percent="30", idle_extra_ratio="10"))
    # then it is stored as a percentage and a ratio, and the program page words it
    program = VoucherProgram.objects.get(issuer=issuer)
    assert response.status_code == 302
    assert (program.idle_threshold_percent, program.idle_extra_ratio) == (D("30"), D("0.1"))
    page = client.get(f"/vouchers/programs/{program.pk}/").content.decode()
    assert "Clusters booked less than 30 % of their listed hours over the last 7 days get 10 % more." in page
    # and the edit form shows it as typed
    assert 'value="10"' in client.get(f"/vouchers/programs/{program.pk}/edit/").content.decode()

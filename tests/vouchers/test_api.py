"""Vouchers API: programs, applications, approve/reject, vouchers; other organizations' objects answer 404."""

from decimal import Decimal as D  # noqa: N817

import pytest

from ledger.selectors import ledger_breaches
from marketplace.core.exceptions import ApplicationError
from tests import factories
from tests.vouchers.factories import VoucherProgramFactory, funded_program, held_booking, issued_voucher
from vouchers import services
from vouchers.models import VoucherApplication, VoucherProgram

pytestmark = pytest.mark.django_db

PROGRAMS = "/api/v1/voucher-programs/"
APPLICATIONS = "/api/v1/voucher-applications/"
VOUCHERS = "/api/v1/vouchers/"


def program_body(**extra):
    return {
        "name": "Shanghai compute vouchers",
        "budget": "5000000.00",
        "face_value_min": "1000000.00",
        "face_value_max": "2000000.00",
        "applications_open_from": "2026-01-01T00:00:00Z",
        "applications_open_until": "2030-01-01T00:00:00Z",
        "status": "active",
        "domestic_ratio": "0.30",
        "other_ratio": "0.30",
        **extra,
    }


def test_issuer_creates_and_funds_a_program(issuer_client, issuer):
    # given an accelerator the program covers
    chip = factories.AcceleratorFactory(slug="ascend-910b")
    # when
    response = issuer_client.post(PROGRAMS, program_body(eligible_accelerators=["ascend-910b"]), format="json")
    # then
    assert response.status_code == 201, response.data
    assert response.data["budget_total"] == "5000000.00" and response.data["issuer"] == issuer.name
    program = VoucherProgram.objects.get()
    assert list(program.eligible_accelerators.all()) == [chip] and program.city == issuer.city


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"face_value_max": "1.00"}, "face_value_max"),
        ({"other_ratio": "1.5000"}, "other_ratio"),
        ({"name": ""}, "name"),
        ({"status": "open"}, "status"),
    ],
)
def test_bad_program_is_400_with_field_errors(issuer_client, change, field):
    response = issuer_client.post(PROGRAMS, program_body(**change), format="json")
    assert response.status_code == 400 and field in response.data["errors"]
    assert not VoucherProgram.objects.exists()


def test_startups_cannot_create_programs(startup_client):
    assert startup_client.post(PROGRAMS, program_body(), format="json").status_code == 403


def test_program_list_shows_active_ones_and_own_drafts(startup_client, issuer_client, issuer):
    # given an active program, a draft of another issuer and a draft of ours
    active = VoucherProgramFactory()
    VoucherProgramFactory(status="draft")
    own_draft = VoucherProgramFactory(status="draft", issuer=issuer)
    # when / then
    assert [p["id"] for p in startup_client.get(PROGRAMS).data["results"]] == [active.pk]
    assert {p["id"] for p in issuer_client.get(PROGRAMS).data["results"]} == {active.pk, own_draft.pk}


def test_only_the_programs_issuer_can_patch_it(issuer_client, issuer):
    # given
    own, other = VoucherProgramFactory(issuer=issuer), VoucherProgramFactory()
    # when / then
    response = issuer_client.patch(f"{PROGRAMS}{own.pk}/", {"per_booking_cap": "50000.00"}, format="json")
    assert response.status_code == 200 and response.data["per_booking_cap"] == "50000.00"
    assert issuer_client.patch(f"{PROGRAMS}{other.pk}/", {"status": "closed"}, format="json").status_code == 404


def test_apply_approve_flow(startup_client, startup, issuer_client, issuer):
    # given
    program = funded_program(issuer=issuer)
    # when the startup applies
    response = startup_client.post(
        f"{PROGRAMS}{program.pk}/applications/",
        {"requested_amount": "200000.00", "purpose": "LLM pretraining"},
        format="json",
    )
    assert response.status_code == 201, response.data
    application_id = response.data["id"]
    # and the issuer approves a lower face value, with an idempotency key, twice
    url = f"{APPLICATIONS}{application_id}/approve/"
    first = issuer_client.post(url, {"face_value": "150000.00"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    replay = issuer_client.post(url, {"face_value": "150000.00"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    # then one voucher, visible to the startup with its balance
    assert first.status_code == 200 and replay.status_code == 200 and replay.data == first.data
    assert replay.headers.get("Idempotent-Replayed") == "true"
    voucher_id = first.data["voucher"]
    detail = startup_client.get(f"{VOUCHERS}{voucher_id}/")
    assert detail.status_code == 200
    assert (detail.data["balance"], detail.data["held"], detail.data["spent"]) == ("150000.00", "0.00", "0.00")
    assert detail.data["redemptions"] == []
    listing = startup_client.get(VOUCHERS).data["results"]
    assert [(v["id"], v["balance"]) for v in listing] == [(voucher_id, "150000.00")]
    assert ledger_breaches() == []


def test_apply_outside_the_face_value_range_is_400(startup_client):
    program = VoucherProgramFactory()
    response = startup_client.post(
        f"{PROGRAMS}{program.pk}/applications/", {"requested_amount": "999.99", "purpose": "x"}, format="json"
    )
    assert response.status_code == 400 and "requested_amount" in response.data["errors"]


def test_approve_beyond_budget_is_409(startup, issuer_client, issuer):
    program = funded_program("1000.00", issuer=issuer)
    application = services.application_submit(
        program=program, applicant=startup, requested_amount=D("1000.01"), purpose="x"
    )
    response = issuer_client.post(f"{APPLICATIONS}{application.pk}/approve/", {"face_value": "1000.01"}, format="json")
    assert response.status_code == 409
    application.refresh_from_db()
    assert application.status == "submitted"


def test_reject_needs_a_reason(startup, issuer_client, issuer):
    application = services.application_submit(
        program=VoucherProgramFactory(issuer=issuer), applicant=startup, requested_amount=D("5000"), purpose="x"
    )
    url = f"{APPLICATIONS}{application.pk}/reject/"
    assert issuer_client.post(url, {}, format="json").data["errors"].keys() == {"reason"}
    response = issuer_client.post(url, {"reason": "Not an AI workload"}, format="json")
    assert response.status_code == 200 and response.data["reject_reason"] == "Not an AI workload"


def test_an_issuer_sees_only_its_own_programs_applications(startup, issuer, issuer_client):
    # given applications to our program and to another issuer's
    ours = services.application_submit(
        program=VoucherProgramFactory(issuer=issuer), applicant=startup, requested_amount=D("5000"), purpose="x"
    )
    theirs = services.application_submit(
        program=VoucherProgramFactory(), applicant=startup, requested_amount=D("5000"), purpose="y"
    )
    # when / then
    assert [a["id"] for a in issuer_client.get(APPLICATIONS).data["results"]] == [ours.pk]
    response = issuer_client.post(f"{APPLICATIONS}{theirs.pk}/approve/", {"face_value": "5000"}, format="json")
    assert response.status_code == 404
    assert VoucherApplication.objects.get(pk=theirs.pk).status == "submitted"


def test_a_startup_never_sees_another_organizations_voucher(startup_client, startup):
    # given a voucher of another startup, with a redemption
    other = factories.StartupFactory()
    theirs = issued_voucher(holder=other)
    services.vouchers_hold_for_booking(booking=held_booking(buyer=other), voucher_ids=[theirs.pk])
    mine = issued_voucher(holder=startup)
    # when / then: not listed, 404 in detail, and not spendable (400 naming the organization rule)
    assert [v["id"] for v in startup_client.get(VOUCHERS).data["results"]] == [mine.pk]
    assert startup_client.get(f"{VOUCHERS}{theirs.pk}/").status_code == 404
    assert startup_client.get(f"{APPLICATIONS}").data["count"] == 1
    with pytest.raises(ApplicationError) as excinfo:
        services.voucher_quote(
            buyer=startup, listing=factories.ListingFactory(), subtotal=D("100"), voucher_ids=[theirs.pk]
        )
    assert excinfo.value.status == 400 and "rule: organization" in excinfo.value.errors["vouchers"][0]


def test_voucher_detail_lists_redemptions(startup_client, startup):
    voucher = issued_voucher(holder=startup, face_value="100000.00")
    booking = held_booking(buyer=startup, subtotal="10000.00")
    services.vouchers_hold_for_booking(booking=booking, voucher_ids=[voucher.pk])
    data = startup_client.get(f"{VOUCHERS}{voucher.pk}/").data
    assert (data["balance"], data["held"]) == ("98000.00", "2000.00")
    assert [(r["booking"], r["amount"], r["bound_by"], r["status"]) for r in data["redemptions"]] == [
        (booking.pk, "2000.00", "coverage_ratio", "held")
    ]


# --- levels, stacking rules, buyer cities, subsidy period, contract tier -----------------------------------------


def error_fields(response) -> set[str]:
    """The fields named in an error answer (``stack_levels.1`` → ``stack_levels``)."""
    return {name.split(".")[0] for name in response.data["errors"]}


def test_issuer_creates_a_program_with_levels_and_stacking_rules(issuer_client):
    # given a national program the new one must never be combined with
    national = VoucherProgramFactory(level="national")
    body = program_body(
        level="district",
        stack_levels=["national", "city"],
        stack_excluded_programs=[national.pk],
        eligible_buyer_cities=["Beijing", "Hangzhou"],
        subsidy_period_days=365,
        sme_contract_limit="500000.00",
        sme_contract_ratio="0.5",
        max_stacked_share="0.6",
    )
    # when
    response = issuer_client.post(PROGRAMS, body, format="json")
    # then every rule is saved and answered
    assert response.status_code == 201, response.data
    data = response.data
    assert (data["level"], data["stack_levels"], data["stack_excluded_programs"]) == (
        "district",
        ["national", "city"],
        [national.pk],
    )
    assert (data["eligible_buyer_cities"], data["subsidy_period_days"]) == (["Beijing", "Hangzhou"], 365)
    assert (data["sme_contract_limit"], data["sme_contract_ratio"], data["max_stacked_share"]) == (
        "500000.00",
        "0.5000",
        "0.6000",
    )
    program = VoucherProgram.objects.get(pk=data["id"])
    assert list(program.stack_excluded_programs.all()) == [national]
    assert (program.level, program.stack_levels, program.subsidy_period_days) == ("district", ["national", "city"], 365)
    # and they are read back by GET
    fetched = issuer_client.get(f"{PROGRAMS}{program.pk}/").data
    assert fetched["stack_excluded_programs"] == [national.pk] and fetched["eligible_buyer_cities"] == [
        "Beijing",
        "Hangzhou",
    ]


def test_defaults_stack_with_every_level_and_any_buyer_city(issuer_client):
    response = issuer_client.post(PROGRAMS, program_body(), format="json")
    assert response.status_code == 201, response.data
    assert response.data["level"] == "city"
    assert response.data["stack_levels"] == ["national", "provincial", "city", "district"]
    assert (response.data["eligible_buyer_cities"], response.data["stack_excluded_programs"]) == ([], [])
    assert (response.data["subsidy_period_days"], response.data["sme_contract_limit"]) == (None, None)


def test_patch_changes_and_clears_the_stacking_rules(issuer_client, issuer):
    # given a program of ours and two others
    own = VoucherProgramFactory(issuer=issuer)
    first, second = VoucherProgramFactory(), VoucherProgramFactory()
    url = f"{PROGRAMS}{own.pk}/"
    # when ("no other city-level subsidy": Beijing)
    response = issuer_client.patch(
        url,
        {
            "stack_levels": ["national", "provincial", "district"],
            "stack_excluded_programs": [first.pk, second.pk],
            "eligible_buyer_cities": ["Beijing"],
            "subsidy_period_days": 365,
        },
        format="json",
    )
    # then
    assert response.status_code == 200, response.data
    assert sorted(response.data["stack_excluded_programs"]) == sorted([first.pk, second.pk])
    own.refresh_from_db()
    assert own.stack_levels == ["national", "provincial", "district"] and own.eligible_buyer_cities == ["Beijing"]
    # when cleared / then empty lists and no period; fields not named stay as they were
    response = issuer_client.patch(
        url, {"stack_excluded_programs": [], "subsidy_period_days": None, "stack_levels": []}, format="json"
    )
    assert response.status_code == 200, response.data
    own.refresh_from_db()
    assert (own.stack_levels, own.subsidy_period_days, own.eligible_buyer_cities) == ([], None, ["Beijing"])
    assert not own.stack_excluded_programs.exists()


def test_a_program_excluding_another_is_never_combined_with_it(issuer_client, startup):
    # given an active program of another issuer, and ours that excludes it
    theirs = funded_program()
    response = issuer_client.post(
        PROGRAMS,
        program_body(budget="5000000.00", face_value_min="1000.00", stack_excluded_programs=[theirs.pk]),
        format="json",
    )
    assert response.status_code == 201, response.data
    ours = VoucherProgram.objects.get(pk=response.data["id"])
    # and a startup holding a voucher of each
    ours_voucher = issued_voucher(holder=startup, program=ours, face_value="100000.00")
    theirs_voucher = issued_voucher(holder=startup, program=theirs, face_value="100000.00")
    # when a booking names both / then only one of them pays, and the other part names the stacking rule
    parts = services.voucher_quote(
        buyer=startup,
        listing=factories.ListingFactory(),
        subtotal=D("10000.00"),
        voucher_ids=[ours_voucher.pk, theirs_voucher.pk],
    )
    assert sorted(part.amount > 0 for part in parts) == [False, True]
    assert [part.bound_by for part in parts if part.amount == 0] == ["stacking_rule"]


def test_a_program_cannot_exclude_itself(issuer_client, issuer):
    own = VoucherProgramFactory(issuer=issuer)
    response = issuer_client.patch(f"{PROGRAMS}{own.pk}/", {"stack_excluded_programs": [own.pk]}, format="json")
    assert response.status_code == 400 and "stack_excluded_programs" in response.data["errors"]
    assert not own.stack_excluded_programs.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"level": "municipal"}, "level"),
        ({"level": "city\x00"}, "level"),
        ({"stack_levels": ["city", "galactic"]}, "stack_levels"),
        ({"stack_levels": "city"}, "stack_levels"),
        ({"eligible_buyer_cities": ["Atlantis"]}, "eligible_buyer_cities"),
        ({"eligible_buyer_cities": ["Beijing\x00"]}, "eligible_buyer_cities"),
        ({"subsidy_period_days": 0}, "subsidy_period_days"),
        ({"subsidy_period_days": -5}, "subsidy_period_days"),
        ({"subsidy_period_days": 1e30}, "subsidy_period_days"),
        ({"subsidy_period_days": "1e30"}, "subsidy_period_days"),
        ({"sme_contract_limit": "-1.00"}, "sme_contract_limit"),
        ({"sme_contract_limit": 1e30}, "sme_contract_limit"),
        ({"sme_contract_limit": "1e30"}, "sme_contract_limit"),
        ({"sme_contract_ratio": "1.01"}, "sme_contract_ratio"),
        ({"sme_contract_ratio": "-0.1"}, "sme_contract_ratio"),
        ({"max_stacked_share": "1.5"}, "max_stacked_share"),
        ({"per_booking_cap": "-5.00"}, "per_booking_cap"),
        ({"validity_days": 0}, "validity_days"),
        ({"name": "Shanghai\x00vouchers"}, "name"),
        ({"description": "nul \x00 byte"}, "description"),
        ({"stack_excluded_programs": [999999]}, "stack_excluded_programs"),
        ({"stack_excluded_programs": [10**30]}, "stack_excluded_programs"),
        ({"stack_excluded_programs": ["abc"]}, "stack_excluded_programs"),
        ({"stack_excluded_programs": [1e30]}, "stack_excluded_programs"),
    ],
)
def test_bad_rules_are_400_with_field_errors_and_write_nothing(issuer_client, change, field):
    response = issuer_client.post(PROGRAMS, program_body(**change), format="json")
    assert response.status_code == 400, response.data
    assert field in error_fields(response), response.data  # a list's item errors are named "field.<index>"
    assert not VoucherProgram.objects.exists()


def test_bad_patch_is_400_and_changes_nothing(issuer_client, issuer):
    own = VoucherProgramFactory(issuer=issuer, level="city")
    for change in (
        {"level": "planetary"},
        {"sme_contract_ratio": "2"},
        {"subsidy_period_days": 0},
        {"stack_excluded_programs": [own.pk + 1000]},
        {"eligible_buyer_cities": ["Nowhere"]},
    ):
        response = issuer_client.patch(f"{PROGRAMS}{own.pk}/", {"per_booking_cap": "10.00", **change}, format="json")
        assert response.status_code == 400 and set(change) <= error_fields(response), response.data
    own.refresh_from_db()
    assert (own.level, own.per_booking_cap, own.sme_contract_ratio, own.subsidy_period_days) == (
        "city",
        None,
        D("0"),
        None,
    )


def test_excluding_a_program_the_caller_cannot_see_is_400(issuer_client):
    # given a draft of another issuer (invisible to us)
    hidden = VoucherProgramFactory(status="draft")
    # when / then it is refused like an unknown id
    response = issuer_client.post(PROGRAMS, program_body(stack_excluded_programs=[hidden.pk]), format="json")
    assert response.status_code == 400 and "stack_excluded_programs" in response.data["errors"]
    assert not VoucherProgram.objects.filter(name="Shanghai compute vouchers").exists()


def test_schema_explains_the_stacking_rules_in_plain_words(issuer_client):
    schema = issuer_client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    props = schema["components"]["schemas"]["VoucherProgramRequest"]["properties"]
    for name in (
        "level",
        "stack_levels",
        "stack_excluded_programs",
        "eligible_buyer_cities",
        "subsidy_period_days",
        "sme_contract_limit",
        "sme_contract_ratio",
        "max_stacked_share",
    ):
        assert props[name].get("description"), name
    assert "never combined" in props["stack_excluded_programs"]["description"]


def test_a_naive_application_window_is_400_and_writes_nothing(issuer_client):
    # given a program whose window has no UTC offset (bookings, listings and bids refuse those too)
    body = {
        "name": "Naive",
        "face_value_min": "1000.00",
        "face_value_max": "2000.00",
        "applications_open_from": "2026-12-01T00:00:00Z",
        "applications_open_until": "2026-12-06T11:00:00",
    }
    # when
    response = issuer_client.post("/api/v1/voucher-programs/", body, format="json")
    # then
    assert response.status_code == 400
    assert "applications_open_until" in response.json()["errors"]
    assert not VoucherProgram.objects.filter(name="Naive").exists()


def test_the_issuer_revokes_a_voucher_its_program_issued_and_the_balance_returns(issuer_client, issuer, startup):
    # given a voucher of the issuer's program, part of it held by a booking
    program = funded_program("500000.00", issuer=issuer)
    voucher = issued_voucher(holder=startup, program=program, face_value="100000.00")
    booking = held_booking(buyer=startup, subtotal="10000.00")
    services.vouchers_hold_for_booking(booking=booking, voucher_ids=[voucher.pk])
    # when
    response = issuer_client.post(f"/api/v1/vouchers/{voucher.pk}/revoke/", {"reason": "fraud"}, format="json")
    # then it is revoked, its unheld balance went back to the budget, and a second revoke changes nothing
    assert response.status_code == 200 and response.data["status"] == "revoked"
    assert D(response.data["balance"]) == D("0.00") and D(response.data["held"]) > 0
    again = issuer_client.post(f"/api/v1/vouchers/{voucher.pk}/revoke/", {"reason": "again"}, format="json")
    assert again.status_code == 200 and again.data["balance"] == response.data["balance"]
    assert ledger_breaches() == []


def test_revoking_needs_a_reason_and_is_only_for_the_issuing_program(issuer_client, issuer, startup):
    other_program_voucher = issued_voucher(holder=startup, face_value="100000.00")  # another issuer's program
    mine = issued_voucher(holder=startup, program=funded_program(issuer=issuer), face_value="100000.00")
    # when / then
    assert (
        issuer_client.post(f"/api/v1/vouchers/{other_program_voucher.pk}/revoke/", {"reason": "x"}).status_code == 404
    )
    no_reason = issuer_client.post(f"/api/v1/vouchers/{mine.pk}/revoke/", {}, format="json")
    assert no_reason.status_code == 400 and "reason" in no_reason.data["errors"]
    mine.refresh_from_db()
    assert mine.status == "active"


# --- idle capacity rule -----------------------------------------------------------------------------------------


def test_issuer_sets_the_idle_capacity_rule_and_reads_it_back(issuer_client):
    # when a program is created with "10 % more below 30 % utilisation"
    response = issuer_client.post(
        PROGRAMS, program_body(idle_threshold_percent="30", idle_extra_ratio="0.1"), format="json"
    )
    # then it is stored and shown as given
    assert response.status_code == 201, response.data
    program = VoucherProgram.objects.get(pk=response.data["id"])
    assert (program.idle_threshold_percent, program.idle_extra_ratio) == (D("30"), D("0.1"))
    fetched = issuer_client.get(f"{PROGRAMS}{program.pk}/").data
    assert (fetched["idle_threshold_percent"], fetched["idle_extra_ratio"]) == ("30.00", "0.1000")
    # and it is cleared with nulls
    cleared = issuer_client.patch(
        f"{PROGRAMS}{program.pk}/", {"idle_threshold_percent": None, "idle_extra_ratio": None}, format="json"
    )
    assert cleared.status_code == 200, cleared.data
    program.refresh_from_db()
    assert (program.idle_threshold_percent, program.idle_extra_ratio) == (None, None)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"idle_threshold_percent": "150", "idle_extra_ratio": "0.1"}, "idle_threshold_percent"),
        ({"idle_threshold_percent": "-1", "idle_extra_ratio": "0.1"}, "idle_threshold_percent"),
        ({"idle_threshold_percent": "30", "idle_extra_ratio": "-0.1"}, "idle_extra_ratio"),
        ({"idle_threshold_percent": "30", "idle_extra_ratio": "1.5"}, "idle_extra_ratio"),
        ({"idle_threshold_percent": "30"}, "idle_extra_ratio"),  # a threshold without an extra share
        ({"idle_extra_ratio": "0.1"}, "idle_threshold_percent"),  # an extra share without a threshold
        ({"idle_threshold_percent": "abc", "idle_extra_ratio": "0.1"}, "idle_threshold_percent"),
    ],
)
def test_bad_idle_capacity_rule_is_400_with_field_errors_and_writes_nothing(issuer_client, change, field):
    response = issuer_client.post(PROGRAMS, program_body(**change), format="json")
    assert response.status_code == 400, response.data
    assert field in error_fields(response), response.data
    assert not VoucherProgram.objects.exists()


def test_the_database_refuses_an_idle_rule_out_of_range():
    from django.db import IntegrityError, transaction

    program = VoucherProgramFactory()
    for threshold, extra in ((D("150"), D("0.1")), (D("30"), D("-0.1")), (D("30"), None)):
        with pytest.raises(IntegrityError), transaction.atomic():
            VoucherProgram.objects.filter(pk=program.pk).update(
                idle_threshold_percent=threshold, idle_extra_ratio=extra
            )
    program.refresh_from_db()
    assert (program.idle_threshold_percent, program.idle_extra_ratio) == (None, None)

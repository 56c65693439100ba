"""Voucher services: programs, applications, issue against the budget, expiry, revocation, hold/release/capture."""

import datetime as dt
from decimal import Decimal as D  # noqa: N817

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from ledger.models import LedgerAccount
from ledger.selectors import ledger_breaches
from ledger.services import account_for
from marketplace.core.exceptions import ApplicationError
from tests import factories
from tests.vouchers.factories import VoucherProgramFactory, capture_for, funded_program, held_booking, issued_voucher
from vouchers import selectors, services
from vouchers.models import Redemption, Voucher, VoucherApplication, VoucherProgram

pytestmark = pytest.mark.django_db


def balance(kind, owner_id) -> D:
    return LedgerAccount.objects.get(kind=kind, owner_id=owner_id).balance


# --- programs -------------------------------------------------------------------------------------------------


def test_program_create_funds_the_budget(issuer):
    # when
    program = services.program_create(
        issuer=issuer,
        budget=D("5000000.00"),
        name="Shanghai compute vouchers",
        face_value_min=D("1000000.00"),
        face_value_max=D("2000000.00"),
        applications_open_from=timezone.now(),
        applications_open_until=timezone.now() + dt.timedelta(days=30),
        domestic_ratio=D("0.3"),
        other_ratio=D("0.3"),
    )
    # then
    assert program.city == issuer.city and program.budget_total == D("5000000.00")
    assert balance("program_budget", program.pk) == D("5000000.00")
    assert balance("program_funding", program.pk) == D("-5000000.00")
    assert AuditEvent.objects.filter(action="voucher_program.fund").count() == 1
    assert ledger_breaches() == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"face_value_min": D("2.00"), "face_value_max": D("1.00")}, "face_value_max"),
        ({"domestic_ratio": D("1.5")}, "domestic_ratio"),
        ({"max_stacked_share": D("-0.1")}, "max_stacked_share"),
        ({"per_booking_cap": D("-1.00")}, "per_booking_cap"),
        ({"validity_days": 0}, "validity_days"),
        ({"subsidy_period_days": 0}, "subsidy_period_days"),
        ({"level": "galactic"}, "level"),
        ({"stack_levels": ["city", "moon"]}, "stack_levels"),
        ({"eligible_buyer_cities": ["Atlantis"]}, "eligible_buyer_cities"),
        ({"sme_contract_ratio": D("1.01")}, "sme_contract_ratio"),
    ],
)
def test_program_create_refuses_bad_rules_with_field_errors(issuer, fields, field):
    base = {
        "name": "P",
        "face_value_min": D("1.00"),
        "face_value_max": D("2.00"),
        "applications_open_from": timezone.now(),
        "applications_open_until": timezone.now() + dt.timedelta(1),
    }
    with pytest.raises(ApplicationError) as excinfo:
        services.program_create(issuer=issuer, **{**base, **fields})
    assert excinfo.value.status == 400 and field in excinfo.value.errors
    assert not VoucherProgram.objects.exists()


def test_program_create_by_a_startup_is_403(startup):
    with pytest.raises(ApplicationError) as excinfo:
        services.program_create(
            issuer=startup,
            name="x",
            face_value_min=D(1),
            face_value_max=D(2),
            applications_open_from=timezone.now(),
            applications_open_until=timezone.now() + dt.timedelta(1),
        )
    assert excinfo.value.status == 403


def test_program_fund_is_idempotent_per_key():
    program = VoucherProgramFactory()
    for _ in range(2):
        services.program_fund(program=program, amount=D("100.00"), idempotency_key="fund-1")
    program.refresh_from_db()
    assert program.budget_total == D("100.00") and balance("program_budget", program.pk) == D("100.00")


def test_program_update_follows_the_status_pipeline():
    program = VoucherProgramFactory(status=VoucherProgram.Status.CLOSED)
    with pytest.raises(ApplicationError) as excinfo:
        services.program_update(program=program, status="active")
    assert excinfo.value.status == 409


# --- applications ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "ok"),
    [(D("1000.00"), True), (D("999.99"), False), (D("2000000.00"), True), (D("2000000.01"), False)],
)
def test_application_amount_must_be_within_the_face_value_range(startup, amount, ok):
    program = VoucherProgramFactory()
    if ok:
        assert (
            services.application_submit(
                program=program, applicant=startup, requested_amount=amount, purpose="LLM pretraining"
            ).status
            == "submitted"
        )
    else:
        with pytest.raises(ApplicationError) as excinfo:
            services.application_submit(program=program, applicant=startup, requested_amount=amount, purpose="x")
        assert "requested_amount" in excinfo.value.errors
        assert not VoucherApplication.objects.exists()


@pytest.mark.parametrize("change", [{"status": "draft"}, {"applications_open_until": timezone.now()}])
def test_application_needs_an_active_program_with_an_open_window(startup, change):
    program = VoucherProgramFactory(**change)
    with pytest.raises(ApplicationError) as excinfo:
        services.application_submit(program=program, applicant=startup, requested_amount=D("5000"), purpose="x")
    assert excinfo.value.status == 409


def test_approve_issues_a_voucher_from_the_budget(startup):
    # given
    program = funded_program("300000.00")
    application = services.application_submit(
        program=program, applicant=startup, requested_amount=D("200000"), purpose="fine-tuning"
    )
    # when the issuer approves a lower face value
    voucher = services.application_approve(application=application, face_value=D("150000.00"))
    # then
    application.refresh_from_db()
    assert (application.status, application.approved_face_value) == ("approved", D("150000.00"))
    assert voucher.holder == startup and voucher.face_value == D("150000.00")
    assert voucher.expires_at == voucher.issued_at + dt.timedelta(days=program.validity_days)
    assert balance("voucher", voucher.pk) == D("150000.00")
    assert balance("program_budget", program.pk) == D("150000.00")
    assert ledger_breaches() == []


def test_approve_above_the_request_is_refused(startup):
    program = funded_program()
    application = services.application_submit(
        program=program, applicant=startup, requested_amount=D("5000"), purpose="x"
    )
    with pytest.raises(ApplicationError) as excinfo:
        services.application_approve(application=application, face_value=D("5000.01"))
    assert "face_value" in excinfo.value.errors and not Voucher.objects.exists()


def test_a_program_cannot_issue_beyond_its_budget(startup):
    # given a budget of 150 000 and one voucher of 100 000 issued
    program = funded_program("150000.00")
    issued_voucher(holder=startup, program=program, face_value="100000.00")
    second = services.application_submit(
        program=program, applicant=startup, requested_amount=D("50000.01"), purpose="x"
    )
    # when one fen more than is left is approved / then 409 and nothing written
    with pytest.raises(ApplicationError) as excinfo:
        services.application_approve(application=second, face_value=D("50000.01"))
    assert excinfo.value.status == 409
    second.refresh_from_db()
    assert second.status == "submitted" and Voucher.objects.count() == 1
    # when exactly what is left / then it is issued
    services.application_approve(application=second, face_value=D("50000.00"))
    assert balance("program_budget", program.pk) == D("0.00") and ledger_breaches() == []


def test_reject_needs_a_reason_and_decides_once(startup):
    program = VoucherProgramFactory()
    application = services.application_submit(
        program=program, applicant=startup, requested_amount=D("5000"), purpose="x"
    )
    with pytest.raises(ApplicationError) as excinfo:
        services.application_reject(application=application, reason="  ")
    assert "reason" in excinfo.value.errors
    services.application_reject(application=application, reason="Out of scope")
    with pytest.raises(ApplicationError) as excinfo:
        services.application_approve(application=application, face_value=D("5000"))
    assert excinfo.value.status == 409


# --- expiry and revocation ------------------------------------------------------------------------------------


def test_expire_returns_the_unheld_balance_once(startup):
    # given a voucher with part of it held
    voucher = issued_voucher(holder=startup, face_value="100000.00")
    booking = held_booking(buyer=startup, subtotal="10000.00")
    services.vouchers_hold_for_booking(booking=booking, voucher_ids=[voucher.pk])
    budget_before = balance("program_budget", voucher.program_id)
    # when it is too early / then 409
    with pytest.raises(ApplicationError) as excinfo:
        services.voucher_expire(voucher=voucher)
    assert excinfo.value.status == 409
    # when past expiry, twice
    later = voucher.expires_at + dt.timedelta(seconds=1)
    services.voucher_expire(voucher=voucher, now=later)
    services.voucher_expire(voucher=voucher, now=later)
    # then the unheld 98 000 went back once; the held 2 000 stays held
    voucher.refresh_from_db()
    assert voucher.status == "expired"
    assert balance("program_budget", voucher.program_id) == budget_before + D("98000.00")
    assert balance("voucher", voucher.pk) == D("0.00") and balance("voucher_hold", voucher.pk) == D("2000.00")
    # when the booking is cancelled / then its part returns to the program budget too
    services.redemptions_release(booking=booking)
    assert balance("voucher_hold", voucher.pk) == D("0.00") and balance("voucher", voucher.pk) == D("0.00")
    assert balance("program_budget", voucher.program_id) == budget_before + D("100000.00")
    assert ledger_breaches() == []


def test_revoked_voucher_cannot_pay_and_returns_its_balance(startup):
    voucher = issued_voucher(holder=startup, face_value="5000.00")
    services.voucher_revoke(voucher=voucher, reason="fraud")
    assert balance("voucher", voucher.pk) == D("0.00")
    with pytest.raises(ApplicationError) as excinfo:
        services.voucher_quote(
            buyer=startup, listing=factories.ListingFactory(), subtotal=D("100"), voucher_ids=[voucher.pk]
        )
    assert f"Voucher {voucher.pk} has been revoked." == excinfo.value.errors["vouchers"][0]


# --- redemption -----------------------------------------------------------------------------------------------


def test_quote_explains_the_binding_rule(startup):
    program = funded_program(per_booking_cap=D("1500.00"))
    voucher = issued_voucher(holder=startup, program=program, face_value="100000.00")
    (part,) = services.voucher_quote(
        buyer=startup, listing=factories.ListingFactory(), subtotal=D("10000.00"), voucher_ids=[voucher.pk]
    )
    assert (part.amount, part.bound_by) == (D("1500.00"), "per_booking_cap")


def test_subsidy_period_counts_from_the_buyers_first_subsidised_booking(startup):
    # given a one-year program and a first subsidised booking made 365 days ago
    program = funded_program(subsidy_period_days=365)
    voucher = issued_voucher(holder=startup, program=program, face_value="100000.00")
    first = held_booking(buyer=startup, subtotal="1000.00")
    services.vouchers_hold_for_booking(booking=first, voucher_ids=[voucher.pk])
    listing = factories.ListingFactory()
    # when quoting now, and as if a year had passed since that booking
    services.voucher_quote(buyer=startup, listing=listing, subtotal=D("1000.00"), voucher_ids=[voucher.pk])
    Redemption.objects.filter(booking=first).update(created_at=timezone.now() - dt.timedelta(days=365))
    with pytest.raises(ApplicationError) as excinfo:
        services.voucher_quote(buyer=startup, listing=listing, subtotal=D("1000.00"), voucher_ids=[voucher.pk])
    # then the period is over
    assert excinfo.value.errors["vouchers"] == [services.VIOLATION_MESSAGES["subsidy_period_over"] % {"id": voucher.pk}]


def test_a_released_part_does_not_start_the_subsidy_period(startup):
    # given a one-year program whose only booking, a year ago, was cancelled (its part released)
    program = funded_program(subsidy_period_days=365)
    voucher = issued_voucher(holder=startup, program=program, face_value="100000.00")
    first = held_booking(buyer=startup, subtotal="1000.00")
    services.vouchers_hold_for_booking(booking=first, voucher_ids=[voucher.pk])
    services.redemptions_release(booking=first)
    Redemption.objects.filter(booking=first).update(created_at=timezone.now() - dt.timedelta(days=400))
    # when / then the voucher still pays
    (part,) = services.voucher_quote(
        buyer=startup, listing=factories.ListingFactory(), subtotal=D("1000.00"), voucher_ids=[voucher.pk]
    )
    assert part.amount == D("200.00")


@pytest.mark.parametrize(("buyer_city", "ok"), [("Beijing", True), ("Shanghai", False)])
def test_buyer_registered_city_is_read_from_the_organization(buyer_city, ok):
    # given a program for organizations registered in Beijing
    startup = factories.StartupFactory(city=buyer_city)
    program = funded_program(eligible_buyer_cities=["Beijing"])
    voucher = issued_voucher(holder=startup, program=program, face_value="100000.00")
    quote = lambda: services.voucher_quote(  # noqa: E731
        buyer=startup, listing=factories.ListingFactory(), subtotal=D("1000.00"), voucher_ids=[voucher.pk]
    )
    # when / then
    if ok:
        assert quote()[0].amount == D("200.00")
    else:
        with pytest.raises(ApplicationError, match="cannot pay"):
            quote()


def test_program_stacking_exclusions_come_from_the_program_page(startup):
    # given two programs, the first excluding the second
    p1, p2 = funded_program(other_ratio=D("0.20")), funded_program(other_ratio=D("0.25"))
    services.program_update(program=p1, stack_excluded_programs=[p2])
    vouchers = [issued_voucher(holder=startup, program=p).pk for p in (p1, p2)]
    # when
    parts = services.voucher_quote(
        buyer=startup, listing=factories.ListingFactory(), subtotal=D("1000.00"), voucher_ids=vouchers
    )
    # then only the better program pays
    assert sorted((p.amount, p.bound_by) for p in parts) == [
        (D("0.00"), "stacking_rule"),
        (D("250.00"), "coverage_ratio"),
    ]


def test_quote_with_another_organizations_voucher_is_400_naming_the_rule(startup):
    voucher = issued_voucher(holder=factories.StartupFactory())
    with pytest.raises(ApplicationError) as excinfo:
        services.voucher_quote(
            buyer=startup, listing=factories.ListingFactory(), subtotal=D("100"), voucher_ids=[voucher.pk]
        )
    assert excinfo.value.status == 400
    message = f"Voucher {voucher.pk}: not one of your vouchers (rule: organization)."
    assert excinfo.value.errors == {"vouchers": [message]}


@pytest.mark.parametrize(
    ("setup", "rule"),
    [
        ("related", "related_party"),
        ("whitelist", "provider_not_eligible"),
        ("unreviewed", "unreviewed_listing"),
        ("filing", "model_filing_required"),
        ("city", "data_center_city"),
        ("accelerator", "accelerator_not_eligible"),
    ],
)
def test_quote_refuses_ineligible_bookings_naming_the_rule(startup, setup, rule):
    # given
    listing = factories.ListingFactory(cluster__data_center__city="Beijing")
    provider = listing.cluster.data_center.provider
    program = funded_program(requires_model_filing=setup == "filing", city_data_centers_only=setup == "city")
    if setup == "related":
        provider.owners = [startup.legal_representative]
        provider.save()
    if setup == "whitelist":
        program.eligible_providers.set([factories.ProviderFactory()])
    if setup == "accelerator":
        program.eligible_accelerators.set([factories.AcceleratorFactory()])
    if setup == "unreviewed":
        accelerator = listing.cluster.accelerator
        accelerator.export_controlled = True
        accelerator.save()
    voucher = issued_voucher(holder=startup, program=program)
    # when
    with pytest.raises(ApplicationError) as excinfo:
        services.voucher_quote(buyer=startup, listing=listing, subtotal=D("100"), voucher_ids=[voucher.pk])
    # then
    # (in plain words, not the rule's code)
    assert excinfo.value.status == 400
    assert excinfo.value.errors["vouchers"] == [services.VIOLATION_MESSAGES[rule] % {"id": voucher.pk}]


def test_hold_release_capture_move_ledger_balances(startup):
    # given
    voucher = issued_voucher(holder=startup, face_value="100000.00")
    booking = held_booking(buyer=startup, subtotal="10000.00")
    # when held (twice: idempotent)
    (redemption,) = services.vouchers_hold_for_booking(booking=booking, voucher_ids=[voucher.pk])
    again = services.vouchers_hold_for_booking(booking=booking, voucher_ids=[voucher.pk])
    # then
    assert [r.pk for r in again] == [redemption.pk]
    assert (redemption.amount, redemption.bound_by, redemption.status) == (D("2000.00"), "coverage_ratio", "held")
    assert balance("voucher", voucher.pk) == D("98000.00") and balance("voucher_hold", voucher.pk) == D("2000.00")
    # when released (twice)
    assert len(services.redemptions_release(booking=booking)) == 1
    assert services.redemptions_release(booking=booking) == []
    # then
    redemption.refresh_from_db()
    assert redemption.status == "released" and balance("voucher", voucher.pk) == D("100000.00")
    # when another booking is held then captured (twice)
    second = held_booking(buyer=startup, subtotal="10000.00")
    services.vouchers_hold_for_booking(booking=second, voucher_ids=[voucher.pk])
    due = account_for("reimbursement_due", voucher.program_id)
    assert len(capture_for(second, due)) == 1
    assert capture_for(second, due) == []
    # then
    due.refresh_from_db()
    assert due.balance == D("2000.00") and balance("voucher_hold", voucher.pk) == D("0.00")
    assert selectors.voucher_balances([voucher.pk])[voucher.pk] == {
        "balance": D("98000.00"),
        "held": D("0.00"),
        "spent": D("2000.00"),
    }
    assert AuditEvent.objects.filter(action__in=["voucher.hold", "voucher.release", "voucher.capture"]).count() == 4
    assert ledger_breaches() == []


def test_hold_respects_the_annual_cap_across_bookings(startup):
    # given an annual cap of 3 000 and 20 % coverage → 2 000 per 10 000 booking
    program = funded_program(annual_cap_per_org=D("3000.00"))
    voucher = issued_voucher(holder=startup, program=program, face_value="100000.00")
    # when two bookings are held
    first = services.vouchers_hold_for_booking(booking=held_booking(buyer=startup), voucher_ids=[voucher.pk])
    second = services.vouchers_hold_for_booking(booking=held_booking(buyer=startup), voucher_ids=[voucher.pk])
    third = services.vouchers_hold_for_booking(booking=held_booking(buyer=startup), voucher_ids=[voucher.pk])
    # then the second only gets what the cap leaves, the third nothing
    assert first[0].amount == D("2000.00")
    assert (second[0].amount, second[0].bound_by) == (D("1000.00"), "annual_cap")
    assert third == [] and Redemption.objects.count() == 2

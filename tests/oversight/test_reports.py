"""Spend reports: totals equal to the ledger's, grouping, and the issuer scope."""

from decimal import Decimal as D  # noqa: N817

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from ledger.models import Entry, LedgerAccount
from oversight import reports
from settlement.models import ReimbursementClaim
from settlement.payout_services import claim_mark_paid
from settlement.services import booking_settle
from tests import factories
from tests.settlement.factories import booking_in, completed_booking
from tests.vouchers.factories import funded_program, issued_voucher
from vouchers.services import redemptions_release

pytestmark = pytest.mark.django_db


@pytest.fixture
def spend(startup):
    """Two issuers' programs (Shanghai, Beijing); settled, paid, held and released voucher parts."""
    shanghai = funded_program(city="Shanghai")
    beijing = funded_program(city="Beijing")
    v_sh = issued_voucher(holder=startup, program=shanghai)
    v_bj = issued_voucher(holder=startup, program=beijing)
    domestic = factories.ListingFactory(cluster__accelerator__domestic=True)
    settled_paid = completed_booking(buyer=startup, vouchers=[v_sh], subtotal="1000.00", listing=domestic)
    booking_settle(booking_id=settled_paid.pk)
    claim_mark_paid(claim=ReimbursementClaim.objects.get(booking=settled_paid))
    booking_settle(booking_id=completed_booking(buyer=startup, vouchers=[v_bj], subtotal="500.00").pk)
    booking_in("confirmed", buyer=startup, vouchers=[v_sh], subtotal="2000.00", start=factories.next_hour(5))
    released = booking_in("confirmed", buyer=startup, vouchers=[v_bj], subtotal="3000.00", start=factories.next_hour(8))
    redemptions_release(booking=released)
    return {"shanghai": shanghai, "beijing": beijing}


def test_totals_equal_the_ledger(spend):
    # when
    with CaptureQueriesContext(connection) as queries:
        rows = reports.spend_report(group_by="program")
    totals = reports.spend_totals(rows)
    # then: one query, and each column matches the ledger
    assert len(queries) == 1
    held_in_ledger = LedgerAccount.objects.filter(kind="voucher_hold").aggregate(s=Sum("balance"))["s"]
    captured_in_ledger = -Entry.objects.filter(
        account__kind="voucher_hold", transaction__kind="voucher_capture"
    ).aggregate(s=Sum("amount"))["s"]
    paid = ReimbursementClaim.objects.filter(status="paid").aggregate(s=Sum("amount"))["s"]
    assert totals["held"] == held_in_ledger == D("400.00")  # 20 % of 2 000
    assert totals["captured"] == captured_in_ledger == D("400.00")  # 30 % of 1 000 (domestic) + 20 % of 500
    assert totals["reimbursed"] == paid == D("300.00")
    assert totals["spent"] == D("800.00") and totals["bookings"] == 3


def test_program_rows_show_budget_used(spend):
    # when
    rows = {row["key"]: row for row in reports.spend_report(group_by="program")}
    # then
    sh = rows[str(spend["shanghai"].pk)]
    assert (sh["held"], sh["captured"], sh["reimbursed"], sh["budget_total"]) == (
        D("400.00"),
        D("300.00"),
        D("300.00"),
        D("10000000.00"),
    )
    assert sh["budget_used"] == D("0.0001")  # 700 / 10 000 000, to 4 places


@pytest.mark.parametrize("group_by", reports.GROUPS)
def test_every_grouping_adds_up_to_the_same_totals(spend, group_by):
    # when
    totals = reports.spend_totals(reports.spend_report(group_by=group_by))
    # then
    assert (totals["held"], totals["captured"], totals["reimbursed"]) == (D("400.00"), D("400.00"), D("300.00"))


def test_city_and_chip_groupings(spend):
    # when
    by_city = {row["key"]: row["spent"] for row in reports.spend_report(group_by="city")}
    by_chip = reports.spend_report(group_by="accelerator")
    # then
    assert by_city == {"Beijing": D("100.00"), "Shanghai": D("700.00")}
    assert sum(r["spent"] for r in by_chip if r["domestic"]) == D("300.00")


def test_issuer_sees_only_its_own_programs(spend):
    # given the Shanghai issuer's member
    member = factories.member_of(spend["shanghai"].issuer)
    # when
    issuers = reports.spend_scope(member)
    rows = reports.spend_report(group_by="program", issuer_ids=issuers)
    # then
    assert [row["key"] for row in rows] == [str(spend["shanghai"].pk)]


def test_unknown_grouping_is_a_field_error():
    with pytest.raises(reports.ApplicationError) as excinfo:
        reports.spend_report(group_by="planet")
    assert excinfo.value.status == 400 and "group_by" in excinfo.value.errors


def test_startups_have_no_spend_scope(startup):
    with pytest.raises(reports.ApplicationError) as excinfo:
        reports.spend_scope(factories.member_of(startup))
    assert excinfo.value.status == 403

"""SLA credits at settlement (issue 20): incident node-hours beyond the listing's SLA are credited before the
capture, pro rata to how the booking was paid; the provider payout and the city's claim shrink accordingly."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from ledger.models import JournalTransaction
from ledger.selectors import ledger_breaches
from marketplace.core.exceptions import Conflict
from orders import handovers
from orders.models import DeliveryIncident
from settlement import services
from settlement.credit_services import credit_split, sla_credited_hours
from settlement.models import BookingSettlement, ReimbursementClaim, ServiceCredit
from tests import factories
from tests.settlement.factories import balance, completed_booking, provider_of
from tests.vouchers.factories import funded_program, issued_voucher
from vouchers import services as voucher_services
from vouchers.models import Redemption

pytestmark = pytest.mark.django_db


def outage(booking, *, hours, node_index=1, offset_hours=3, status=DeliveryIncident.Status.CLOSED):
    """A closed incident of ``hours`` on the booking's node ``node_index``, ``offset_hours`` after its start."""
    node = booking.listing.cluster.nodes.get(index=node_index)
    start = booking.start + dt.timedelta(hours=offset_hours)
    return DeliveryIncident.objects.create(
        booking=booking,
        node=node,
        source=DeliveryIncident.Source.SILENT,
        status=status,
        started_at=start,
        ended_at=start + dt.timedelta(hours=hours),
    )


def voucher_booking_24h(**kwargs):
    """A completed 24 h booking of ¥2400.00, a voucher paying 20 % (¥480.00) and ¥1920.00 cash, SLA 99 %."""
    startup = factories.StartupFactory()
    program = funded_program()
    voucher = issued_voucher(holder=startup, program=program)
    booking = completed_booking(buyer=startup, subtotal="2400.00", vouchers=[voucher], hours=24, **kwargs)
    assert (booking.voucher_amount, booking.cash_amount) == (Decimal("480.00"), Decimal("1920.00"))
    assert booking.listing.sla_percent == Decimal("99.00")
    return booking, voucher, program


def test_credited_hours_are_those_beyond_the_sla_allowance():
    # 24 node-hours at 99 %: 0.24 h allowed; at 100 % nothing is
    assert sla_credited_hours(reserved=Decimal(24), incident=Decimal(2), sla_percent=Decimal(99)) == Decimal("1.76")
    assert sla_credited_hours(reserved=Decimal(24), incident=Decimal("0.2"), sla_percent=Decimal(99)) == 0
    assert sla_credited_hours(reserved=Decimal(48), incident=Decimal(2), sla_percent=Decimal(100)) == 2
    assert credit_split(amount=Decimal("176.00"), subtotal=Decimal(2400), voucher_amount=Decimal(480)) == (
        Decimal("35.20"),
        Decimal("140.80"),
    )


def test_two_hour_outage_credits_voucher_and_cash_pro_rata_and_reduces_payout_and_claim(settings):
    # given a 24 h booking (¥480 voucher + ¥1920 cash) whose node was down 2 h, SLA 99 %, fee 3 %
    settings.PLATFORM_FEE_BPS = 300
    booking, voucher, program = voucher_booking_24h()
    outage(booking, hours=2)
    wallet_before = balance("wallet", booking.buyer_id)
    voucher_before = balance("voucher", voucher.pk)
    # when
    services.booking_settle(booking_id=booking.pk)
    # then 1.76 h of 24 are credited: ¥176.00 = ¥35.20 voucher share + ¥140.80 cash share
    credit = ServiceCredit.objects.get(booking=booking)
    assert (credit.reserved_node_hours, credit.incident_node_hours, credit.credited_node_hours) == (
        Decimal("24.00"),
        Decimal("2.00"),
        Decimal("1.76"),
    )
    assert (credit.amount, credit.voucher_amount, credit.cash_amount) == (
        Decimal("176.00"),
        Decimal("35.20"),
        Decimal("140.80"),
    )
    assert balance("wallet", booking.buyer_id) - wallet_before == Decimal("140.80")
    assert balance("voucher", voucher.pk) - voucher_before == Decimal("35.20")
    assert balance("wallet_hold", booking.buyer_id) == balance("voucher_hold", voucher.pk) == Decimal("0.00")
    # the provider is owed 2224.00 - fee 66.72; the city's claim is the voucher money of the hours paid for
    assert balance("provider_payable", provider_of(booking)) == Decimal("2157.28")
    assert balance("platform_fees") == Decimal("66.72")
    claim = ReimbursementClaim.objects.get(booking=booking)
    assert claim.amount == Decimal("444.80") == Decimal("480.00") - Decimal("35.20")
    assert balance("reimbursement_due", program.pk) == Decimal("-444.80")
    record = BookingSettlement.objects.get(booking=booking)
    assert (record.subtotal, record.voucher_amount, record.cash_amount, record.provider_amount) == (
        Decimal("2224.00"),
        Decimal("444.80"),
        Decimal("1779.20"),
        Decimal("2157.28"),
    )
    assert Redemption.objects.get(booking=booking).amount == Decimal("444.80")
    posting = JournalTransaction.objects.get(idempotency_key=f"booking:{booking.pk}:service_credit")
    assert posting.kind == JournalTransaction.Kind.SERVICE_CREDIT
    event = AuditEvent.objects.get(action="settlement.service_credit", object_id=str(booking.pk))
    assert event.data["amount"] == "176.00" and event.data["credited_node_hours"] == "1.76"
    assert ledger_breaches() == []
    call_command("verify_ledger")


def test_an_outage_within_the_allowance_credits_nothing(settings):
    # given a 24 h booking down 10 minutes (within 0.24 h)
    settings.PLATFORM_FEE_BPS = 300
    booking, _, _ = voucher_booking_24h()
    outage(booking, hours=1 / 6)
    # when
    services.booking_settle(booking_id=booking.pk)
    # then it settles in full
    assert not ServiceCredit.objects.exists()
    assert not JournalTransaction.objects.filter(kind=JournalTransaction.Kind.SERVICE_CREDIT).exists()
    assert ReimbursementClaim.objects.get(booking=booking).amount == Decimal("480.00")
    assert balance("provider_payable", provider_of(booking)) == Decimal("2328.00")


def test_voucher_share_returns_to_the_program_budget_when_the_voucher_was_revoked(settings):
    # given a 2 h outage and a voucher revoked after the booking held it
    settings.PLATFORM_FEE_BPS = 0
    booking, voucher, program = voucher_booking_24h()
    outage(booking, hours=2)
    voucher_services.voucher_revoke(voucher=voucher)
    budget_before = balance("program_budget", program.pk)
    # when
    services.booking_settle(booking_id=booking.pk)
    # then the voucher share goes to the budget, not to the dead voucher
    assert balance("program_budget", program.pk) - budget_before == Decimal("35.20")
    assert balance("voucher", voucher.pk) == Decimal("0.00")
    assert ReimbursementClaim.objects.get(booking=booking).amount == Decimal("444.80")
    assert ledger_breaches() == []


def test_settling_twice_credits_once(settings):
    # given a settled booking with a credit
    settings.PLATFORM_FEE_BPS = 300
    booking, _, _ = voucher_booking_24h()
    outage(booking, hours=2)
    services.booking_settle(booking_id=booking.pk)
    wallet = balance("wallet", booking.buyer_id)
    # when settled again, by both paths
    services.booking_settle(booking_id=booking.pk)
    services.bookings_settle(booking_ids=[booking.pk])
    # then nothing more moved
    assert JournalTransaction.objects.filter(kind=JournalTransaction.Kind.SERVICE_CREDIT).count() == 1
    assert ServiceCredit.objects.count() == 1
    assert balance("wallet", booking.buyer_id) == wallet
    assert AuditEvent.objects.filter(action="settlement.service_credit").count() == 1


def test_cash_only_booking_with_two_nodes_credits_the_union_per_node(settings):
    # given a cash booking of 2 nodes for 10 h at 99 %, node 1 down 3 h in two overlapping incidents
    settings.PLATFORM_FEE_BPS = 0
    booking = completed_booking(subtotal="2000.00", hours=10)
    booking.nodes = 2
    booking.save(update_fields=["nodes"])
    outage(booking, hours=2, offset_hours=1)
    outage(booking, hours=2, offset_hours=2)
    # when
    services.booking_settle(booking_id=booking.pk)
    # then 20 node-hours, 3 lost, 0.2 allowed: 2.8 h credited = ¥280.00, all cash
    credit = ServiceCredit.objects.get(booking=booking)
    assert (credit.incident_node_hours, credit.credited_node_hours, credit.amount, credit.voucher_amount) == (
        Decimal("3.00"),
        Decimal("2.80"),
        Decimal("280.00"),
        Decimal("0.00"),
    )
    assert balance("provider_payable", provider_of(booking)) == Decimal("1720.00")
    assert ledger_breaches() == []


def test_a_reported_incident_holds_settlement_until_staff_decide_and_a_rejected_one_does_not_count(settings):
    # given a completed booking past its dispute window with a buyer's report of 5 h awaiting review
    settings.PLATFORM_FEE_BPS = 0
    booking = completed_booking(subtotal="2400.00", hours=24)
    report = outage(booking, hours=5, status=DeliveryIncident.Status.REPORTED)
    # when it is settled, then it is refused, and nothing is paid or credited
    with pytest.raises(Conflict) as refused:
        services.booking_settle(booking_id=booking.pk)
    assert (refused.value.status, refused.value.code) == (409, "incident_under_review")
    assert services.bookings_settle(booking_ids=[booking.pk]) == []
    assert not ServiceCredit.objects.exists() and not BookingSettlement.objects.exists()
    assert balance("provider_payable", provider_of(booking)) == Decimal("0.00")
    # when staff reject the report, then it settles in full, with no credit
    handovers.incident_resolve(incident=report, actor=None, decision="reject", note="the heartbeats show it ran")
    services.booking_settle(booking_id=booking.pk)
    assert not ServiceCredit.objects.exists()
    assert balance("provider_payable", provider_of(booking)) == Decimal("2400.00")


def test_an_accepted_report_is_credited_at_settlement(settings):
    # given the same booking whose 5 h report staff accept (SLA 99 %: 5 h of 24 h node-hours, 4.76 h beyond it)
    settings.PLATFORM_FEE_BPS = 0
    booking = completed_booking(subtotal="2400.00", hours=24)
    report = outage(booking, hours=5, status=DeliveryIncident.Status.REPORTED)
    handovers.incident_resolve(incident=report, actor=None, decision="accept")
    # when it is settled
    services.booking_settle(booking_id=booking.pk)
    # then the credited hours are those of the accepted report, priced at the booking's hourly price
    credit = ServiceCredit.objects.get(booking=booking)
    hours = sla_credited_hours(reserved=Decimal(24), incident=Decimal(5), sla_percent=booking.listing.sla_percent)
    assert hours > 0 and credit.amount == (Decimal("2400.00") / 24 * hours).quantize(Decimal("0.01"))
    assert balance("provider_payable", provider_of(booking)) == Decimal("2400.00") - credit.amount

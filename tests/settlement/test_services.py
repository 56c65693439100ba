"""booking_settle, payouts and reimbursement claims."""

from decimal import Decimal

import pytest

from audit.models import AuditEvent
from ledger.models import JournalTransaction
from ledger.selectors import ledger_breaches
from marketplace.core.exceptions import ApplicationError
from orders.models import Booking
from settlement import payout_services, services
from settlement.models import BookingSettlement, Payout, ReimbursementClaim
from tests import factories
from tests.settlement.factories import balance, booking_in, completed_booking, provider_of
from tests.vouchers.factories import funded_program, issued_voucher
from vouchers.models import Redemption

pytestmark = pytest.mark.django_db


def test_settle_cash_only_booking_pays_provider_subtotal_less_fee(settings):
    # given a completed ¥1234.57 booking paid in cash, fee 3 %
    settings.PLATFORM_FEE_BPS = 300
    booking = completed_booking(subtotal="1234.57")
    fees_before = balance("platform_fees")
    # when
    settled = services.booking_settle(booking_id=booking.pk)
    # then fee = round_half_up(37.0371) = 37.04; provider gets 1197.53
    assert settled.status == Booking.Status.SETTLED
    assert balance("provider_payable", provider_of(booking)) == Decimal("1197.53")
    assert balance("platform_fees") - fees_before == Decimal("37.04")
    assert balance("wallet_hold", booking.buyer_id) == Decimal("0.00")
    record = BookingSettlement.objects.get(booking=booking)
    assert (record.fee, record.provider_amount, record.voucher_amount) == (
        Decimal("37.04"),
        Decimal("1197.53"),
        Decimal("0.00"),
    )
    assert not ReimbursementClaim.objects.exists()
    assert JournalTransaction.objects.filter(idempotency_key=f"booking:{booking.pk}:settle").count() == 1
    assert AuditEvent.objects.filter(action="settlement.booking_settled", object_id=str(booking.pk)).count() == 1
    assert ledger_breaches() == []


def test_settle_with_voucher_captures_it_and_opens_a_claim_against_the_program(settings):
    # given a ¥10000 booking with a voucher paying 20 % (¥2000) and ¥8000 cash
    settings.PLATFORM_FEE_BPS = 300
    startup = factories.StartupFactory()
    program = funded_program()
    voucher = issued_voucher(holder=startup, program=program)
    booking = completed_booking(buyer=startup, subtotal="10000.00", vouchers=[voucher])
    assert (booking.voucher_amount, booking.cash_amount) == (Decimal("2000.00"), Decimal("8000.00"))
    funding_before = balance("program_funding", program.pk)
    # when
    services.booking_settle(booking_id=booking.pk)
    # then the provider is owed 10000 - 300 and the city owes 2000
    assert balance("provider_payable", provider_of(booking)) == Decimal("9700.00")
    assert balance("platform_fees") == Decimal("300.00")
    assert balance("wallet_hold", startup.pk) == Decimal("0.00")
    assert balance("voucher_hold", voucher.pk) == Decimal("0.00")
    assert balance("reimbursement_due", program.pk) == Decimal("-2000.00")
    assert balance("program_funding", program.pk) - funding_before == Decimal("2000.00")
    claim = ReimbursementClaim.objects.get()
    assert (claim.program_id, claim.booking_id, claim.amount, claim.status) == (
        program.pk,
        booking.pk,
        Decimal("2000.00"),
        "open",
    )
    assert Redemption.objects.get(booking=booking).status == Redemption.Status.CAPTURED
    assert ledger_breaches() == []


def test_settle_five_times_in_a_row_posts_once():
    # given
    booking = completed_booking(subtotal="500.00")
    # when
    results = [services.booking_settle(booking_id=booking.pk) for _ in range(5)]
    # then
    assert {b.status for b in results} == {"settled"}
    assert JournalTransaction.objects.filter(reference=f"booking:{booking.pk}", kind="settle").count() == 1
    assert BookingSettlement.objects.filter(booking=booking).count() == 1
    assert booking.status_changes.filter(to_status="settled").count() == 1
    assert ledger_breaches() == []


@pytest.mark.parametrize("status", ["held", "confirmed", "active", "cancelled", "expired"])
def test_settle_refuses_a_booking_that_is_not_completed(status):
    # given
    booking = booking_in(status)
    # when / then
    with pytest.raises(ApplicationError) as exc:
        services.booking_settle(booking_id=booking.pk)
    assert exc.value.status == 409
    assert not JournalTransaction.objects.filter(kind="settle").exists()


def test_settle_unknown_booking_is_404():
    with pytest.raises(ApplicationError) as exc:
        services.booking_settle(booking_id=999999)
    assert exc.value.status == 404


def test_claim_mark_paid_clears_the_city_debt_once():
    # given a settled voucher booking
    startup = factories.StartupFactory()
    program = funded_program()
    booking = completed_booking(
        buyer=startup, subtotal="10000.00", vouchers=[issued_voucher(holder=startup, program=program)]
    )
    services.booking_settle(booking_id=booking.pk)
    claim = ReimbursementClaim.objects.get()
    # when paid twice
    payout_services.claim_mark_paid(claim=claim)
    paid = payout_services.claim_mark_paid(claim=claim.pk)
    # then
    assert paid.status == "paid" and paid.paid_at is not None
    assert balance("reimbursement_due", program.pk) == Decimal("0.00")
    assert JournalTransaction.objects.filter(idempotency_key=f"claim:{claim.pk}:paid").count() == 1
    assert ledger_breaches() == []


def test_payout_batch_covers_each_settlement_once_and_pays_out():
    # given two settled bookings of one provider and one of another
    listing = factories.ListingFactory()
    first = completed_booking(listing=listing, subtotal="1000.00")
    second = completed_booking(listing=listing, subtotal="2000.00")
    other = completed_booking(subtotal="100.00")
    for booking in (first, second, other):
        services.booking_settle(booking_id=booking.pk)
    provider_id = provider_of(first)
    # when batched twice
    payouts = payout_services.payout_batch_create()
    again = payout_services.payout_batch_create()
    # then one payout per provider, nothing the second time
    assert again == []
    assert len(payouts) == 2
    mine = Payout.objects.get(provider_id=provider_id)
    assert mine.amount == Decimal("2910.00") and mine.status == "pending"
    assert set(mine.settlements.values_list("booking_id", flat=True)) == {first.pk, second.pk}
    # when paid (twice)
    payout_services.payout_mark_paid(payout=mine)
    payout_services.payout_mark_paid(payout=mine.pk)
    # then the payable is empty and the bank mirror shows the money out
    mine.refresh_from_db()
    assert mine.status == "paid"
    assert balance("provider_payable", provider_id) == Decimal("0.00")
    assert JournalTransaction.objects.filter(kind="payout").count() == 1
    assert ledger_breaches() == []

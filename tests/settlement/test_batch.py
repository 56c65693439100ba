"""bookings_settle: a batch of settlements in one transaction, with bulk statements."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from ledger.models import JournalTransaction
from ledger.selectors import ledger_breaches
from orders.models import Booking, BookingStatusChange
from settlement import services
from settlement.models import BookingSettlement, ReimbursementClaim
from tests import factories
from tests.audit.helpers import audit_log_failures
from tests.settlement.factories import balance, booking_in, completed_booking, provider_of
from tests.vouchers.factories import funded_program, issued_voucher
from vouchers.models import Redemption

pytestmark = pytest.mark.django_db


def test_a_batch_settles_each_booking_as_booking_settle_would(settings):
    # given, fee 3 %: two cash bookings of one provider and buyer, and one booking paid 20 % by a voucher of
    # program A and one by a voucher of program B, another buyer and provider
    settings.PLATFORM_FEE_BPS = 300
    listing, buyer = factories.ListingFactory(), factories.StartupFactory()
    cash = [completed_booking(listing=listing, buyer=buyer, subtotal=s) for s in ("1234.57", "100.00")]
    startup, program_a, program_b = factories.StartupFactory(), funded_program(), funded_program()
    with_vouchers = [
        completed_booking(
            buyer=startup, subtotal="10000.00", vouchers=[issued_voucher(holder=startup, program=program)]
        )
        for program in (program_a, program_b)
    ]
    bookings = [*cash, *with_vouchers]
    # when settled as one batch
    settled = services.bookings_settle(booking_ids=[b.pk for b in reversed(bookings)])
    # then all four are settled, in pk order
    assert [b.pk for b in settled] == [b.pk for b in bookings]
    assert {b.status for b in settled} == {"settled"}
    assert Booking.objects.filter(pk__in=[b.pk for b in bookings], status="settled").count() == 4
    # the money moved as for one at a time: fee 37.04 + 3.00 + 2 × 300.00
    assert balance("provider_payable", provider_of(cash[0])) == Decimal("1197.53") + Decimal("97.00")
    for booking in with_vouchers:
        assert balance("provider_payable", provider_of(booking)) == Decimal("9700.00")
    assert balance("platform_fees") == Decimal("640.04")
    assert balance("wallet_hold", buyer.pk) == balance("wallet_hold", startup.pk) == Decimal("0.00")
    for program in (program_a, program_b):
        assert balance("reimbursement_due", program.pk) == Decimal("-2000.00")
    assert JournalTransaction.objects.filter(kind="settle").count() == 4
    assert JournalTransaction.objects.filter(kind="voucher_capture").count() == 2
    # one settlement record each, one claim per program, redemptions captured
    assert BookingSettlement.objects.count() == 4
    assert BookingSettlement.objects.get(booking=cash[0]).fee == Decimal("37.04")
    assert sorted(ReimbursementClaim.objects.values_list("program_id", "amount")) == [
        (program_a.pk, Decimal("2000.00")),
        (program_b.pk, Decimal("2000.00")),
    ]
    assert set(Redemption.objects.values_list("status", flat=True)) == {"captured"}
    # every settlement audited, with its status change, and the audit log verifies
    for booking in bookings:
        assert AuditEvent.objects.filter(action="settlement.booking_settled", object_id=str(booking.pk)).count() == 1
        assert AuditEvent.objects.filter(action="booking.settled", object_id=str(booking.pk)).count() == 1
        assert (
            BookingStatusChange.objects.filter(booking=booking, from_status="completed", to_status="settled").count()
            == 1
        )
    assert AuditEvent.objects.filter(action="voucher.capture").count() == 2
    assert audit_log_failures() == []
    assert ledger_breaches() == []
    call_command("verify_ledger")


def test_a_second_batch_settles_only_what_is_not_settled_yet():
    # given three completed bookings, the first already settled
    listing = factories.ListingFactory()
    first, second, third = (completed_booking(listing=listing, subtotal="100.00") for _ in range(3))
    services.booking_settle(booking_id=first.pk)
    # when the batch of all three runs, twice
    settled = services.bookings_settle(booking_ids=[first.pk, second.pk, third.pk])
    again = services.bookings_settle(booking_ids=[first.pk, second.pk, third.pk])
    # then the second and third were settled by the first run, nothing by the second
    assert [b.pk for b in settled] == [second.pk, third.pk]
    assert again == []
    assert JournalTransaction.objects.filter(kind="settle").count() == 3
    assert BookingSettlement.objects.count() == 3
    assert BookingStatusChange.objects.filter(to_status="settled").count() == 3
    assert AuditEvent.objects.filter(action="settlement.booking_settled").count() == 3
    assert ledger_breaches() == []


def test_a_batch_ignores_unknown_ids_and_bookings_in_other_statuses():
    # given an active and a cancelled booking, and a completed one
    active, cancelled = booking_in("active"), booking_in("cancelled")
    completed = completed_booking()
    # when
    settled = services.bookings_settle(booking_ids=[active.pk, cancelled.pk, completed.pk, 999_999])
    # then only the completed one is settled; the others are untouched
    assert [b.pk for b in settled] == [completed.pk]
    assert dict(Booking.objects.filter(pk__in=[active.pk, cancelled.pk]).values_list("pk", "status")) == {
        active.pk: "active",
        cancelled.pk: "cancelled",
    }
    assert JournalTransaction.objects.filter(kind="settle").count() == 1


def test_a_booking_that_cannot_be_settled_stays_completed_and_the_rest_of_the_batch_settles():
    # given a completed booking whose cash hold was never posted (its wallet hold is short), one whose voucher
    # part has no redemption behind it, and two sound ones of the same buyer
    buyer, listing = factories.StartupFactory(), factories.ListingFactory()
    sound = [completed_booking(buyer=buyer, listing=listing, subtotal="50.00") for _ in range(2)]
    unheld = Booking.objects.create(
        buyer=factories.StartupFactory(),
        listing=listing,
        nodes=1,
        start=sound[0].start,
        end=sound[0].end,
        gpu_hours=8,
        price_per_gpu_hour=listing.price_per_gpu_hour,
        subtotal=Decimal("70.00"),
        voucher_amount=Decimal("0.00"),
        cash_amount=Decimal("70.00"),
        status="completed",
    )
    mismatched = completed_booking(buyer=buyer, listing=listing, subtotal="80.00")
    Booking.objects.filter(pk=mismatched.pk).update(voucher_amount=Decimal("10.00"), cash_amount=Decimal("70.00"))
    # when they are settled in one batch
    settled = services.bookings_settle(booking_ids=[b.pk for b in (*sound, unheld, mismatched)])
    # then the sound ones settled; the two others were refused and left completed with nothing written for them
    assert [b.pk for b in settled] == [b.pk for b in sound]
    assert dict(Booking.objects.filter(pk__in=[unheld.pk, mismatched.pk]).values_list("pk", "status")) == {
        unheld.pk: "completed",
        mismatched.pk: "completed",
    }
    assert not JournalTransaction.objects.filter(
        idempotency_key__in=[f"booking:{unheld.pk}:settle", f"booking:{mismatched.pk}:settle"]
    ).exists()
    assert not BookingSettlement.objects.filter(booking__in=[unheld, mismatched]).exists()
    assert not AuditEvent.objects.filter(
        action__in=["settlement.booking_settled", "booking.settled"], object_id__in=[str(unheld.pk), str(mismatched.pk)]
    ).exists()
    assert JournalTransaction.objects.filter(kind="settle").count() == 2
    assert ledger_breaches() == []


def test_booking_settle_still_refuses_what_a_batch_skips():
    # given a completed booking whose cash hold was never posted
    listing = factories.ListingFactory()
    unheld = Booking.objects.create(
        buyer=factories.StartupFactory(),
        listing=listing,
        nodes=1,
        start=factories.next_hour(-3),
        end=factories.next_hour(-2),
        gpu_hours=8,
        price_per_gpu_hour=listing.price_per_gpu_hour,
        subtotal=Decimal("70.00"),
        voucher_amount=Decimal("0.00"),
        cash_amount=Decimal("70.00"),
        status="completed",
    )
    # when / then settling it alone answers 409 and writes nothing
    from marketplace.core.exceptions import ApplicationError

    with pytest.raises(ApplicationError) as exc:
        services.booking_settle(booking_id=unheld.pk)
    assert exc.value.status == 409
    assert Booking.objects.get(pk=unheld.pk).status == "completed"
    assert not BookingSettlement.objects.exists()


def queries_to_settle(n: int, listing, buyer) -> int:
    ids = [completed_booking(listing=listing, buyer=buyer, subtotal=f"{10 + i}.00").pk for i in range(n)]
    with CaptureQueriesContext(connection) as ctx:
        assert len(services.bookings_settle(booking_ids=ids)) == n
    return len(ctx.captured_queries)


def test_a_batch_costs_the_same_number_of_queries_whatever_its_size():
    # given two sets of completed bookings of the same shape, 3 and 30 (the accounts exist: a first settlement)
    listing, buyer = factories.ListingFactory(), factories.StartupFactory()
    queries_to_settle(1, listing, buyer)
    # when each set is settled as a batch
    small, large = queries_to_settle(3, listing, buyer), queries_to_settle(30, listing, buyer)
    # then the statements are per batch, not per booking
    assert large == small
    assert large <= 20, large

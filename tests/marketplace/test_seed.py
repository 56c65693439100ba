import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from accounts.models import CITIES, Membership, Organization
from accounts.validators import validate_credit_code

pytestmark = pytest.mark.django_db


def counts():
    from ledger.models import JournalTransaction
    from listings.models import Listing
    from orders.models import Booking
    from vouchers.models import Voucher, VoucherProgram

    return (
        Organization.objects.count(),
        get_user_model().objects.count(),
        Membership.objects.count(),
        Listing.objects.count(),
        VoucherProgram.objects.count(),
        Voucher.objects.count(),
        Booking.objects.count(),
        JournalTransaction.objects.count(),
    )


def test_seed_demo_twice_creates_no_duplicates(capsys):
    # given an empty database / when seeding twice
    call_command("seed_demo")
    first = counts()
    call_command("seed_demo")
    # then the second run changes nothing
    assert counts() == first
    assert all(count > 0 for count in first), first
    out = capsys.readouterr().out
    assert "Demo data ready" in out and "startup" in out and "auditor" in out


def test_seed_demo_covers_every_city_with_an_issuer_and_valid_codes():
    call_command("seed_demo")
    issuer_cities = set(Organization.objects.filter(kind="issuer").values_list("city", flat=True))
    assert issuer_cities == set(CITIES) and len(CITIES) == 17
    for code in Organization.objects.values_list("credit_code", flat=True):
        validate_credit_code(code)
    from ledger.selectors import ledger_breaches, wallet_summary

    alice_org = Organization.objects.get(memberships__user__username="alice")
    assert wallet_summary(alice_org.pk)["balance"] > 0
    from orders.models import Booking

    assert Booking.objects.filter(buyer=alice_org, voucher_amount__gt=0).exists()  # the demo shows a voucher split
    assert ledger_breaches() == []
    kinds = set(Organization.objects.values_list("kind", flat=True))
    assert kinds == {"startup", "provider", "issuer", "platform"}


def test_seed_demo_replays_two_weeks_of_settlement_consistently():
    from django.utils import timezone

    from ledger.models import JournalTransaction
    from ledger.selectors import ledger_breaches
    from orders.disputes import DISPUTE_WINDOW
    from orders.models import Booking
    from portal.management.commands.seed_demo import HISTORY_DAYS
    from settlement.demo import PAYDAY_DELAY
    from settlement.models import BookingSettlement, Payout, ReimbursementClaim
    from tests.audit.helpers import audit_log_failures
    from vouchers.models import Voucher

    # given an empty database / when the demo is seeded
    before = timezone.now()
    call_command("seed_demo")
    now = timezone.now()
    # then the clock is real again
    assert before <= now <= before + dt.timedelta(minutes=5)
    # and the bookings of the past two weeks ran and were settled, each once, while every startup has one ahead
    startups = Organization.objects.filter(kind="startup").count()
    settled = list(Booking.objects.filter(status="settled"))
    assert len(settled) == startups
    assert all(now - dt.timedelta(days=HISTORY_DAYS) < b.start and b.end <= now for b in settled)
    assert BookingSettlement.objects.count() == len(settled)
    assert Booking.objects.filter(status="confirmed", start__gt=now).count() == startups
    # their money moved once their 48-hour dispute window after the end had closed, not at seeding time
    for booking in settled:
        settle = JournalTransaction.objects.get(idempotency_key=f"booking:{booking.pk}:settle")
        assert booking.end + DISPUTE_WINDOW <= settle.created_at < now - dt.timedelta(hours=1)
    # voucher parts became claims, stated today, and no voucher was spent before it was issued
    claims = list(ReimbursementClaim.objects.select_related("booking"))
    assert claims and all(claim.statement_id is not None for claim in claims)
    for voucher in Voucher.objects.all():
        assert all(
            voucher.issued_at <= claim.booking.created_at
            for claim in claims
            if claim.booking.buyer_id == voucher.holder_id
        )
    # payouts are made on Mondays and paid the Tuesday after, once that has come
    payouts = list(Payout.objects.all())
    assert payouts
    for payout in payouts:
        assert payout.created_at.weekday() == 0
        assert (payout.status == "paid") == (payout.created_at + PAYDAY_DELAY <= now)
    assert ledger_breaches() == [] and audit_log_failures() == []

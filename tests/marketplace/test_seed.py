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

    return (Organization.objects.count(), get_user_model().objects.count(), Membership.objects.count(),
            Listing.objects.count(), VoucherProgram.objects.count(), Voucher.objects.count(),
            Booking.objects.count(), JournalTransaction.objects.count())


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

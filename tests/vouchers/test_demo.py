"""The demo seeder: five funded city programs, alice's approved Shanghai voucher, a pending application for ivy."""

from decimal import Decimal as D  # noqa: N817

import pytest

from accounts import demo as accounts_demo
from ledger.models import JournalTransaction, LedgerAccount
from ledger.selectors import ledger_breaches
from listings import demo as listings_demo
from vouchers import demo, selectors
from vouchers.models import Voucher, VoucherApplication, VoucherProgram

pytestmark = pytest.mark.django_db


def snapshot():
    return (
        VoucherProgram.objects.count(),
        VoucherApplication.objects.count(),
        Voucher.objects.count(),
        JournalTransaction.objects.count(),
        list(LedgerAccount.objects.order_by("pk").values_list("balance")),
    )


def test_seed_is_idempotent_and_matches_the_story():
    # given the organizations and clusters
    accounts_demo.seed()
    listings_demo.seed()
    # when seeding twice
    demo.seed()
    first = snapshot()
    demo.seed()
    # then the second run changes nothing
    assert snapshot() == first
    assert set(VoucherProgram.objects.values_list("city", flat=True)) == {
        "Hangzhou",
        "Beijing",
        "Shenzhen",
        "Shanghai",
        "Chengdu",
    }
    voucher = Voucher.objects.get()
    assert voucher.holder.name == "DeepLoom AI" and voucher.face_value == D("1500000.00")
    assert selectors.voucher_balances([voucher.pk])[voucher.pk]["balance"] == D("1500000.00")
    shanghai = voucher.program
    pending = VoucherApplication.objects.get(status="submitted")
    assert pending.program == shanghai and shanghai.issuer.memberships.filter(user__username="ivy").exists()
    assert selectors.program_budget_available(shanghai) == shanghai.budget_total - D("1500000.00")
    chengdu = VoucherProgram.objects.get(city="Chengdu")
    assert chengdu.city_data_centers_only and 1 <= chengdu.eligible_providers.count() <= 2
    hangzhou = VoucherProgram.objects.get(city="Hangzhou")
    assert hangzhou.model_filing_earns_domestic_ratio and hangzhou.annual_cap_per_org == D("8000000.00")
    assert ledger_breaches() == []

"""Fixtures shared by the audit tests."""

import pytest

from oversight import flags
from oversight.models import AnomalyFlag
from tests import factories
from tests.oversight import factories as af


@pytest.fixture
def open_flag(startup):
    """One open ``export_controlled`` flag: a voucher booking of export-controlled hardware, flags computed."""
    listing = factories.ListingFactory(cluster__accelerator__export_controlled=True)
    af.booking(buyer=startup, listing=listing, voucher_part="16.00", vouchers=[af.voucher(holder=startup)])
    flags.flags_compute()
    return AnomalyFlag.objects.get()

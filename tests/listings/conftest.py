import pytest

from listings.catalog import load_catalog
from listings.models import Accelerator


@pytest.fixture(autouse=True)
def catalog(db):
    """The accelerator catalog (from the data migration; reloaded after a transactional test flushed it)."""
    if not Accelerator.objects.filter(slug="h100-sxm").exists():
        load_catalog(Accelerator)

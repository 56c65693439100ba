"""``seed_demo`` computes the price index of its two weeks of replayed history."""

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from market.models import Fixing
from portal.management.commands.seed_demo import HISTORY_DAYS

pytestmark = pytest.mark.django_db


def test_seed_demo_writes_fixings_for_every_day_of_its_history():
    # given an empty database / when the demo is seeded
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    # then each of the last HISTORY_DAYS closed days has fixings (the demo listings are offered on all of them),
    # the history's bookings are traded prices, and utilisation is known where something was listed
    yesterday = timezone.now().astimezone(dt.UTC).date() - dt.timedelta(days=1)
    days = set(Fixing.objects.values_list("day", flat=True))
    assert days == {yesterday - dt.timedelta(days=n) for n in range(HISTORY_DAYS)}
    assert Fixing.objects.filter(trades__gt=0, vwap__isnull=False).exists()
    assert Fixing.objects.filter(utilisation__gt=0).exists()
    assert not Fixing.objects.filter(asks__gt=0, ask_mean__isnull=True).exists()
    assert "price index fixings" in out.getvalue()

"""The settable clock the demo seeder replays its history with."""

import datetime as dt

import pytest
from django.utils import timezone

from marketplace.core.clock import clock_set_to

MOMENT = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)


def test_the_clock_answers_the_time_set_then_the_real_one_again():
    # when the clock is set and moved
    with clock_set_to(MOMENT) as move_to:
        first = timezone.now()
        move_to(MOMENT + dt.timedelta(hours=5))
        second = timezone.now()
    # then timezone.now() answered those moments, and the real time once the block ends
    assert (first, second) == (MOMENT, MOMENT + dt.timedelta(hours=5))
    assert timezone.now() - dt.datetime.now(dt.UTC) < dt.timedelta(seconds=5)


def test_the_clock_refuses_naive_moments():
    with pytest.raises(ValueError, match="aware"), clock_set_to(dt.datetime(2026, 11, 2, 9)):
        pass
    with clock_set_to(MOMENT) as move_to, pytest.raises(ValueError, match="aware"):
        move_to(dt.datetime(2026, 11, 2, 10))

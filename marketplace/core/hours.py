"""Listings, bookings and bids live on whole UTC hours: the one definition of a good hour, its error messages, and
the next whole hour from now."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django.utils.translation import gettext_lazy

MISSING_MESSAGE = gettext_lazy("Give a date and time, e.g. 2030-01-01T10:00:00Z.")
NAIVE_MESSAGE = gettext_lazy("Include a UTC offset, e.g. 2030-01-01T10:00:00Z.")
HOUR_MESSAGE = gettext_lazy("Must be on a whole hour (minutes and seconds zero, UTC).")


def start_of_hour(moment: dt.datetime) -> dt.datetime:
    """``moment`` in UTC with minutes, seconds and microseconds dropped."""
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def next_hour(hours_ahead: int = 1) -> dt.datetime:
    """The start of the hour ``hours_ahead`` after the current one (UTC)."""
    return start_of_hour(timezone.now()) + dt.timedelta(hours=hours_ahead)


def hour_error(value) -> str | None:
    """Why ``value`` is not an aware datetime on a whole UTC hour, or None when it is."""
    if not isinstance(value, dt.datetime):
        return str(MISSING_MESSAGE)
    if timezone.is_naive(value):
        return str(NAIVE_MESSAGE)
    if start_of_hour(value) != value:
        return str(HOUR_MESSAGE)
    return None

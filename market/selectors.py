"""Reads of the price index: filtered fixings, the page's chart configs and the CSV columns."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from accounts.models import CITY_LABELS
from listings.models import Accelerator
from market.models import Fixing

# The CSV's columns, in order (the API's field names).
CSV_COLUMNS = ["day", "accelerator", "city", *Fixing.FIGURES]


def fixings(
    *,
    accelerator: Accelerator | None = None,
    city: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> QuerySet[Fixing]:
    """Fixings of ``accelerator`` and ``city`` (any when None) from ``since`` to ``until`` (both included), by day,
    accelerator slug and city."""
    qs = Fixing.objects.select_related("accelerator")
    if accelerator is not None:
        qs = qs.filter(accelerator=accelerator)
    if city:
        qs = qs.filter(city=city)
    if since is not None:
        qs = qs.filter(day__gte=since)
    if until is not None:
        qs = qs.filter(day__lte=until)
    return qs.order_by("day", "accelerator__slug", "city")


def csv_row(fixing: Fixing) -> list:
    """A fixing's values in ``CSV_COLUMNS`` order (decimals as they are, empty for none)."""
    values = {name: getattr(fixing, name) for name in CSV_COLUMNS}
    values["day"] = fixing.day.isoformat()
    values["accelerator"] = fixing.accelerator.slug
    return [values[name] for name in CSV_COLUMNS]


def _series(rows: list[Fixing], days: list[dt.date], field: str, scale: int = 1) -> list[float | None]:
    by_day = {row.day: getattr(row, field) for row in rows}
    return [None if by_day.get(day) is None else float(by_day[day]) * scale for day in days]


def index_charts(rows: list[Fixing], *, single_city: bool) -> dict:
    """Chart.js configs (``static/js/charts.js`` kind ``config``) of ``rows`` (one accelerator): prices per GPU-hour
    (the ask mean per city; the traded price too for one city), utilisation in % and ask depth in GPUs, per day."""
    days = sorted({row.day for row in rows})
    by_city: dict[str, list[Fixing]] = {}
    for row in rows:
        by_city.setdefault(row.city, []).append(row)
    labels = [day.isoformat() for day in days]
    names = {city: str(CITY_LABELS.get(city, city)) for city in by_city}
    prices = []
    for city, city_rows in sorted(by_city.items()):
        prices.append(
            {"label": _("%(city)s: ask mean") % {"city": names[city]}, "data": _series(city_rows, days, "ask_mean")}
        )
        if single_city:
            prices.append(
                {
                    "label": _("%(city)s: traded (VWAP)") % {"city": names[city]},
                    "data": _series(city_rows, days, "vwap"),
                }
            )

    def line(datasets: list[dict], axis: str, **y) -> dict:
        return {
            "type": "line",
            "data": {"labels": labels, "datasets": datasets},
            "options": {"spanGaps": True, "scales": {"y": {"title": {"display": True, "text": axis}, **y}}},
        }

    return {
        "price": line(prices, _("per GPU-hour")),
        "utilisation": line(
            [
                {"label": names[city], "data": _series(city_rows, days, "utilisation", 100)}
                for city, city_rows in sorted(by_city.items())
            ],
            _("Share of listed node-hours reserved, in percent"),
            beginAtZero=True,
            max=100,
        ),
        "depth": {
            "type": "bar",
            "data": {
                "labels": labels,
                "datasets": [
                    {"label": names[city], "data": _series(city_rows, days, "listed_gpus")}
                    for city, city_rows in sorted(by_city.items())
                ],
            },
            "options": {
                "scales": {
                    "x": {"stacked": True},
                    "y": {"stacked": True, "beginAtZero": True, "title": {"display": True, "text": _("GPUs listed")}},
                }
            },
        },
    }


# The audit rule's reference (``reference_fixings``): a fixing with at least this many asks (fewer and a provider
# alone in its city would set its own reference), at most this many days older than the booking.
REFERENCE_MIN_ASKS = 3
REFERENCE_MAX_AGE_DAYS = 7


def reference_fixings(bookings: list[tuple[int, int, str, dt.date]]) -> dict[int, Fixing]:
    """For ``(booking id, accelerator id, city, day made)`` tuples: the newest fixing of that accelerator and city
    dated that day or up to ``REFERENCE_MAX_AGE_DAYS`` before, with at least ``REFERENCE_MIN_ASKS`` asks (so a
    trimmed ask mean), by booking id; bookings without one are left out. One query."""
    if not bookings:
        return {}
    days = [day for _, _, _, day in bookings]
    candidates = Fixing.objects.filter(
        accelerator_id__in={accelerator for _, accelerator, _, _ in bookings},
        city__in={city for _, _, city, _ in bookings},
        day__gte=min(days) - dt.timedelta(days=REFERENCE_MAX_AGE_DAYS),
        day__lte=max(days),
        asks__gte=REFERENCE_MIN_ASKS,
        ask_mean__isnull=False,
    ).order_by("-day")
    by_market: dict[tuple[int, str], list[Fixing]] = {}
    for fixing in candidates:
        by_market.setdefault((fixing.accelerator_id, fixing.city), []).append(fixing)
    found = {}
    for pk, accelerator, city, day in bookings:
        oldest = day - dt.timedelta(days=REFERENCE_MAX_AGE_DAYS)
        fixing = next((f for f in by_market.get((accelerator, city), []) if oldest <= f.day <= day), None)
        if fixing is not None:
            found[pk] = fixing
    return found

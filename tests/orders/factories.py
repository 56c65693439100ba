"""Helpers for booking tests: funded startups and ready-made booking arguments."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from ledger.services import wallet_deposit
from tests.factories import ListingFactory, StartupFactory, next_hour

_deposits = itertools.count(1)


def fund(organization, amount="100000.00") -> None:
    """Deposit ``amount`` into ``organization``'s wallet (a recorded bank transfer)."""
    wallet_deposit(
        organization_id=organization.pk,
        amount=Decimal(amount),
        idempotency_key=f"test-deposit:{organization.pk}:{next(_deposits)}",
    )


def funded_startup(amount="100000.00"):
    startup = StartupFactory()
    fund(startup, amount)
    return startup


def window(start_in_hours: int = 2, hours: int = 3) -> tuple[dt.datetime, dt.datetime]:
    start = next_hour(start_in_hours)
    return start, start + dt.timedelta(hours=hours)


def booking_kwargs(listing=None, *, nodes: int = 1, start_in_hours: int = 2, hours: int = 3, **extra) -> dict:
    """Arguments for ``booking_create`` (without ``buyer``)."""
    listing = listing or ListingFactory()
    start, end = window(start_in_hours, hours)
    return {"listing_id": listing.pk, "nodes": nodes, "start": start, "end": end, **extra}


def booking_body(listing=None, *, nodes: int = 1, start_in_hours: int = 2, hours: int = 3, **extra) -> dict:
    """A JSON body for ``POST /api/v1/bookings/`` (``listing``, ``nodes``, ISO ``start``/``end`` in UTC, extras
    such as ``confirm=True``). ``booking_kwargs`` is the same for calling ``orders.services.booking_create``."""
    kwargs = booking_kwargs(listing, nodes=nodes, start_in_hours=start_in_hours, hours=hours)
    return {
        "listing": kwargs["listing_id"],
        "nodes": nodes,
        "start": kwargs["start"].isoformat().replace("+00:00", "Z"),
        "end": kwargs["end"].isoformat().replace("+00:00", "Z"),
        **extra,
    }

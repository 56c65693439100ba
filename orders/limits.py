"""Database-backed limits on what one organization may have open at once: held (unconfirmed) bookings and open
bids. A request-rate throttle cannot do this (two requests in flight both pass it); a counter row with CHECK
constraints can: ``open_order_count`` runs in the caller's transaction, so the count commits or rolls back with
the booking or bid it counts."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext_lazy

from marketplace.core.exceptions import Conflict
from orders import sql
from orders.models import OpenOrderLimit

HELD_BOOKINGS = "held_bookings"
OPEN_BIDS = "open_bids"
_REFUSALS = {
    "limit_held_bookings": (
        "held_bookings",
        gettext_lazy(
            "Too many bookings waiting for confirmation ({limit}): confirm or cancel some first, or book and "
            "confirm in one step."
        ),
    ),
    "limit_open_bids": (
        "open_bids",
        gettext_lazy("Too many open bids ({limit}): cancel some or wait for them to fill."),
    ),
}


_MAX_SETTINGS = {HELD_BOOKINGS: "MAX_HELD_BOOKINGS", OPEN_BIDS: "MAX_OPEN_BIDS"}


def _count_one_more(organization_id: int, counter: str, delta: int) -> bool | None:
    """Create the organization's row or add ``delta`` to ``counter`` unless that passes the limit, in one statement
    that cannot fail (the limit is in the WHERE, the CHECK stays the guarantee): True when counted, False when
    refused. None when a new row would start above the default limit: the caller takes the general path."""
    if delta > getattr(settings, _MAX_SETTINGS[counter]):
        return None
    return sql.count_one_more(
        organization_id=organization_id,
        counter=counter,
        delta=delta,
        max_held=settings.MAX_HELD_BOOKINGS,
        max_open=settings.MAX_OPEN_BIDS,
    )


def _ensure_row(organization_id: int) -> None:
    OpenOrderLimit.objects.bulk_create(
        [
            OpenOrderLimit(
                organization_id=organization_id,
                max_held_bookings=settings.MAX_HELD_BOOKINGS,
                max_open_bids=settings.MAX_OPEN_BIDS,
            )
        ],
        ignore_conflicts=True,
    )


def open_order_count(*, organization_id: int, counter: str, delta: int) -> None:
    """Add ``delta`` (+1 / -1) to ``counter`` (``HELD_BOOKINGS`` or ``OPEN_BIDS``) of the organization.

    Call inside the transaction that opens or closes the booking or bid. Raises ``Conflict`` 409 naming the limit
    when one more would exceed it (the caller's transaction is intact: the refused UPDATE ran in a savepoint).
    """
    if delta < 0:
        # Never below zero: rows written around the services (imports, fixtures) were never counted.
        OpenOrderLimit.objects.filter(pk=organization_id, **{f"{counter}__gte": -delta}).update(
            **{counter: F(counter) + delta}
        )
        return
    counted = _count_one_more(organization_id, counter, delta)
    if counted is True:
        return
    if counted is False:
        _refuse(organization_id, f"limit_{counter}")
    _ensure_row(organization_id)
    try:
        with transaction.atomic():
            OpenOrderLimit.objects.filter(pk=organization_id).update(**{counter: F(counter) + delta})
    except IntegrityError as exc:
        constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)
        if constraint not in _REFUSALS:
            raise
        _refuse(organization_id, constraint, exc)


def _refuse(organization_id: int, constraint: str, cause: Exception | None = None):
    field, message = _REFUSALS[constraint]
    limit = OpenOrderLimit.objects.values_list(f"max_{field}", flat=True).get(pk=organization_id)
    raise Conflict(
        str(message).format(limit=limit), code="limit", errors={"non_field_errors": [str(message).format(limit=limit)]}
    ) from cause

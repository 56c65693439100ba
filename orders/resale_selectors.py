"""Reads about resale asks and sales (issue 21), scoped like ``orders.selectors``: another organization's ask or
sale is simply absent (→ 404), except open asks, which every signed-in user may search."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from accounts import selectors as account_selectors
from accounts.models import Organization
from marketplace.core.exceptions import NotFound
from orders.models import Booking, ResaleAsk, ResaleSale

RESELLABLE = (Booking.Status.CONFIRMED, Booking.Status.ACTIVE)


def _with_related(qs: QuerySet[ResaleAsk]) -> QuerySet[ResaleAsk]:
    return qs.select_related("listing__cluster__accelerator", "listing__cluster__data_center")


def resale_asks_open(
    *,
    accelerators=(),
    city: str = "",
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    max_price: Decimal | None = None,
    cluster_ids=None,
) -> QuerySet[ResaleAsk]:
    """Open resale asks that can still be bought (window not started, booking still resellable), cheapest first.
    ``accelerators``: slugs; ``city``: the data centre's city (case-insensitive); ``start``/``end``: the ask's
    window covers it; ``max_price`` per GPU-hour; ``cluster_ids``: only these clusters."""
    qs = ResaleAsk.objects.filter(
        status=ResaleAsk.Status.OPEN, start__gt=timezone.now(), booking__status__in=RESELLABLE
    )
    if accelerators:
        qs = qs.filter(listing__cluster__accelerator__slug__in=list(accelerators))
    if city:
        qs = qs.filter(listing__cluster__data_center__city__iexact=city)
    if start is not None:
        qs = qs.filter(start__lte=start)
    if end is not None:
        qs = qs.filter(end__gte=end)
    if max_price is not None:
        qs = qs.filter(price_per_gpu_hour__lte=max_price)
    if cluster_ids is not None:
        qs = qs.filter(listing__cluster_id__in=list(cluster_ids))
    return _with_related(qs).order_by("price_per_gpu_hour", "start", "pk")


def resale_asks_of(user, *, organization_id=None, status: str | None = None) -> QuerySet[ResaleAsk]:
    """The resale asks of the startups ``user`` acts for (``organization_id``: one of them), newest first."""
    orgs = account_selectors.user_organizations(user, kind=Organization.Kind.STARTUP)
    if organization_id not in (None, ""):
        orgs = orgs.filter(pk=organization_id) if str(organization_id).isdigit() else orgs.none()
    qs = _with_related(ResaleAsk.objects.filter(seller__in=orgs))
    return qs.filter(status=status) if status else qs


def resale_ask_visible(*, ask_id, user) -> ResaleAsk:
    """An ask ``user`` may read: open (anyone signed in) or their own; ``NotFound`` otherwise."""
    orgs = account_selectors.user_organizations(user, kind=Organization.Kind.STARTUP)
    ask = (
        _with_related(ResaleAsk.objects.filter(Q(status=ResaleAsk.Status.OPEN) | Q(seller__in=orgs)))
        .filter(pk=ask_id)
        .first()
    )
    if ask is None:
        raise NotFound(gettext("No such resale ask."))
    return ask


def resale_ask_own(*, ask_id, user) -> ResaleAsk:
    """One of the asks of the startups ``user`` acts for; ``NotFound`` otherwise (another organization's too)."""
    ask = resale_asks_of(user).filter(pk=ask_id).first() if str(ask_id).isdigit() else None
    if ask is None:
        raise NotFound(gettext("No such resale ask."))
    return ask


def resale_of_booking(booking: Booking) -> dict:
    """What the booking page shows about resale: the booking's asks, the sales out of it, and the sale it was
    bought in (None when it was booked from the provider)."""
    return {
        "asks": list(booking.resale_asks.order_by("-created_at", "-id")),
        "sales": list(ResaleSale.objects.filter(seller_booking=booking).order_by("created_at", "id")),
        "bought_in": ResaleSale.objects.filter(booking=booking).select_related("ask").first(),
    }

"""Reads about bids and the order book, scoped like bookings: another organization's bid is absent (→ 404)."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from accounts import selectors as account_selectors
from accounts.models import Organization
from listings.models import Accelerator
from marketplace.core import hours
from marketplace.core.exceptions import NotFound
from orders import sql
from orders.models import Bid


def bids_of_user(user, *, organization_id=None, status: str | None = None) -> QuerySet[Bid]:
    """Bids of the startups ``user`` acts for (``organization_id`` narrows to one of them), newest first."""
    orgs = account_selectors.user_organizations(user, kind=Organization.Kind.STARTUP)
    if organization_id not in (None, ""):
        orgs = orgs.filter(pk=organization_id) if str(organization_id).isdigit() else orgs.none()
    qs = Bid.objects.filter(buyer__in=orgs).select_related("booking").prefetch_related("accelerators")
    return qs.filter(status=status) if status else qs


def bid_detail(*, bid_id, queryset: QuerySet[Bid]) -> Bid:
    """One bid of ``queryset`` (a scoped selector); ``NotFound`` when absent or someone else's."""
    bid = queryset.filter(pk=bid_id).first() if str(bid_id).isdigit() else None
    if bid is None:
        raise NotFound(gettext("No such bid."))
    return bid


def market_depth(*, accelerator: Accelerator, levels: int = 20) -> dict:
    """The order book of one accelerator.

    ``asks``: active listings open during the next hour, by price level (cheapest first), with the GPUs free in
    that hour (free nodes × GPUs per node). ``bids``: open, unexpired bids accepting the accelerator, by maximum
    price level (highest first), with the GPUs they ask for (nodes × the GPUs per node their hold assumed).
    """
    now = timezone.now()
    start = hours.next_hour()
    end = start + dt.timedelta(hours=1)
    asks = [
        {"price": price, "gpus": gpus}
        for price, gpus in sql.free_gpus_by_price(accelerator_id=accelerator.pk, start=start, end=end, levels=levels)
    ]
    bid_rows = Bid.objects.filter(status=Bid.Status.OPEN, expires_at__gt=now, accelerators=accelerator).values_list(
        "max_price_per_gpu_hour", "nodes", "max_gpus_per_node"
    )
    by_price: dict = {}
    for price, nodes, gpus in bid_rows:
        by_price[price] = by_price.get(price, 0) + nodes * gpus
    bids = [{"price": price, "gpus": gpus} for price, gpus in sorted(by_price.items(), reverse=True)[:levels]]
    return {"accelerator": accelerator.slug, "asks": asks, "bids": bids}


def recent_fills(*, accelerator: Accelerator | None = None, limit: int = 20) -> QuerySet[Bid]:
    """The latest matched bids (anonymous on the market page: price, GPUs, hours, accelerator, time)."""
    qs = Bid.objects.filter(status=Bid.Status.MATCHED).select_related("booking__listing__cluster__accelerator")
    if accelerator is not None:
        qs = qs.filter(booking__listing__cluster__accelerator=accelerator)
    return qs.order_by("-updated_at", "-id")[:limit]

"""Reads about bookings, scoped to what a user may see: objects of other organizations are simply absent (→ 404)."""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet
from django.utils.translation import gettext

from accounts import selectors as account_selectors
from accounts.models import Organization
from listings.models import Listing
from marketplace.core.exceptions import NotFound
from orders.models import Booking, BookingStatusChange, NodeReservation


def _with_related(qs: QuerySet[Booking]) -> QuerySet[Booking]:
    return qs.select_related("buyer", "listing__cluster__accelerator", "listing__cluster__data_center")


def bookings_for_buyer(organizations, *, status: str | None = None) -> QuerySet[Booking]:
    """The bookings made by ``organizations`` (one Organization or id, or a queryset of them), newest first;
    optionally only those in ``status``."""
    if isinstance(organizations, Organization | int):
        organizations = [organizations]
    qs = _with_related(Booking.objects.filter(buyer__in=organizations))
    return qs.filter(status=status) if status else qs


def bookings_for_provider(organization: Organization | int, *, status: str | None = None) -> QuerySet[Booking]:
    """Bookings on the clusters of provider ``organization``'s data centres, newest first."""
    qs = _with_related(Booking.objects.filter(listing__cluster__data_center__provider=organization))
    return qs.filter(status=status) if status else qs


def bookings_visible_to(user, *, organization_id=None, status: str | None = None) -> QuerySet[Booking]:
    """Bookings ``user`` may read: made by a startup they act for, or on a cluster of a provider they act for.
    ``organization_id`` (the ``X-Organization`` header) narrows it to that one organization of the user's."""
    orgs = account_selectors.user_organizations(user)
    if organization_id not in (None, ""):
        orgs = orgs.filter(pk=organization_id) if str(organization_id).isdigit() else orgs.none()
    org_ids = list(orgs.values_list("pk", flat=True))
    # A subquery rather than a join, so the OR stays on booking columns and a pk lookup stays an index lookup.
    provider_listings = Listing.objects.filter(cluster__data_center__provider_id__in=org_ids).values("pk")
    qs = _with_related(Booking.objects.filter(Q(buyer_id__in=org_ids) | Q(listing_id__in=provider_listings)))
    return qs.filter(status=status) if status else qs


def bookings_bought_by(user) -> QuerySet[Booking]:
    """Bookings of the startups ``user`` acts for (those they may confirm or cancel)."""
    return Booking.objects.filter(buyer__in=account_selectors.user_organizations(user, kind=Organization.Kind.STARTUP))


def booking_detail(*, booking_id, queryset: QuerySet[Booking]) -> Booking:
    """One booking of ``queryset`` (a scoped selector) with its reservations and status history; ``NotFound``
    when it is not there, whether it does not exist or belongs to someone else."""
    qs = queryset.prefetch_related(
        Prefetch("reservations", queryset=NodeReservation.objects.select_related("node").order_by("node__index")),
        Prefetch("status_changes", queryset=BookingStatusChange.objects.select_related("actor").order_by("id")),
    )
    booking = qs.filter(pk=booking_id).first() if str(booking_id).isdigit() else None
    if booking is None:
        raise NotFound(gettext("No such booking."))
    return booking


def reserved_node_indexes(booking: Booking) -> list[int]:
    """The cluster node numbers a booking holds (active reservations; released ones once cancelled/expired)."""
    reservations = list(booking.reservations.all())
    active = [r.node.index for r in reservations if r.active]
    return sorted(active or [r.node.index for r in reservations])

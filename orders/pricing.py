"""Net prices: what a buyer pays in cash per GPU-hour of a listing after their vouchers. Reads only.

One computation, used by voucher-aware matching (``orders.bid_services`` builds each voucher bid's net-price table
for the pure engine) and by listing search "by what I will pay" (``orders.api.ListingSearchApi``,
``orders.search_views.browse``)::

    net price per GPU-hour = (subtotal − the vouchers' parts) ÷ GPU-hours,   subtotal = price × GPU-hours

where the parts are ``vouchers.rules.compute_parts`` for that booking (the same engine a quote and a booking use),
and a listing the vouchers may not pay for (``compute_parts`` raises ``RulesError`` for any of them: all named
vouchers must be eligible, as a booking naming them requires) has no net price at all (None).

Cost: a ``NetPricer`` reads the buyer's vouchers and the listings' facts in a handful of queries, then prices
in Python; ``compute_parts`` runs once per distinct (listing facts that the rules read, subtotal) — listings of
one provider, city and chip at one price share it.

The booking context per listing is the one ``vouchers.selectors.booking_context`` builds, read in bulk: that
selector is called once per buyer (for its buyer-dependent fields, whatever they are), and the fields that depend
on the listing (provider, data-centre city, accelerator, review state, related party) are filled in per listing
here, from one query. ``tests/orders/test_net_price_search.py`` checks that both agree. The cluster's utilisation
over the last 7 days (the idle-capacity rule's fact; ``orders.capacity_selectors.recent_utilisation``) is read
here for all the listings at once, and by ``quote_compute`` for one booking: vouchers cannot see reservations.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import Organization
from listings.agent_selectors import mismatched_cluster_ids
from listings.models import Listing
from listings.selectors import cleared_cluster_ids, listing_reviewed
from marketplace.core.exceptions import ApplicationError
from marketplace.core.money import ZERO, to_amount, to_price
from orders.capacity_selectors import recent_utilisation
from vouchers import rules
from vouchers import selectors as voucher_selectors
from vouchers.models import Voucher


def parse_voucher_ids(raw) -> list[int]:
    """``"1,2"`` (or a list of such strings / ints) → ``[1, 2]``, each id once, in the order given.

    Raises ``ApplicationError`` 400 on ``vouchers`` when an id is not a positive whole number."""
    values = [raw] if isinstance(raw, str | int) else list(raw or ())
    ids: list[int] = []
    for value in values:
        for part in str(value).split(","):
            part = part.strip()
            if not part:
                continue
            if not part.isdigit() or int(part) < 1:
                raise ApplicationError(
                    gettext("Invalid search parameters."),
                    errors={"vouchers": [gettext("Give voucher ids separated by commas, e.g. 1,2.")]},
                )
            if int(part) not in ids:
                ids.append(int(part))
    return ids


def buyer_vouchers(buyer: Organization | None, voucher_ids: Iterable[int]) -> list[Voucher]:
    """The vouchers ``buyer`` holds among ``voucher_ids`` (with their programs).

    Raises ``ApplicationError`` 400 on ``vouchers`` for an id that is not the buyer's (another organization's or
    none at all, worded as the booking path words it, so it does not tell which), or when there is no buyer."""
    ids = list(voucher_ids)
    if buyer is None:
        raise ApplicationError(
            gettext("Invalid search parameters."),
            errors={"vouchers": [gettext("Act for a startup to price listings with its vouchers.")]},
        )
    vouchers = list(Voucher.objects.filter(pk__in=ids, holder=buyer).select_related("program"))
    missing = [pk for pk in ids if pk not in {v.pk for v in vouchers}]
    if missing:
        raise ApplicationError(
            gettext("A voucher cannot pay for this booking."),
            code="voucher_ineligible",
            errors={
                "vouchers": [
                    gettext("Voucher %(id)s: not one of your vouchers (rule: organization).") % {"id": pk}
                    for pk in missing
                ]
            },
        )
    return vouchers


class NetPricer:
    """Net prices of one buyer's set of vouchers over a set of listings.

    ``NetPricer(buyer=, vouchers=, listing_ids=)`` reads everything it needs up front (a few queries whatever the
    number of listings); ``net_price`` / ``voucher_part`` are then pure. ``vouchers`` are ``Voucher`` rows of
    ``buyer`` (``buyer_vouchers``); an empty list prices every listing at its own price. Pricing several sets of
    one buyer's vouchers over the same listings, pass ``contexts=listing_contexts(...)`` (read once) instead of
    ``listing_ids``.
    """

    def __init__(
        self,
        *,
        buyer: Organization,
        vouchers: list[Voucher],
        listing_ids: Iterable[int] = (),
        contexts: dict[int, rules.BookingContext] | None = None,
        now: dt.datetime | None = None,
    ):
        self.now = now or timezone.now()
        self.vouchers = vouchers
        self._candidates = (
            voucher_selectors.voucher_candidates(vouchers, buyer_id=buyer.pk, now=self.now) if vouchers else []
        )
        if contexts is None:
            contexts = listing_contexts(buyer, listing_ids, self.now) if vouchers else {}
        self._contexts = contexts
        self._parts: dict[rules.BookingContext, Decimal | None] = {}

    def voucher_part(self, listing_id: int, subtotal: Decimal) -> Decimal | None:
        """What the vouchers pay together of a booking of ``listing_id`` worth ``subtotal`` (fen); None when one
        of them may not pay for that listing (or the listing was not loaded)."""
        if not self.vouchers:
            return ZERO
        context = self._contexts.get(listing_id)
        if context is None:
            return None
        context = dataclasses.replace(context, subtotal=to_amount(subtotal))
        if context not in self._parts:
            try:
                parts = rules.compute_parts(context, self._candidates)
            except rules.RulesError:
                self._parts[context] = None
            else:
                self._parts[context] = to_amount(sum((p.amount for p in parts), ZERO))
        return self._parts[context]

    def net_price(self, listing_id: int, *, price: Decimal, gpu_hours: int) -> Decimal | None:
        """The cash per GPU-hour of a booking of ``gpu_hours`` GPU-hours of ``listing_id`` at ``price``, exact
        (not rounded: matching compares it with the bid's limit as ``booking_create`` will, cash ≤ limit ×
        GPU-hours); None where the vouchers may not pay."""
        subtotal = to_amount(price * gpu_hours)
        part = self.voucher_part(listing_id, subtotal)
        if part is None:
            return None
        return (subtotal - part) / gpu_hours


def listing_contexts(
    buyer: Organization,
    listing_ids: Iterable[int],
    now: dt.datetime,
    *,
    utilisation: dict[int, Decimal | None] | None = None,
) -> dict[int, rules.BookingContext]:
    """``{listing id: vouchers.selectors.booking_context(buyer, listing, subtotal 0, now, cluster_utilisation)}``,
    in two queries plus that selector's own for one listing (the buyer's fields), plus two for the clusters' 7-day
    utilisation (``recent_utilisation``) unless ``utilisation`` ({cluster id: share}, read once for many buyers)
    is given."""
    listings = list(
        Listing.objects.filter(pk__in=set(listing_ids))
        .select_related("cluster__accelerator", "cluster__data_center__provider")
        .order_by("pk")
    )
    if not listings:
        return {}
    cleared = cleared_cluster_ids({listing.cluster for listing in listings})
    cleared -= mismatched_cluster_ids(listing.cluster_id for listing in listings)  # hardware ≠ declared
    base = voucher_selectors.booking_context(buyer=buyer, listing=listings[0], subtotal=ZERO, now=now)
    buyer_names = buyer.related_party_names()
    if utilisation is None:
        utilisation = recent_utilisation({listing.cluster for listing in listings}, now=now)
    contexts = {}
    for listing in listings:
        cluster = listing.cluster
        accelerator, provider = cluster.accelerator, cluster.data_center.provider
        contexts[listing.pk] = dataclasses.replace(
            base,
            provider_id=provider.pk,
            data_center_city=cluster.data_center.city,
            accelerator_id=accelerator.pk,
            accelerator_domestic=accelerator.domestic,
            accelerator_export_controlled=accelerator.export_controlled,
            listing_reviewed=listing_reviewed(listing, cleared=cleared),
            related_party=bool(buyer_names & provider.related_party_names()),
            cluster_utilisation=utilisation.get(cluster.pk),
        )
    return contexts


# --- search: one node for the window (or the listing's minimum hours) ---------------------------------------------


def search_gpu_hours(listing: Listing, *, start: dt.datetime | None, end: dt.datetime | None) -> int:
    """The booking search prices a listing for: ONE node for the request's window when ``start``/``end`` are
    given, else for the listing's minimum hours (caps and tiers depend on the subtotal, so the net price does)."""
    hours = int((end - start).total_seconds() // 3600) if start and end else listing.min_hours
    return listing.gpus_per_node * hours


def search_net_prices(
    pricer: NetPricer, listings: Iterable[Listing], *, start=None, end=None
) -> dict[int, Decimal | None]:
    """``{listing id: net price per GPU-hour (4 places) or None}`` for ``listings`` (rows with ``price_per_gpu_hour``,
    ``gpus_per_node`` and ``min_hours``), priced as ``search_gpu_hours`` says."""
    out = {}
    for listing in listings:
        net = pricer.net_price(
            listing.pk, price=listing.price_per_gpu_hour, gpu_hours=search_gpu_hours(listing, start=start, end=end)
        )
        out[listing.pk] = None if net is None else to_price(net)
    return out

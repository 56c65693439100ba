"""Listing search by what I will pay: the listings search with each listing's net price per GPU-hour after the
buyer's vouchers, and ``ordering=net_price`` / ``-net_price``.

Wiring. ``listings`` sits below ``vouchers`` and ``orders`` and must not import them, so the net price cannot be
computed there. The orders layer extends the listings search instead, and is routed at the same URLs:

- API: ``orders.api.ListingSearchApi`` subclasses ``listings.api.ListingListCreateApi`` (same POST, same
  GET) and answers ``GET /api/v1/listings/`` (``marketplace/api.py`` routes it there instead of the listings one);
- page: ``browse`` below calls ``listings.views.browse`` with its hooks (a filter set with the voucher
  checkboxes, a search that can sort by net price, a decorator that sets each row's net price), and
  ``marketplace/urls.py`` routes ``/listings/`` to it ahead of the listings app's own route.

Without vouchers both behave exactly as the listings app alone (``net_price`` then sorts as ``price``).

The net price (``orders.pricing``) of a listing is priced for ONE node: for the request's window when
``start``/``end`` are given, else for the listing's minimum hours (voucher caps and tiers depend on the subtotal,
so the net price per GPU-hour can too). Null where one of the vouchers may not pay for the listing; those sort
last either way.
"""

from __future__ import annotations

import django_filters
from django import forms
from django.utils.formats import date_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.models import Organization
from accounts.selectors import acting_organization
from listings import selectors as listing_selectors
from listings import views as listing_views
from listings.filters import BrowseFilterSet, ListingFilterSet
from listings.models import Listing
from listings.selectors import ORDERINGS
from marketplace.core.exceptions import ApplicationError
from orders import pricing, resale_selectors
from vouchers import selectors as voucher_selectors
from vouchers.models import Voucher

NET_ORDERINGS = {"net_price": "price", "-net_price": "-price"}  # and what each falls back on without vouchers
NET_PRICE_BASIS = _("one node, for your window (or the listing's minimum hours without one)")
# What each ``GET /api/v1/listings/`` parameter does, for the OpenAPI schema (``marketplace.core.schema``).
API_PARAMETER_DESCRIPTIONS = {
    "accelerator": "accelerator slug; repeat for several (?accelerator=h100&accelerator=ascend-910b)",
    "city": "the data centre's city",
    "operator": "state or private data centres",
    "domestic": "true: domestic accelerators only; false: imported only",
    "min_gpus": "at least this many GPUs free (in the start/end window when given, else the cluster's total)",
    "max_price": "at most this price per GPU-hour (CNY)",
    "start": "availability window start: a whole UTC hour with an offset (give end too)",
    "end": "availability window end: a whole UTC hour with an offset, after start; nodes_available is then for "
    "the window",
    "status": "listing status (providers see their own listings in every status, platform staff all)",
    "mine": "true: only your organization's listings",
    "vouchers": "ids of your vouchers, comma-separated: adds net_price_per_gpu_hour (one node for start/end, else "
    "for the listing's minimum hours)",
    "ordering": "price, -price, price_per_pflop, -reliability / reliability (the cluster's 90-day reliability, "
    "unscored last); net_price / -net_price: by net_price_per_gpu_hour (nulls last), as price without vouchers",
    "min_reliability": "only clusters whose 90-day delivered / reserved node-hours is at least this (0 to 1)",
}


class NetPriceFilterSet(ListingFilterSet):
    """``GET /api/v1/listings/``: the listings parameters, plus ``vouchers`` (ids, comma-separated or repeated)
    and the net-price orderings."""

    vouchers = django_filters.CharFilter(
        help_text="ids of your vouchers, e.g. 1,2: each result gets net_price_per_gpu_hour after them"
    )
    ordering = django_filters.ChoiceFilter(choices=[(key, key) for key in [*ORDERINGS, *NET_ORDERINGS]])


class NetPriceBrowseFilterSet(BrowseFilterSet):
    """The listings page: the browse filters, plus the buyer's spendable vouchers as checkboxes."""

    vouchers = django_filters.ModelMultipleChoiceFilter(
        queryset=Voucher.objects.none(), widget=forms.CheckboxSelectMultiple, label=_("Pay with my vouchers")
    )
    ordering = django_filters.ChoiceFilter(
        choices=[
            ("price", _("Price, lowest first")),
            ("-price", _("Price, highest first")),
            ("price_per_pflop", _("Price per PFLOP-hour")),
            ("-reliability", _("Most reliable first")),
            ("net_price", _("After my vouchers, lowest first")),
            ("-net_price", _("After my vouchers, highest first")),
        ],
        label=_("Sort by"),
        empty_label=_("Cheapest first"),
    )

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        user = getattr(request, "user", None)
        # The form class is built once per filter-set class: the choices are the user's, set per form.
        self.form.fields["vouchers"].queryset = (
            voucher_selectors.vouchers_spendable(user)
            if user is not None and user.is_authenticated
            else Voucher.objects.none()
        )
        self.form.fields["vouchers"].label_from_instance = lambda v: gettext(
            "%(program)s · expires %(date)s · voucher %(id)s"
        ) % {"program": v.program.name, "date": date_format(v.expires_at, "Y-m-d"), "id": v.pk}
        if not (self.data or {}).get("vouchers") and not self.form.fields["vouchers"].queryset.exists():
            del self.form.fields["vouchers"]  # nothing to tick: no empty fieldset (ids sent anyway are refused)


class NetPriceSearch:
    """One search with net prices: ``listings()`` to page through, ``annotate(rows)`` on a page's rows.

    ``filters``: the cleaned filter set (``vouchers`` and the net orderings are taken out here; the rest goes to
    ``listings.selectors.listing_search`` as it is). ``vouchers``: ``Voucher`` rows of ``buyer``
    (``pricing.buyer_vouchers``); none → plain search, ``net_price`` sorting as ``price``.

    Sorting by net price prices every listing the filters match (a few queries, then ``compute_parts`` once per
    distinct listing facts and subtotal); the other orderings price the shown page only.
    """

    def __init__(self, *, filters: dict, user, buyer: Organization | None, vouchers: list[Voucher]):
        self.user, self.buyer, self.vouchers = user, buyer, vouchers
        self.filters = {k: v for k, v in filters.items() if k != "vouchers"}
        ordering = self.filters.get("ordering")
        self.net_order = ordering if ordering in NET_ORDERINGS and vouchers else None
        if ordering in NET_ORDERINGS:
            self.filters["ordering"] = NET_ORDERINGS[ordering]
        self.start, self.end = self.filters.get("start"), self.filters.get("end")

    def _pricer(self, listing_ids) -> pricing.NetPricer:
        return pricing.NetPricer(buyer=self.buyer, vouchers=self.vouchers, listing_ids=listing_ids)

    def listings(self, **_):
        """The matching listings in the order asked for: ``listing_search``'s queryset, or, sorted by net price,
        a list (nulls last; ties by price, then id)."""
        found = listing_selectors.listing_search(filters=self.filters, user=self.user)
        if self.net_order is None:
            return found
        rows = list(found.only("id", "cluster", "price_per_gpu_hour", "gpus_per_node", "min_hours"))
        nets = pricing.search_net_prices(self._pricer([r.pk for r in rows]), rows, start=self.start, end=self.end)
        sign = -1 if self.net_order.startswith("-") else 1

        def key(row: Listing):
            net = nets[row.pk]
            return net is None, sign * (net or 0), sign * row.price_per_gpu_hour, sign * row.pk

        return sorted(rows, key=key)

    def annotate(self, rows: list[Listing], *_) -> dict:
        """Set ``net_price_per_gpu_hour`` (4 places, or None) on each of ``rows`` when vouchers were given; the
        template context that shows the column."""
        if not self.vouchers:
            return {}
        nets = pricing.search_net_prices(self._pricer([r.pk for r in rows]), rows, start=self.start, end=self.end)
        for row in rows:
            row.net_price_per_gpu_hour = nets[row.pk]
        return {"net_prices_shown": True, "net_price_basis": NET_PRICE_BASIS}


def api_search(request, filters: dict) -> NetPriceSearch:
    """The search of ``GET /api/v1/listings/``: ``vouchers`` are ids of the acting startup's vouchers
    (``X-Organization`` when the user has several). Raises ``ApplicationError`` 400 on ``vouchers`` for an id
    that is not the buyer's (or when the user acts for no startup), 400 on ``organization`` when ambiguous."""
    ids = pricing.parse_voucher_ids(filters.get("vouchers"))
    buyer, vouchers = None, []
    if ids:
        try:
            buyer = acting_organization(
                request.user, kind=Organization.Kind.STARTUP, organization_id=request.headers.get("X-Organization")
            )
        except ApplicationError as exc:
            if exc.status != 403:
                raise
        vouchers = pricing.buyer_vouchers(buyer, ids)
    return NetPriceSearch(filters=filters, user=request.user, buyer=buyer, vouchers=vouchers)


def resale_asks_for(filters) -> list:
    """Open resale asks matching the search's chip, city, window and price (issue 21): shown beside the listings,
    each as a resale ask of its cluster."""
    accelerators = filters.get("accelerator") or ()
    if not isinstance(accelerators, list | tuple):
        accelerators = [accelerators]
    slugs = [getattr(a, "slug", a) for a in accelerators]
    return list(
        resale_selectors.resale_asks_open(
            accelerators=slugs,
            city=filters.get("city") or "",
            start=filters.get("start"),
            end=filters.get("end"),
            max_price=filters.get("max_price"),
        )[:20]
    )


def browse(request):
    """``/listings/`` with the buyer's spendable vouchers as checkboxes: ticked, each row shows its net price
    and the results can be sorted by it (see the module docstring). Vouchers of several organizations ticked at
    once are refused on the form (a booking is paid by one)."""
    state: dict = {}

    def search(*, filters, user):
        vouchers = list(filters.get("vouchers") or [])
        holders = {v.holder_id for v in vouchers}
        if len(holders) > 1:
            raise ApplicationError(
                _("Invalid search parameters."), errors={"vouchers": [_("Tick the vouchers of one organization.")]}
            )
        buyer = Organization.objects.get(pk=holders.pop()) if holders else None
        state["search"] = NetPriceSearch(filters=filters, user=user, buyer=buyer, vouchers=vouchers)
        return state["search"].listings()

    def decorate(rows, filters):
        extra = state["search"].annotate(rows) if "search" in state else {}
        return {**(extra or {}), "resale_asks": resale_asks_for(filters)}

    return listing_views.browse(request, filterset_class=NetPriceBrowseFilterSet, search=search, decorate=decorate)

"""Booking pages: book from a listing (quote first, via htmx), my bookings, one booking with its history."""

from __future__ import annotations

import dataclasses
import datetime as dt

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q, Sum
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from accounts.models import Organization
from accounts.selectors import acting_organization_for, user_organizations
from ledger import selectors as ledger_selectors
from listings import selectors as listing_selectors
from listings.models import Accelerator, Listing
from marketplace.core import hours
from marketplace.core.exceptions import ApplicationError
from marketplace.core.forms import ServiceErrorsMixin
from marketplace.core.money import to_amount
from marketplace.core.requests import client_ip
from marketplace.core.zones import in_zone
from orders import bid_selectors, bid_services, pricing, selectors, services
from orders.models import Booking
from vouchers import rules as voucher_rules
from vouchers import selectors as voucher_selectors
from vouchers.models import Voucher

HOUR_FORMAT = "%Y-%m-%dT%H:%M"


class BookingForm(ServiceErrorsMixin, forms.Form):
    """Times are entered on the hour in the person's time zone (``datetime-local`` inputs carry no zone: they are
    read in the active one, Beijing time by default, and handed to the services in UTC)."""

    organization = forms.ModelChoiceField(
        queryset=Organization.objects.none(),
        required=False,
        label=gettext_lazy("Organization"),
        help_text=gettext_lazy("the startup you book for"),
    )
    nodes = forms.IntegerField(min_value=1, initial=1, label=gettext_lazy("Nodes"))
    start = forms.DateTimeField(
        input_formats=[HOUR_FORMAT, "%Y-%m-%d %H:%M"],
        label=in_zone(gettext_lazy("Start")),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 3600}, format=HOUR_FORMAT),
    )
    end = forms.DateTimeField(
        input_formats=[HOUR_FORMAT, "%Y-%m-%d %H:%M"],
        label=in_zone(gettext_lazy("End")),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 3600}, format=HOUR_FORMAT),
    )

    vouchers = forms.ModelMultipleChoiceField(
        queryset=Voucher.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=gettext_lazy("Pay with vouchers"),
        help_text=gettext_lazy("soonest expiry is spent first; the rest is cash"),
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        orgs = user_organizations(user, kind=Organization.Kind.STARTUP).order_by("name")
        self.fields["organization"].queryset = orgs
        if orgs.count() <= 1:
            self.fields["organization"].widget = forms.HiddenInput()
        self.fields["vouchers"].queryset = voucher_selectors.vouchers_spendable(user)
        self.fields["vouchers"].label_from_instance = lambda v: _("%(program)s · expires %(date)s · voucher %(id)s") % {
            "program": v.program.name,
            "date": date_format(v.expires_at, "Y-m-d"),
            "id": v.pk,
        }
        if not self.fields["vouchers"].queryset.exists():
            self.fields["vouchers"].widget = forms.MultipleHiddenInput()

    def voucher_ids(self) -> list[int]:
        return [voucher.pk for voucher in self.cleaned_data.get("vouchers") or []]

    def voucher_programs(self) -> dict[int, str]:
        """The chosen vouchers' program names by voucher id (what a buyer recognises a voucher by)."""
        return {voucher.pk: voucher.program.name for voucher in self.cleaned_data.get("vouchers") or []}

    def _utc(self, name):
        # The form parses in the active time zone (the person's); the services get UTC.
        value = self.cleaned_data[name]
        return value.astimezone(dt.UTC) if value is not None else None

    def clean_start(self):
        return self._utc("start")

    def clean_end(self):
        return self._utc("end")


def _listing_or_404(listing_id):
    try:
        return services.listing_for_quote(listing_id)
    except ApplicationError as exc:
        raise Http404(_("No open listing with this id.")) from exc


def _initial_window(listing) -> dict:
    start = max(listing.available_from, hours.next_hour())
    return {"start": start, "end": start + dt.timedelta(hours=max(listing.min_hours, 1)), "nodes": 1}


def _free_nodes(listing, start, end) -> int:
    """Nodes of the listing's cluster with no active reservation overlapping ``[start, end)``."""
    free = (
        listing_selectors.with_search_columns(Listing.objects.filter(pk=listing.pk), start=start, end=end)
        .values_list("nodes_available", flat=True)
        .first()
    )
    return listing.cluster.node_count if free is None else max(free, 0)


def _more_nodes_than_the_cluster(form: BookingForm, listing) -> bool:
    """Put "this cluster has only N nodes" on the nodes field, in the reader's language, when the form asks for more
    (True), else False."""
    total = listing.cluster.node_count
    if form.cleaned_data["nodes"] <= total:
        return False
    form.add_error("nodes", _("This cluster has only %(total)s nodes.") % {"total": total})
    return True


def _too_few_free_nodes(form: BookingForm, listing, free: int) -> bool:
    """Put "only N of M nodes are free" on the nodes field when the form asks for more (True), else False."""
    if _more_nodes_than_the_cluster(form, listing):
        return True
    if form.cleaned_data["nodes"] <= free:
        return False
    total = listing.cluster.node_count
    if free == 0:
        message = _("No node of this cluster is free in this window: pick another window.")
    else:
        message = ngettext(
            "Only %(free)s of the %(total)s nodes is free in this window: book %(free)s or fewer, or pick another "
            "window.",
            "Only %(free)s of the %(total)s nodes are free in this window: book %(free)s or fewer, or pick another "
            "window.",
            free,
        ) % {"free": free, "total": total}
    form.add_error("nodes", message)
    return True


def _wallet_of(buyer) -> dict | None:
    return ledger_selectors.wallet_summary(buyer.pk) if buyer is not None else None


def _short_of_funds(wallet: dict, cash) -> dict:
    """What the page says when the wallet cannot pay the cash part (``orders/_short_of_funds.html``: the amounts,
    the currency and the link to top up)."""
    return {"balance": wallet["balance"], "cash": cash, "missing": cash - wallet["balance"]}


def _applicable_vouchers(request, listing, form: BookingForm) -> list[int]:
    """The spendable vouchers that would each pay part of one node for the form's first window (pre-ticked on the
    form). Read in a few queries whatever the number of vouchers, then priced by the rules engine alone."""
    vouchers = list(
        form.fields["vouchers"].queryset.prefetch_related(
            "program__eligible_providers", "program__eligible_accelerators", "program__stack_excluded_programs"
        )
    )
    if not vouchers:
        return []
    try:
        buyer = acting_organization_for(request, Organization.Kind.STARTUP)
    except ApplicationError:
        return []
    window = _initial_window(listing)
    hours_ = int((window["end"] - window["start"]).total_seconds()) // 3600
    subtotal = to_amount(listing.price_per_gpu_hour * listing.cluster.gpus_per_node * hours_)
    now = timezone.now()
    context = pricing.listing_contexts(buyer, [listing.pk], now).get(listing.pk)
    if context is None:
        return []
    context = dataclasses.replace(context, subtotal=subtotal)
    applicable = []
    for candidate in voucher_selectors.voucher_candidates(vouchers, buyer_id=buyer.pk, now=now):
        try:
            parts = voucher_rules.compute_parts(context, [candidate])
        except voucher_rules.RulesError:
            continue
        if any(part.amount > 0 for part in parts):
            applicable.append(candidate.voucher_id)
    return applicable


def _quote_context(listing, form: BookingForm, quote, free_nodes, wallet) -> dict:
    """What the quote and the confirmation step show: the quote (None when refused), its voucher parts named by
    program, the free nodes, the wallet (None for a visitor) and, when the wallet is short, how short."""
    context = {
        "listing": listing,
        "form": form,
        "quote": quote,
        "voucher_parts": _named_voucher_parts(form, quote),
        "free_nodes": free_nodes,
        "wallet": wallet,
    }
    if quote is not None and wallet is not None and wallet["balance"] < quote.cash_amount:
        context["short_of_funds"] = _short_of_funds(wallet, quote.cash_amount)
    return context


def _named_voucher_parts(form: BookingForm, quote) -> list[dict]:
    """The quote's voucher parts, each with its voucher's program name (``program``); none without a quote."""
    if quote is None:
        return []
    programs = form.voucher_programs()
    return [{**part, "program": programs.get(part["voucher"], "")} for part in quote.voucher_parts]


def _review(request, listing, form: BookingForm):
    """The confirmation step of a booking: the price, the voucher and cash parts, the free nodes and the wallet,
    before any money moves (writes nothing). Refusals go on the form instead."""
    data = form.cleaned_data
    if _more_nodes_than_the_cluster(form, listing):
        return render(request, "orders/book.html", {"listing": listing, "form": form}, status=400)
    try:
        buyer = acting_organization_for(
            request, Organization.Kind.STARTUP, for_write=True, organization=data.get("organization")
        )
        quote = services.quote_compute(
            listing=listing,
            nodes=data["nodes"],
            start=data["start"],
            end=data["end"],
            buyer=buyer,
            vouchers=form.voucher_ids(),
        )
    except ApplicationError as exc:
        form.add_service_errors(exc)
        return render(request, "orders/book.html", {"listing": listing, "form": form}, status=exc.status)
    free = _free_nodes(listing, quote.start, quote.end)
    if _too_few_free_nodes(form, listing, free):
        return render(request, "orders/book.html", {"listing": listing, "form": form}, status=409)
    context = _quote_context(listing, form, quote, free, _wallet_of(buyer))
    return render(request, "orders/book_confirm.html", context)


@login_required
def book(request, listing_id):
    """GET: the booking form, the vouchers that would pay part of it ticked. POST with ``review``: the confirmation
    step (price, voucher and cash parts, free nodes, wallet; nothing written). POST without: book and confirm,
    then show the booking (the confirmation step's button; API-like clients post it directly). POST with ``edit``:
    the form again with what was entered."""
    listing = _listing_or_404(listing_id)
    if request.method == "POST":
        form = BookingForm(request.POST, user=request.user)
        if "edit" in request.POST:
            return render(request, "orders/book.html", {"listing": listing, "form": form})
        status, short_of_funds = 400, None
        if form.is_valid() and "review" in request.POST:
            return _review(request, listing, form)
        if form.is_valid() and not _more_nodes_than_the_cluster(form, listing):
            try:
                booking = services.booking_create(
                    buyer=acting_organization_for(
                        request,
                        Organization.Kind.STARTUP,
                        for_write=True,
                        organization=form.cleaned_data.get("organization"),
                    ),
                    listing_id=listing.pk,
                    nodes=form.cleaned_data["nodes"],
                    start=form.cleaned_data["start"],
                    end=form.cleaned_data["end"],
                    created_by=request.user,
                    vouchers=form.voucher_ids(),
                    confirm=True,
                    ip=client_ip(request),
                )
            except ApplicationError as exc:
                status = exc.status
                if exc.code == "insufficient_funds":
                    buyer = acting_organization_for(
                        request, Organization.Kind.STARTUP, organization=form.cleaned_data.get("organization")
                    )
                    quote = services.quote_compute(
                        listing=listing,
                        nodes=form.cleaned_data["nodes"],
                        start=form.cleaned_data["start"],
                        end=form.cleaned_data["end"],
                        buyer=buyer,
                        vouchers=form.voucher_ids(),
                    )
                    short_of_funds = _short_of_funds(_wallet_of(buyer), quote.cash_amount)
                elif exc.code == "capacity":
                    free = _free_nodes(listing, form.cleaned_data["start"], form.cleaned_data["end"])
                    if not _too_few_free_nodes(form, listing, free):
                        form.add_service_errors(exc)
                else:
                    form.add_service_errors(exc)
            else:
                messages.success(
                    request,
                    _("Booked %(nodes)s node(s): booking %(id)s is confirmed.")
                    % {"nodes": booking.nodes, "id": booking.pk},
                )
                return redirect("booking-detail", pk=booking.pk)
        context = {"listing": listing, "form": form, "short_of_funds": short_of_funds}
        return render(request, "orders/book.html", context, status=status)
    form = BookingForm(initial=_initial_window(listing), user=request.user)
    form.initial["vouchers"] = _applicable_vouchers(request, listing, form)
    return render(request, "orders/book.html", {"listing": listing, "form": form})


@login_required
@require_POST
def book_quote(request, listing_id):
    """htmx partial: the price of the form's booking (subtotal, voucher part, cash part), the nodes free in its
    window and the wallet beside the cash part, or its field errors (more nodes than are free among them)."""
    listing = _listing_or_404(listing_id)
    form = BookingForm(request.POST, user=request.user)
    quote = free = wallet = None
    if form.is_valid() and not _more_nodes_than_the_cluster(form, listing):
        try:
            buyer = acting_organization_for(
                request, Organization.Kind.STARTUP, organization=form.cleaned_data.get("organization")
            )
        except ApplicationError:
            buyer = None  # not a startup member: the price without vouchers or wallet
        try:
            quote = services.quote_compute(
                listing=listing,
                nodes=form.cleaned_data["nodes"],
                start=form.cleaned_data["start"],
                end=form.cleaned_data["end"],
                buyer=buyer,
                vouchers=form.voucher_ids() if buyer is not None else (),
            )
        except ApplicationError as exc:
            form.add_service_errors(exc)
        else:
            free = _free_nodes(listing, quote.start, quote.end)
            if _too_few_free_nodes(form, listing, free):
                quote = None
            else:
                wallet = _wallet_of(buyer)
    return render(request, "orders/_quote.html", _quote_context(listing, form, quote, free, wallet))


@login_required
def booking_list(request):
    """My bookings (the startups I act for), newest first, with status and amounts; ``?status=`` filters."""
    status = request.GET.get("status") or None
    if status not in Booking.Status.values:
        status = None
    orgs = user_organizations(request.user, kind=Organization.Kind.STARTUP)
    qs = selectors.bookings_for_buyer(orgs, status=status)
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    return render(
        request,
        "orders/booking_list.html",
        {"page": page, "status": status, "statuses": Booking.Status.choices},
    )


@login_required
def provider_bookings(request):
    """``/provider/bookings/``: every booking on the clusters of the provider I act for (``?organization=`` picks
    one of several), newest first, with its buyer, window, status and revenue (the subtotal, and what the provider
    was paid once settled); ``?status=`` filters. Non-provider members get 403."""
    provider = acting_organization_for(request, Organization.Kind.PROVIDER)
    status = request.GET.get("status") or None
    if status not in Booking.Status.values:
        status = None
    qs = selectors.bookings_for_provider(provider, status=status).select_related("settlement")
    totals = selectors.bookings_for_provider(provider).aggregate(
        booked=Sum("subtotal", filter=~Q(status__in=[Booking.Status.CANCELLED, Booking.Status.EXPIRED])),
        paid=Sum("settlement__provider_amount"),
    )
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    return render(
        request,
        "orders/provider_bookings.html",
        {
            "provider": provider,
            "organizations": list(user_organizations(request.user, kind=Organization.Kind.PROVIDER)),
            "page": page,
            "status": status,
            "statuses": Booking.Status.choices,
            "booked_total": totals["booked"] or 0,
            "paid_total": totals["paid"] or 0,
        },
    )


@login_required
def booking_detail(request, pk):
    """One booking (buyer or provider side) with its nodes and status history; others' answer 404."""
    try:
        booking = selectors.booking_detail(booking_id=pk, queryset=selectors.bookings_visible_to(request.user))
    except ApplicationError as exc:
        raise Http404(exc.message) from exc
    is_buyer = selectors.bookings_bought_by(request.user).filter(pk=booking.pk).exists()
    return render(
        request,
        "orders/booking_detail.html",
        {
            "booking": booking,
            "is_buyer": is_buyer,
            "reserved_nodes": selectors.reserved_node_indexes(booking),
        },
    )


def _buyer_action(request, pk, action, done: str):
    try:
        booking = selectors.booking_detail(booking_id=pk, queryset=selectors.bookings_bought_by(request.user))
    except ApplicationError as exc:
        raise Http404(exc.message) from exc
    try:
        action(booking=booking, actor=request.user, ip=client_ip(request))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, str(done).format(id=booking.pk))
    next_url = request.POST.get("next", "")
    if next_url and url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        return redirect(next_url)
    return redirect("booking-detail", pk=pk)


@login_required
@require_POST
def booking_cancel(request, pk):
    return _buyer_action(
        request,
        pk,
        services.booking_cancel,
        gettext_lazy("Booking {id} is cancelled; its payment hold was released in full."),
    )


@login_required
@require_POST
def booking_confirm(request, pk):
    return _buyer_action(request, pk, services.booking_confirm, gettext_lazy("Booking {id} is confirmed."))


# --- bids and the market page ------------------------------------------------------------------------------------


class BidForm(BookingForm):
    """A bid: accelerators, nodes, duration, window (whole hours, in the person's zone), maximum price, optional
    vouchers."""

    accelerators = forms.ModelMultipleChoiceField(
        queryset=None, to_field_name="slug", widget=forms.CheckboxSelectMultiple, label=gettext_lazy("Accelerators")
    )
    duration_hours = forms.IntegerField(min_value=1, initial=4, label=gettext_lazy("Duration (hours)"))
    max_price_per_gpu_hour = forms.DecimalField(
        min_value=0, max_digits=12, decimal_places=4, label=gettext_lazy("Max price per GPU-hour (CNY)")
    )

    field_order = [
        "organization",
        "accelerators",
        "nodes",
        "duration_hours",
        "start",
        "end",
        "max_price_per_gpu_hour",
        "vouchers",
    ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["accelerators"].queryset = Accelerator.objects.order_by("slug")
        self.fields["start"].label = in_zone(gettext_lazy("Earliest start"))
        self.fields["end"].label = in_zone(gettext_lazy("Latest end"))
        self.order_fields(self.field_order)

    service_field_names = {"earliest_start": "start", "latest_end": "end"}


@login_required
def bid_list(request):
    """My bids (newest first, paginated) and the form to place one; field errors are shown in place."""
    form = BidForm(request.POST or None, user=request.user, initial={"start": hours.next_hour(2)})
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                bid = bid_services.bid_place(
                    buyer=acting_organization_for(
                        request,
                        Organization.Kind.STARTUP,
                        for_write=True,
                        organization=form.cleaned_data.get("organization"),
                    ),
                    accelerators=list(data["accelerators"]),
                    nodes=data["nodes"],
                    duration_hours=data["duration_hours"],
                    earliest_start=data["start"],
                    latest_end=data["end"],
                    max_price_per_gpu_hour=data["max_price_per_gpu_hour"],
                    vouchers=form.voucher_ids(),
                    created_by=request.user,
                    ip=client_ip(request),
                )
            except ApplicationError as exc:
                form.add_service_errors(exc)
                status = exc.status
            else:
                messages.success(
                    request,
                    _("Bid %(id)s placed; %(amount)s CNY is held until it fills, expires or you cancel it.")
                    % {"id": bid.pk, "amount": bid.held_amount},
                )
                return redirect("bid-list")
    page = Paginator(bid_selectors.bids_of_user(request.user), 25).get_page(request.GET.get("page"))
    return render(request, "orders/bids.html", {"form": form, "page": page}, status=status)


@login_required
@require_POST
def bid_cancel(request, pk):
    try:
        bid = bid_selectors.bid_detail(bid_id=pk, queryset=bid_selectors.bids_of_user(request.user))
    except ApplicationError as exc:
        raise Http404(exc.message) from exc
    try:
        bid_services.bid_cancel(bid=bid, actor=request.user, ip=client_ip(request))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Bid %(id)s is cancelled; its hold was released.") % {"id": bid.pk})
    return redirect("bid-list")


@login_required
def market(request):
    """The order book per accelerator (depth chart: ask levels vs bid levels) and the latest fills."""
    accelerators = list(Accelerator.objects.order_by("slug"))
    selected = next((a for a in accelerators if a.slug == request.GET.get("accelerator")), None)
    selected = selected or (accelerators[0] if accelerators else None)
    depth = bid_selectors.market_depth(accelerator=selected) if selected else {"asks": [], "bids": []}
    chart = {
        "asks": [{"price": str(level["price"]), "gpus": level["gpus"]} for level in depth["asks"]],
        "bids": [{"price": str(level["price"]), "gpus": level["gpus"]} for level in depth["bids"]],
    }
    return render(
        request,
        "orders/depth.html",
        {
            "accelerators": accelerators,
            "selected": selected,
            "depth": depth,
            "chart": chart,
            "fills": bid_selectors.recent_fills(accelerator=selected) if selected else [],
        },
    )

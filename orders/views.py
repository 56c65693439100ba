"""Booking pages: book from a listing (quote first, via htmx), my bookings, one booking with its history."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.formats import date_format
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts.models import Organization
from accounts.selectors import acting_organization, user_organizations
from listings.models import Accelerator
from marketplace.core import hours
from marketplace.core.exceptions import ApplicationError
from marketplace.core.forms import ServiceErrorsMixin
from marketplace.core.zones import in_zone
from orders import bid_selectors, bid_services, selectors, services
from orders.models import Booking
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


def _buyer(request, form: BookingForm, *, for_write: bool = False) -> Organization:
    chosen = form.cleaned_data.get("organization")
    return acting_organization(
        request.user, kind=Organization.Kind.STARTUP, organization_id=chosen.pk if chosen else None, for_write=for_write
    )


def _initial_window(listing) -> dict:
    start = max(listing.available_from, hours.next_hour())
    return {"start": start, "end": start + dt.timedelta(hours=max(listing.min_hours, 1)), "nodes": 1}


@login_required
def book(request, listing_id):
    """GET: the booking form. POST: book and confirm in one step, then show the booking."""
    listing = _listing_or_404(listing_id)
    if request.method == "POST":
        form = BookingForm(request.POST, user=request.user)
        status = 400
        if form.is_valid():
            try:
                booking = services.booking_create(
                    buyer=_buyer(request, form, for_write=True),
                    listing_id=listing.pk,
                    nodes=form.cleaned_data["nodes"],
                    start=form.cleaned_data["start"],
                    end=form.cleaned_data["end"],
                    created_by=request.user,
                    vouchers=form.voucher_ids(),
                    confirm=True,
                    ip=request.META.get("REMOTE_ADDR"),
                )
            except ApplicationError as exc:
                form.add_service_errors(exc)
                status = exc.status
            else:
                messages.success(
                    request,
                    _("Booked %(nodes)s node(s): booking %(id)s is confirmed.")
                    % {"nodes": booking.nodes, "id": booking.pk},
                )
                return redirect("booking-detail", pk=booking.pk)
        return render(request, "orders/book.html", {"listing": listing, "form": form}, status=status)
    form = BookingForm(initial=_initial_window(listing), user=request.user)
    return render(request, "orders/book.html", {"listing": listing, "form": form})


@login_required
@require_POST
def book_quote(request, listing_id):
    """htmx partial: the price of the form's booking (subtotal, voucher part, cash part) or its field errors."""
    listing = _listing_or_404(listing_id)
    form = BookingForm(request.POST, user=request.user)
    quote = None
    if form.is_valid():
        try:
            quote = services.quote_compute(
                listing=listing,
                nodes=form.cleaned_data["nodes"],
                start=form.cleaned_data["start"],
                end=form.cleaned_data["end"],
                buyer=_buyer(request, form),
                vouchers=form.voucher_ids(),
            )
        except ApplicationError as exc:
            form.add_service_errors(exc)
    return render(request, "orders/_quote.html", {"listing": listing, "form": form, "quote": quote})


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
        {"page": page, "status": status, "statuses": Booking.Status.choices, "cancellable": services.OPEN_STATUSES},
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
            "cancellable": services.OPEN_STATUSES,
            "reserved_nodes": selectors.reserved_node_indexes(booking),
        },
    )


def _buyer_action(request, pk, action, done: str):
    try:
        booking = selectors.booking_detail(booking_id=pk, queryset=selectors.bookings_bought_by(request.user))
    except ApplicationError as exc:
        raise Http404(exc.message) from exc
    try:
        action(booking=booking, actor=request.user, ip=request.META.get("REMOTE_ADDR"))
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
                    buyer=_buyer(request, form, for_write=True),
                    accelerators=list(data["accelerators"]),
                    nodes=data["nodes"],
                    duration_hours=data["duration_hours"],
                    earliest_start=data["start"],
                    latest_end=data["end"],
                    max_price_per_gpu_hour=data["max_price_per_gpu_hour"],
                    vouchers=form.voucher_ids(),
                    created_by=request.user,
                    ip=request.META.get("REMOTE_ADDR"),
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
        bid_services.bid_cancel(bid=bid, actor=request.user, ip=request.META.get("REMOTE_ADDR"))
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

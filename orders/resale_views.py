"""Resale pages (issue 21): the resell form and asks on the booking page, withdraw, the buy page, the resale asks
page. Views validate, call one service and redirect or render."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts.models import Organization
from accounts.selectors import acting_organization_for, has_org_kind
from marketplace.core.exceptions import ApplicationError
from marketplace.core.forms import ServiceErrorsMixin
from marketplace.core.requests import client_ip
from marketplace.core.zones import in_zone
from orders import resale_selectors, resale_services, selectors
from orders.views import HOUR_FORMAT


def _hour_field(label):
    return forms.DateTimeField(
        input_formats=[HOUR_FORMAT, "%Y-%m-%d %H:%M"],
        label=in_zone(label),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 3600}, format=HOUR_FORMAT),
    )


class ResaleBuyForm(ServiceErrorsMixin, forms.Form):
    """Nodes and a window (whole hours, in the person's zone) of a resale ask."""

    nodes = forms.IntegerField(min_value=1, max_value=100_000, initial=1, label=gettext_lazy("Nodes"))
    start = _hour_field(gettext_lazy("Start"))
    end = _hour_field(gettext_lazy("End"))

    def _utc(self, name):
        value = self.cleaned_data[name]
        return value.astimezone(dt.UTC) if value is not None else None

    def clean_start(self):
        return self._utc("start")

    def clean_end(self):
        return self._utc("end")


class ResellForm(ResaleBuyForm):
    """Part of a booking offered for resale: nodes, window and the seller's price per GPU-hour."""

    price_per_gpu_hour = forms.DecimalField(
        max_digits=12, decimal_places=4, min_value=0, label=gettext_lazy("Your price per GPU-hour")
    )


def _own_booking(request, pk):
    try:
        return selectors.booking_detail(booking_id=pk, queryset=selectors.bookings_bought_by(request.user))
    except ApplicationError as exc:
        raise Http404(exc.message) from exc


@login_required
@require_POST
def booking_resell(request, pk):
    """The booking page's resell form: an ask of the booking, then back to the booking page."""
    booking = _own_booking(request, pk)
    form = ResellForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            for error in errors:
                messages.error(request, f"{form.fields[field].label}: {error}" if field in form.fields else error)
        return redirect("booking-detail", pk=booking.pk)
    try:
        seller = acting_organization_for(
            request, Organization.Kind.STARTUP, for_write=True, organization=booking.buyer_id
        )
        ask = resale_services.resale_ask_create(
            booking_id=booking.pk, seller=seller, created_by=request.user, ip=client_ip(request), **form.cleaned_data
        )
    except ApplicationError as exc:
        messages.error(request, " ".join([exc.message, *(m for ms in (exc.errors or {}).values() for m in ms)]))
    else:
        messages.success(request, _("Resale ask %(id)s is open.") % {"id": ask.pk})
    return redirect("booking-detail", pk=booking.pk)


@login_required
@require_POST
def resale_ask_withdraw(request, pk):
    try:
        ask = resale_selectors.resale_ask_own(ask_id=pk, user=request.user)
    except ApplicationError as exc:
        raise Http404(exc.message) from exc
    try:
        seller = acting_organization_for(request, Organization.Kind.STARTUP, for_write=True, organization=ask.seller_id)
        resale_services.resale_ask_withdraw(ask=ask, seller=seller, actor=request.user, ip=client_ip(request))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Resale ask %(id)s is withdrawn.") % {"id": ask.pk})
    return redirect("booking-detail", pk=ask.booking_id)


@login_required
def resale_ask_buy(request, pk):
    """One open resale ask and the form to buy nodes of it (startup members)."""
    if not has_org_kind(request.user, Organization.Kind.STARTUP):
        raise PermissionDenied(_("Only startup members can do this."))
    try:
        ask = resale_selectors.resale_ask_visible(ask_id=pk, user=request.user)
    except ApplicationError as exc:
        raise Http404(exc.message) from exc
    status = 200
    if request.method == "POST":
        form = ResaleBuyForm(request.POST)
        if form.is_valid():
            try:
                buyer = acting_organization_for(request, Organization.Kind.STARTUP, for_write=True)
                sale = resale_services.resale_buy(
                    ask_id=ask.pk, buyer=buyer, created_by=request.user, ip=client_ip(request), **form.cleaned_data
                )
            except ApplicationError as exc:
                form.add_service_errors(exc)
                status = exc.status
            else:
                messages.success(
                    request,
                    _("You bought %(nodes)s nodes on resale for %(amount)s; booking %(id)s is confirmed.")
                    % {"nodes": sale.nodes, "amount": sale.amount, "id": sale.booking.pk},
                )
                return redirect("booking-detail", pk=sale.booking.pk)
        else:
            status = 400
    else:
        form = ResaleBuyForm(initial={"nodes": 1, "start": ask.start, "end": ask.end})
    return render(request, "orders/resale_buy.html", {"ask": ask, "form": form}, status=status)


@login_required
def resale_asks(request):
    """Open resale asks of every cluster, cheapest first (``?accelerator=&city=``)."""
    clean = [v for v in request.GET.getlist("accelerator") if v and "\x00" not in v and len(v) <= 40]
    city = request.GET.get("city", "")
    asks = resale_selectors.resale_asks_open(
        accelerators=clean, city=city if "\x00" not in city and len(city) <= 32 else ""
    )[:200]
    return render(request, "orders/resale_asks.html", {"asks": asks})

"""Page side of a booking's delivery: the booking page's access section (``orders.templatetags.delivery``), the
form that reports an incident from it, and the staff page that lists the reported incidents and decides on them."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts.models import Organization
from accounts.selectors import acting_organization, is_platform_staff
from marketplace.core.exceptions import ApplicationError
from marketplace.core.forms import ServiceErrorsMixin, service_errors_to_messages
from marketplace.core.zones import in_zone
from orders import handovers, selectors
from orders.models import DeliveryIncident

MINUTE_FORMAT = "%Y-%m-%dT%H:%M"


class IncidentReportForm(ServiceErrorsMixin, forms.Form):
    """Times in the person's time zone (``datetime-local``), handed to the service in UTC."""

    node = forms.IntegerField(
        min_value=1, required=False, label=gettext_lazy("Node"), help_text=gettext_lazy("empty: every node")
    )
    started_at = forms.DateTimeField(
        input_formats=[MINUTE_FORMAT, "%Y-%m-%d %H:%M"],
        label=in_zone(gettext_lazy("From")),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=MINUTE_FORMAT),
    )
    ended_at = forms.DateTimeField(
        input_formats=[MINUTE_FORMAT, "%Y-%m-%d %H:%M"],
        required=False,
        label=in_zone(gettext_lazy("Until")),
        help_text=gettext_lazy("empty: still going on"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=MINUTE_FORMAT),
    )
    description = forms.CharField(
        max_length=2000, label=gettext_lazy("What did not work"), widget=forms.Textarea(attrs={"rows": 3})
    )

    def clean_started_at(self):
        return self.cleaned_data["started_at"].astimezone(dt.UTC)

    def clean_ended_at(self):
        value = self.cleaned_data.get("ended_at")
        return value.astimezone(dt.UTC) if value else None


@login_required
@require_POST
def incident_report(request, pk: int):
    booking = selectors.bookings_bought_by(request.user).filter(pk=pk).first()
    if booking is None:
        raise Http404(_("No such booking."))
    acting_organization(request.user, kind=Organization.Kind.STARTUP, organization_id=booking.buyer_id, for_write=True)
    form = IncidentReportForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            for error in errors:
                messages.error(request, f"{form.fields[field].label}: {error}" if field in form.fields else error)
        return redirect("booking-detail", pk=pk)
    try:
        handovers.incident_report(booking=booking, actor=request.user, **form.cleaned_data)
    except ApplicationError as exc:
        for field, errors in (exc.errors or {"": [exc.message]}).items():
            label = form.fields[field].label if field in form.fields else ""
            for error in errors:
                messages.error(request, f"{label}: {error}" if label else error)
    else:
        messages.success(request, _("Incident reported: platform staff will review it."))
    return redirect("booking-detail", pk=pk)


# --- platform staff's review of reported incidents -------------------------------------------------------------------


def _require_staff(request) -> None:
    if not is_platform_staff(request.user):
        raise PermissionDenied(_("Only platform staff review reported incidents."))


@login_required
def incident_list(request):
    """``/staff/incidents/``: the buyers' reported incidents, those awaiting review first, with the forms that
    accept or reject them."""
    _require_staff(request)
    page = Paginator(handovers.incidents_for_review(), 25).get_page(request.GET.get("page"))
    return render(request, "delivery/incidents.html", {"page": page})


@login_required
@require_POST
def incident_resolve(request, pk: int):
    """Accept or reject (with a note) one reported incident, then back to the list with what happened."""
    _require_staff(request)
    incident = DeliveryIncident.objects.filter(pk=pk).first()
    if incident is None:
        raise Http404(_("No such incident."))
    decision = request.POST.get("decision", "")
    try:
        handovers.incident_resolve(
            incident=incident, actor=request.user, decision=decision, note=request.POST.get("note", "")[:2000]
        )
    except ApplicationError as exc:
        service_errors_to_messages(request, exc)
    else:
        if decision == "accept":
            done = _("Incident accepted: it counts towards the SLA credit paid back at settlement.")
        else:
            done = _("Incident rejected: it does not count towards the SLA credit.")
        messages.success(request, done)
    return redirect("staff-incidents")

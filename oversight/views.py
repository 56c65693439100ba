"""Audit pages: the spend dashboard (charts, table, CSV download), the anomaly flag queue (htmx review) and the
event log browser. Auditors see everything, issuer members their own programs and organization; others get 403.
The idle-capacity page (listed vs booked node-hours of a city) is for platform staff and auditors (every city) and
a city's issuers (``oversight.scope.idle_capacity_cities``)."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts.models import CITY_LABELS, Organization
from accounts.selectors import is_auditor
from marketplace.core.exceptions import ApplicationError
from orders import capacity_selectors
from oversight import flags, reports, scope
from oversight.api import IDLE_CAPACITY_DAYS, capacity_start, spend_csv_response
from oversight.models import AnomalyFlag

PAGE_SIZE = 20
GROUP_LABELS = {
    "city": gettext_lazy("city"),
    "program": gettext_lazy("program"),
    "provider": gettext_lazy("provider"),
    "accelerator": gettext_lazy("accelerator"),
    "month": gettext_lazy("month"),
    "issuer": gettext_lazy("issuer"),
}


def _page(request, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def _issuers(request) -> list[int] | None:
    if not scope.can_read_audit(request.user):
        raise PermissionDenied(_("Only auditors and voucher issuers can read audit data."))
    return reports.spend_scope(request.user)


def _chart(rows: list[dict], names: dict | None = None) -> dict:
    names = names or {}
    return {
        "labels": [str(names.get(row["label"], row["label"])) for row in rows],
        "spent": [str(row["spent"]) for row in rows],
        "captured": [str(row["captured"]) for row in rows],
    }


@login_required
def dashboard(request):
    issuers = _issuers(request)
    group_by = request.GET.get("group_by", "city")
    if group_by not in reports.GROUPS:
        group_by = "city"
    table = reports.spend_report(group_by=group_by, issuer_ids=issuers)
    by_city = table if group_by == "city" else reports.spend_report(group_by="city", issuer_ids=issuers)
    by_month = reports.spend_report(group_by="month", issuer_ids=issuers)
    by_chip = reports.spend_report(group_by="accelerator", issuer_ids=issuers)
    domestic = sum((r["spent"] for r in by_chip if r["domestic"]), reports.ZERO)
    foreign = sum((r["spent"] for r in by_chip if not r["domestic"]), reports.ZERO)
    if group_by == "city":  # the cities by their names in the reader's language
        table = [{**row, "label": CITY_LABELS.get(row["label"], row["label"])} for row in table]
    charts = {
        "city": _chart(by_city, CITY_LABELS),
        "month": _chart(by_month),
        "chips": {"labels": [_("Domestic chips"), _("Foreign chips")], "spent": [str(domestic), str(foreign)]},
    }
    open_flags = scope.flags_visible(request.user).filter(status=AnomalyFlag.Status.OPEN).count()
    return render(
        request,
        "oversight/dashboard.html",
        {
            "rows": table,
            "totals": reports.spend_totals(table),
            "group_by": group_by,
            "group_label": GROUP_LABELS.get(group_by, group_by),
            "groups": [(g, GROUP_LABELS.get(g, g)) for g in reports.GROUPS],
            "charts": charts,
            "open_flags": open_flags,
            "all_programs": issuers is None,
        },
    )


@login_required
def spend_csv(request):
    issuers = _issuers(request)
    group_by = request.GET.get("group_by", "city")
    if group_by not in reports.GROUPS:
        return HttpResponseBadRequest(f"group_by must be one of: {', '.join(reports.GROUPS)}")
    rows = reports.spend_report(group_by=group_by, issuer_ids=issuers)
    return spend_csv_response(group_by=group_by, rows=rows)


@login_required
def flag_queue(request):
    _issuers(request)
    status = request.GET.get("status", AnomalyFlag.Status.OPEN)
    kind = request.GET.get("kind", "")
    qs = scope.flags_visible(request.user).select_related("booking", "voucher", "program", "organization")
    if status in AnomalyFlag.Status.values:
        qs = qs.filter(status=status)
    if kind in AnomalyFlag.Kind.values:
        qs = qs.filter(kind=kind)
    return render(
        request,
        "oversight/flags.html",
        {
            "page": _page(request, qs),
            "status": status,
            "kind": kind,
            "statuses": AnomalyFlag.Status.choices,
            "kinds": AnomalyFlag.Kind.choices,
            "can_review": is_auditor(request.user),
        },
    )


@login_required
@require_POST
def flag_review(request, pk: int):
    """Dismiss or confirm with a note; htmx swaps the row (errors in place), a plain POST redirects back."""
    visible = scope.flags_visible(request.user)
    errors: dict[str, list[str]] = {}
    try:
        flags.flag_review(
            flag=pk, actor=request.user, decision=request.POST.get("decision", ""), note=request.POST.get("note", "")
        )
    except ApplicationError as exc:
        if exc.status in (403, 404):  # the error page says why (marketplace.core.middleware)
            raise
        errors = exc.errors or {"__all__": [exc.message]}
    if not request.htmx:
        for messages_ in errors.values():
            for message in messages_:
                messages.error(request, message)
        return redirect("audit-flags")
    flag = visible.filter(pk=pk).select_related("booking", "voucher", "program", "organization").first()
    if flag is None:
        raise PermissionDenied(_("Not a flag you can see."))
    # htmx swaps 2xx answers only: the errors travel in the row.
    return render(
        request, "oversight/_flag_row.html", {"flag": flag, "errors": errors, "can_review": is_auditor(request.user)}
    )


def _day(value: str, *, field: str, errors: list[str]) -> dt.datetime | None:
    """A ``YYYY-MM-DD`` of the date filter as the start of that day in the reader's zone (None when empty or bad,
    the reason then in ``errors``)."""
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        errors.append(_("%(field)s: enter a date such as 2026-03-01.") % {"field": field})
        return None
    return timezone.make_aware(dt.datetime.combine(day, dt.time()), timezone.get_current_timezone())


@login_required
def event_log(request):
    """The audit events the reader may see, newest first, by organization name, action, object and date range
    (``since`` / ``until``: whole days in the reader's zone, both included)."""
    issuers = _issuers(request)
    filters = {name: request.GET.get(name, "").strip() for name in ("action", "object_type")}
    organization = request.GET.get("organization", "").strip()
    since_text, until_text = request.GET.get("since", "").strip(), request.GET.get("until", "").strip()
    errors: list[str] = []
    if organization and not organization.isdigit():
        errors.append(_("Pick an organization from the list."))
        organization = ""
    since = _day(since_text, field=_("From"), errors=errors)
    until = _day(until_text, field=_("Until"), errors=errors)
    if since and until and until < since:
        errors.append(_("The end of the date range is before its start."))
        until = None
    qs = scope.events_visible(request.user, organization=int(organization) if organization else None, **filters)
    qs = qs.select_related("organization")
    if since:
        qs = qs.filter(created_at__gte=since)
    if until:
        qs = qs.filter(created_at__lt=until + dt.timedelta(days=1))
    organizations = Organization.objects.order_by("name").only("pk", "name")
    if issuers is not None:
        organizations = organizations.filter(pk__in=issuers)
    actions = scope.events_visible(request.user).values_list("action", flat=True).distinct().order_by("action")
    return render(
        request,
        "oversight/events.html",
        {
            "page": _page(request, qs),
            "filters": filters,
            "organization": organization,
            "organizations": organizations,
            "actions": list(actions),
            "since": since_text if since else "",
            "until": until_text if until else "",
            "errors": errors,
            "error": " ".join(errors),
        },
    )


def _idle_chart(view: dict) -> dict:
    """A Chart.js config (``static/js/charts.js`` kind ``config``): per day, the node-hours booked and the idle
    node-hours of each accelerator, stacked, so a bar's height is what was listed."""
    labels = [timezone.localtime(day).date().isoformat() for day in view["days"]]
    idle: dict[str, list[float]] = {}
    for row in view["rows"]:
        series = idle.setdefault(row["accelerator_name"], [0.0] * len(labels))
        for i, hours in enumerate(row["idle"]):
            series[i] += float(hours)
    datasets = [{"label": _("Booked"), "data": [float(h) for h in view["totals"]["booked"]], "stack": "hours"}]
    datasets += [
        {"label": _("Idle: %(accelerator)s") % {"accelerator": name}, "data": data, "stack": "hours"}
        for name, data in idle.items()
    ]
    return {
        "type": "bar",
        "data": {"labels": labels, "datasets": datasets},
        "options": {
            "scales": {
                "x": {"stacked": True},
                "y": {"stacked": True, "beginAtZero": True, "title": {"display": True, "text": _("Node-hours")}},
            }
        },
    }


@login_required
def idle_capacity(request):
    """Listed vs booked node-hours of one city's clusters for the next 14 days (``?city=``; the reader's first city
    by default): a day-by-day table, a chart, and the totals by accelerator and provider."""
    try:
        cities = scope.idle_capacity_cities(request.user)
        choices = cities if cities is not None else list(CITY_LABELS)
        city = scope.idle_capacity_city(request.user, request.GET.get("city") or choices[0])
    except ApplicationError as exc:
        raise PermissionDenied(exc.message) from exc
    if city not in CITY_LABELS:
        return HttpResponseBadRequest(_("Unknown city."))
    view = capacity_selectors.idle_capacity(city=city, first=capacity_start(), days=IDLE_CAPACITY_DAYS)
    days = [
        {
            "day": timezone.localtime(start).date(),
            "listed": view["totals"]["listed"][i],
            "booked": view["totals"]["booked"][i],
            "idle": view["totals"]["idle"][i],
        }
        for i, start in enumerate(view["days"])
    ]
    return render(
        request,
        "oversight/idle_capacity.html",
        {
            "city": city,
            "city_label": CITY_LABELS.get(city, city),
            "cities": [(c, CITY_LABELS.get(c, c)) for c in choices],
            "view": view,
            "days": days,
            "chart": _idle_chart(view) if view["rows"] else None,
        },
    )

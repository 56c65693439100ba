"""The price index page (charts, filters, table) and its CSV download. Every signed-in user reads them."""

from __future__ import annotations

import csv
import datetime as dt
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import CITY_CHOICES
from listings.models import Accelerator
from market import selectors
from market.serializers import FixingQuerySerializer
from market.services import last_closed_day
from marketplace.core.spreadsheet import safe_cell

PAGE_SIZE = 50
DEFAULT_DAYS = 30


def _filters(request) -> tuple[dict, dict]:
    """The validated filters (``selectors.fixings`` keywords) and the field errors (empty when valid); on errors the
    filters are the defaults. Without ``from``, the last ``DEFAULT_DAYS`` closed days."""
    query = FixingQuerySerializer(data={k: v for k, v in request.GET.items() if v != ""})
    if not query.is_valid():
        return {}, {name: [str(message) for message in messages] for name, messages in query.errors.items()}
    data = query.validated_data
    return {
        "accelerator": data.get("accelerator"),
        "city": data.get("city"),
        "since": data.get("from"),
        "until": data.get("to"),
    }, {}


def _query(filters: dict) -> str:
    """The query string of the filters the page shows (for its CSV link: the same rows)."""
    params = {
        "accelerator": filters["accelerator"].slug if filters.get("accelerator") else None,
        "city": filters.get("city"),
        "from": filters["since"].isoformat() if filters.get("since") else None,
        "to": filters["until"].isoformat() if filters.get("until") else None,
    }
    return urlencode({name: value for name, value in params.items() if value})


@login_required
def index(request):
    filters, errors = _filters(request)
    accelerators = list(Accelerator.objects.filter(fixings__isnull=False).distinct().order_by("slug"))
    if filters.get("accelerator") is None:  # the chart is of one chip: the first with fixings by default
        filters["accelerator"] = accelerators[0] if accelerators else None
    if filters.get("since") is None:
        filters["since"] = last_closed_day(timezone.now()) - dt.timedelta(days=DEFAULT_DAYS - 1)
    rows = list(selectors.fixings(**filters)) if filters["accelerator"] is not None else []
    return render(
        request,
        "market/index.html",
        {
            "accelerators": accelerators,
            "cities": CITY_CHOICES,
            "selected": filters["accelerator"],
            "city": filters.get("city") or "",
            "since": filters["since"],
            "until": filters.get("until"),
            "errors": errors,
            "charts": selectors.index_charts(rows, single_city=bool(filters.get("city"))) if rows else None,
            "page": Paginator(list(reversed(rows)), PAGE_SIZE).get_page(request.GET.get("page")),
            "query": _query(filters),
        },
    )


@login_required
def index_csv(request):
    """The fixings of the filters (all of them without filters) as a CSV attachment; bad filters answer 400 with
    the field errors."""
    filters, errors = _filters(request)
    if errors:
        return JsonResponse({"detail": gettext("Invalid filters."), "errors": errors}, status=400)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="compute-price-index-{stamp}.csv"'
    writer = csv.writer(response)
    writer.writerow(selectors.CSV_COLUMNS)
    for fixing in selectors.fixings(**filters).iterator():
        writer.writerow([safe_cell(value) for value in selectors.csv_row(fixing)])
    return response

"""Parsing and validating listing search parameters (django-filter). The filtering itself is
``selectors.listing_search``, so the API and the browse page share it."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from accounts.models import CITY_CHOICES
from listings.models import Accelerator, DataCenter, Listing
from listings.selectors import ORDERINGS
from marketplace.core import hours
from marketplace.core.zones import in_zone

PAGE_HOUR_MESSAGE = _("Choose a whole hour (minutes zero).")
HOUR_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local", "step": 3600}, format="%Y-%m-%dT%H:%M")


class HourField(forms.DateTimeField):
    """An aware datetime on a whole UTC hour. With ``allow_naive`` (the HTML page's datetime-local inputs) a value
    without offset is read in the active time zone (the person's: Beijing time unless they chose another; see
    ``accounts.preferences``), so 14:00 typed in Shanghai is 06:00 UTC; otherwise it is refused (the API)."""

    def __init__(self, *args, allow_naive: bool = False, **kwargs):
        self.allow_naive = allow_naive
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        if isinstance(value, str) and value.strip():
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None
            if parsed is not None and timezone.is_naive(parsed):
                if not self.allow_naive:
                    raise forms.ValidationError(hours.NAIVE_MESSAGE, code="naive")
                return timezone.make_aware(parsed)  # in the active zone
        return super().to_python(value)

    def validate(self, value):
        super().validate(value)
        if value and hours.start_of_hour(value) != value:
            raise forms.ValidationError(
                PAGE_HOUR_MESSAGE if self.allow_naive else hours.HOUR_MESSAGE, code="not_on_hour"
            )


class HourFilter(django_filters.Filter):
    field_class = HourField


class SearchForm(forms.Form):
    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        given = [name for name in ("start", "end") if self.data.get(name)]
        if len(given) == 1:
            missing = "end" if given == ["start"] else "start"
            self.add_error(missing, _("Give both start and end for an availability window."))
        elif start and end and end <= start:
            self.add_error("end", _("Must be after start."))
        return data


class ListingFilterSet(django_filters.FilterSet):
    """``GET /api/v1/listings/`` parameters. Unknown accelerator slugs, bad choices, naive or off-the-hour
    datetimes and a lone start or end are field errors (400)."""

    accelerator = django_filters.ModelMultipleChoiceFilter(queryset=Accelerator.objects.all(), to_field_name="slug")
    city = django_filters.ChoiceFilter(choices=CITY_CHOICES)
    operator = django_filters.ChoiceFilter(choices=DataCenter.Operator.choices)
    domestic = django_filters.BooleanFilter()
    min_gpus = django_filters.NumberFilter(min_value=1, max_value=1_000_000, decimal_places=0)
    max_price = django_filters.NumberFilter(min_value=0, max_digits=12, decimal_places=4)
    min_reliability = django_filters.NumberFilter(min_value=0, max_value=1, max_digits=5, decimal_places=4)
    start = HourFilter()
    end = HourFilter()
    status = django_filters.ChoiceFilter(choices=Listing.Status.choices)
    mine = django_filters.BooleanFilter()
    ordering = django_filters.ChoiceFilter(choices=[(key, key) for key in ORDERINGS])

    class Meta:
        model = Listing
        fields: list = []
        form = SearchForm

    def get_form_class(self):
        # django-filter builds a form class, with a new form field per filter, for every request; the filters do
        # not change between requests, so each filter-set class builds its form class once.
        form_class = type(self).__dict__.get("_form_class")
        if form_class is None:
            form_class = super().get_form_class()
            type(self)._form_class = form_class
        return form_class

    def cleaned(self) -> dict:
        """The cleaned parameters for ``listing_search`` (call after ``is_valid()``)."""
        data = dict(self.form.cleaned_data)
        chips = data.get("accelerator")
        data["accelerator"] = [chips] if isinstance(chips, Accelerator) else list(chips or [])  # page: one chip
        if data.get("min_gpus") is not None:
            data["min_gpus"] = int(data["min_gpus"])
        return {name: value for name, value in data.items() if not _unset(value)}

    def error_dict(self) -> dict[str, list[str]]:
        return {field: list(messages) for field, messages in self.errors.items()}


def _unset(value) -> bool:
    """A parameter left blank: None, "", or an empty list or queryset (a multiple-choice filter with nothing ticked
    cleans to ``queryset.none()``, which is no filter and must not count as one)."""
    if isinstance(value, (list, tuple, QuerySet)):
        return not value
    return value is None or value == ""


class BrowseFilterSet(ListingFilterSet):
    """The browse page: the same parameters with labels a person reads, one accelerator picked from a drop-down,
    ``datetime-local`` inputs read in the person's time zone. Status and ``mine`` stay API-only (providers use their
    own page)."""

    accelerator = django_filters.ModelChoiceFilter(
        queryset=Accelerator.objects.all(),
        to_field_name="slug",
        label=_("Accelerator"),
        empty_label=_("Any accelerator"),
    )
    city = django_filters.ChoiceFilter(choices=CITY_CHOICES, label=_("City"), empty_label=_("Any city"))
    operator = django_filters.ChoiceFilter(
        choices=DataCenter.Operator.choices, label=_("Operator"), empty_label=_("State or private")
    )
    domestic = django_filters.BooleanFilter(
        label=_("Domestic chips"),
        widget=forms.Select(choices=[("", _("Any")), ("true", _("Domestic only")), ("false", _("Imported only"))]),
    )
    min_gpus = django_filters.NumberFilter(
        min_value=1, max_value=1_000_000, decimal_places=0, label=_("At least GPUs free")
    )
    max_price = django_filters.NumberFilter(
        min_value=0, max_digits=12, decimal_places=4, label=_("Max price per GPU-hour")
    )
    min_reliability = django_filters.NumberFilter(
        min_value=0,
        max_value=1,
        max_digits=5,
        decimal_places=4,
        label=_("Min reliability (0–1)"),
        help_text=_("delivered share of booked node-hours over 90 days"),
    )
    start = HourFilter(allow_naive=True, widget=HOUR_INPUT, label=in_zone(_("Start")))
    end = HourFilter(allow_naive=True, widget=HOUR_INPUT, label=in_zone(_("End")))
    ordering = django_filters.ChoiceFilter(
        choices=[
            ("price", _("Price, lowest first")),
            ("-price", _("Price, highest first")),
            ("price_per_pflop", _("Price per PFLOP-hour")),
            ("-reliability", _("Most reliable first")),
        ],
        label=_("Sort by"),
        empty_label=_("Cheapest first"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for api_only in ("status", "mine"):
            self.filters.pop(api_only, None)

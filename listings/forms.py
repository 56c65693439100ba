"""Page forms. They check types; services check the rules and their ``ApplicationError`` field errors are shown in
place with ``add_service_errors``."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from accounts.models import CITY_CHOICES
from listings.filters import HourField
from listings.models import Accelerator, Cluster, DataCenter
from listings.services import MAX_MIN_HOURS, REVIEW_DECISIONS
from marketplace.core.forms import ServiceErrorsMixin
from marketplace.core.money import PRICE_DIGITS, PRICE_PLACES

HOUR_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local", "step": 3600})


class DataCenterForm(ServiceErrorsMixin, forms.Form):
    name = forms.CharField(max_length=120)
    city = forms.ChoiceField(choices=CITY_CHOICES)
    operator = forms.ChoiceField(choices=DataCenter.Operator.choices)
    region = forms.CharField(max_length=80, required=False, help_text="national computing hub / region")


class ClusterForm(ServiceErrorsMixin, forms.Form):
    data_center = forms.ModelChoiceField(queryset=DataCenter.objects.none())
    name = forms.CharField(max_length=120)
    accelerator = forms.ModelChoiceField(queryset=Accelerator.objects.all(), to_field_name="slug")
    gpus_per_node = forms.IntegerField(min_value=1, max_value=64, initial=8)
    node_count = forms.IntegerField(min_value=1, max_value=4096)
    interconnect = forms.CharField(max_length=120, required=False)
    provenance_invoice_number = forms.CharField(label="Invoice number", max_length=64, required=False)
    provenance_supplier = forms.CharField(label="Supplier", max_length=120, required=False)
    provenance_serial_numbers = forms.CharField(label="Serial numbers (one per line)", required=False,
                                                widget=forms.Textarea(attrs={"rows": 3}))
    provenance_import_documents = forms.CharField(label="Import documents (customs declaration numbers …)",
                                                  required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, data_centers=None, **kwargs):
        super().__init__(*args, **kwargs)
        if data_centers is not None:
            self.fields["data_center"].queryset = data_centers

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        provenance = None
        declared = any(data[f"provenance_{f}"] for f in ("invoice_number", "supplier", "serial_numbers",
                                                          "import_documents"))
        if data["accelerator"].export_controlled and declared:
            provenance = {"invoice_number": data["provenance_invoice_number"], "supplier": data["provenance_supplier"],
                          "serial_numbers": data["provenance_serial_numbers"].split(),
                          "import_documents": data["provenance_import_documents"]}
        return {"data_center": data["data_center"], "name": data["name"], "accelerator": data["accelerator"],
                "gpus_per_node": data["gpus_per_node"], "node_count": data["node_count"],
                "interconnect": data["interconnect"], "provenance": provenance}


class ListingForm(ServiceErrorsMixin, forms.Form):
    cluster = forms.ModelChoiceField(queryset=Cluster.objects.none())
    price_per_gpu_hour = forms.DecimalField(label="Price per GPU-hour", max_digits=PRICE_DIGITS,
                                            decimal_places=PRICE_PLACES, min_value=Decimal("0.0001"))
    available_from = HourField(allow_naive=True, widget=HOUR_INPUT, label="Available from (UTC)")
    available_until = HourField(allow_naive=True, widget=HOUR_INPUT, label="Available until (UTC)")
    # At most a year, as the API allows: larger values overflowed the window arithmetic (500).
    min_hours = forms.IntegerField(min_value=1, max_value=MAX_MIN_HOURS, initial=1, label="Minimum hours")

    def __init__(self, *args, clusters=None, **kwargs):
        super().__init__(*args, **kwargs)
        if clusters is not None:
            self.fields["cluster"].queryset = clusters


class ListingEditForm(ServiceErrorsMixin, forms.Form):
    """The terms a provider may change on a draft, rejected or paused listing."""

    price_per_gpu_hour = ListingForm.base_fields["price_per_gpu_hour"]
    available_from = ListingForm.base_fields["available_from"]
    available_until = ListingForm.base_fields["available_until"]
    min_hours = ListingForm.base_fields["min_hours"]


class ReviewForm(ServiceErrorsMixin, forms.Form):
    decision = forms.ChoiceField(choices=[(d, d.title()) for d in REVIEW_DECISIONS])
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)

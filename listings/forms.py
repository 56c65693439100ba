"""Page forms. They check types; services check the rules and their ``ApplicationError`` field errors are shown in
place with ``add_service_errors``."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import CITY_CHOICES
from listings.filters import HOUR_INPUT, HourField
from listings.models import Accelerator, Cluster, DataCenter
from listings.services import MAX_MIN_HOURS, REVIEW_DECISIONS
from marketplace.core.forms import ServiceErrorsMixin
from marketplace.core.money import PRICE_DIGITS, PRICE_PLACES
from marketplace.core.zones import in_zone


class DataCenterForm(ServiceErrorsMixin, forms.Form):
    name = forms.CharField(max_length=120, label=_("Name"))
    city = forms.ChoiceField(choices=CITY_CHOICES, label=_("City"))
    operator = forms.ChoiceField(choices=DataCenter.Operator.choices, label=_("Operator"))
    region = forms.CharField(
        max_length=80, required=False, label=_("Region"), help_text=_("national computing hub / region")
    )


class ClusterForm(ServiceErrorsMixin, forms.Form):
    data_center = forms.ModelChoiceField(queryset=DataCenter.objects.none(), label=_("Data centre"))
    name = forms.CharField(max_length=120, label=_("Name"))
    accelerator = forms.ModelChoiceField(
        queryset=Accelerator.objects.all(), to_field_name="slug", label=_("Accelerator")
    )
    gpus_per_node = forms.IntegerField(min_value=1, max_value=64, initial=8, label=_("GPUs per node"))
    node_count = forms.IntegerField(min_value=1, max_value=4096, label=_("Number of nodes"))
    interconnect = forms.CharField(max_length=120, required=False, label=_("Interconnect"))
    provenance_invoice_number = forms.CharField(label=_("Invoice number"), max_length=64, required=False)
    provenance_supplier = forms.CharField(label=_("Supplier"), max_length=120, required=False)
    provenance_serial_numbers = forms.CharField(
        label=_("Serial numbers (one per line)"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    provenance_import_documents = forms.CharField(
        label=_("Import documents (customs declaration numbers …)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args, data_centers=None, **kwargs):
        super().__init__(*args, **kwargs)
        if data_centers is not None:
            self.fields["data_center"].queryset = data_centers

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        provenance = None
        declared = any(
            data[f"provenance_{f}"] for f in ("invoice_number", "supplier", "serial_numbers", "import_documents")
        )
        if data["accelerator"].export_controlled and declared:
            provenance = {
                "invoice_number": data["provenance_invoice_number"],
                "supplier": data["provenance_supplier"],
                "serial_numbers": data["provenance_serial_numbers"].split(),
                "import_documents": data["provenance_import_documents"],
            }
        return {
            "data_center": data["data_center"],
            "name": data["name"],
            "accelerator": data["accelerator"],
            "gpus_per_node": data["gpus_per_node"],
            "node_count": data["node_count"],
            "interconnect": data["interconnect"],
            "provenance": provenance,
        }


class ListingForm(ServiceErrorsMixin, forms.Form):
    cluster = forms.ModelChoiceField(queryset=Cluster.objects.none(), label=_("Cluster"))
    price_per_gpu_hour = forms.DecimalField(
        label=_("Price per GPU-hour"), max_digits=PRICE_DIGITS, decimal_places=PRICE_PLACES, min_value=Decimal("0.0001")
    )
    available_from = HourField(allow_naive=True, widget=HOUR_INPUT, label=in_zone(_("Available from")))
    available_until = HourField(allow_naive=True, widget=HOUR_INPUT, label=in_zone(_("Available until")))
    # At most a year, as the API allows: larger values overflowed the window arithmetic (500).
    min_hours = forms.IntegerField(min_value=1, max_value=MAX_MIN_HOURS, initial=1, label=_("Minimum hours"))

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
    decision = forms.ChoiceField(choices=[(d, d.title()) for d in REVIEW_DECISIONS], label=_("Decision"))
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000, label=_("Note"))

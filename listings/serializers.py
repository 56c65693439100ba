"""API shapes for the supply side. Input serializers check types; business rules live in ``listings.services``."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone
from django.utils.translation import gettext_lazy
from rest_framework import serializers

from accounts.models import CITY_CHOICES
from listings.models import Accelerator, Cluster, DataCenter, Listing, ProvenanceDeclaration
from listings.services import REVIEW_DECISIONS
from marketplace.core.fields import StrictPrimaryKeyRelatedField
from marketplace.core.money import CENT, PRICE_DIGITS, PRICE_PLACES, PRICE_QUANTUM


class AwareDateTimeField(serializers.DateTimeField):
    """A datetime that must carry a UTC offset: a naive value is a 400, never silently read in some zone."""

    default_error_messages = {"naive": gettext_lazy("Include a UTC offset (e.g. 2026-01-01T08:00:00Z).")}

    def enforce_timezone(self, value):
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)


class AcceleratorSerializer(serializers.ModelSerializer):
    class Meta:
        model = Accelerator
        fields = ["slug", "name", "vendor", "memory_gb", "bf16_tflops", "domestic", "export_controlled"]


class DataCenterSerializer(serializers.ModelSerializer):
    provider = serializers.CharField(source="provider.name", read_only=True)

    class Meta:
        model = DataCenter
        fields = ["id", "name", "city", "operator", "region", "provider"]


class DataCenterCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    city = serializers.ChoiceField(choices=CITY_CHOICES)
    operator = serializers.ChoiceField(choices=DataCenter.Operator.choices)
    region = serializers.CharField(max_length=80, required=False, allow_blank=True, default="")


class ProvenanceSerializer(serializers.ModelSerializer):
    serial_numbers = serializers.ListField(
        child=serializers.CharField(max_length=64), allow_empty=False, max_length=10_000
    )

    class Meta:
        model = ProvenanceDeclaration
        fields = [
            "invoice_number",
            "supplier",
            "serial_numbers",
            "import_documents",
            "status",
            "review_note",
            "reviewed_at",
        ]
        read_only_fields = ["status", "review_note", "reviewed_at"]


class ClusterSerializer(serializers.ModelSerializer):
    data_center = DataCenterSerializer(read_only=True)
    accelerator = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    provenance = serializers.SerializerMethodField()

    class Meta:
        model = Cluster
        fields = [
            "id",
            "name",
            "data_center",
            "accelerator",
            "gpus_per_node",
            "node_count",
            "interconnect",
            "provenance",
        ]

    def get_provenance(self, cluster) -> dict | None:
        declaration = getattr(cluster, "provenance", None)
        return ProvenanceSerializer(declaration).data if declaration else None


class ClusterCreateSerializer(serializers.Serializer):
    data_center = StrictPrimaryKeyRelatedField(queryset=DataCenter.objects.none())
    name = serializers.CharField(max_length=120)
    accelerator = serializers.SlugRelatedField(slug_field="slug", queryset=Accelerator.objects.all())
    gpus_per_node = serializers.IntegerField(min_value=1, max_value=64)
    node_count = serializers.IntegerField(min_value=1, max_value=4096)
    interconnect = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    provenance = ProvenanceSerializer(required=False, allow_null=True)

    def __init__(self, *args, data_centers=None, **kwargs):
        super().__init__(*args, **kwargs)
        if data_centers is not None:
            self.fields["data_center"].queryset = data_centers


class ListingClusterSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    interconnect = serializers.CharField()
    data_center = serializers.CharField(source="data_center.name")
    provider = serializers.CharField(source="data_center.provider.name")
    accelerator = AcceleratorSerializer()


class ListingSerializer(serializers.ModelSerializer):
    """A listing with the search columns annotated by ``selectors.with_search_columns``."""

    cluster = ListingClusterSerializer(read_only=True)
    accelerator = serializers.CharField(source="cluster.accelerator.slug", read_only=True)
    city = serializers.CharField(source="cluster.data_center.city", read_only=True)
    operator = serializers.CharField(source="cluster.data_center.operator", read_only=True)
    price_per_pflop_hour = serializers.DecimalField(max_digits=16, decimal_places=2, read_only=True)
    nodes_total = serializers.IntegerField(read_only=True)
    gpus_per_node = serializers.IntegerField(read_only=True)
    nodes_available = serializers.IntegerField(read_only=True)
    reliability = serializers.DecimalField(
        max_digits=5,
        decimal_places=4,
        read_only=True,
        allow_null=True,
        help_text="delivered / reserved node-hours of the cluster's bookings that ended in the last 90 days",
    )

    class Meta:
        model = Listing
        fields = [
            "id",
            "cluster",
            "accelerator",
            "city",
            "operator",
            "price_per_gpu_hour",
            "price_per_pflop_hour",
            "available_from",
            "available_until",
            "min_hours",
            "nodes_total",
            "gpus_per_node",
            "nodes_available",
            "reliability",
            "sla_percent",
            "status",
            "review_note",
        ]
        read_only_fields = fields

    def to_representation(self, listing) -> dict:
        # Hand-built: search pages serialize 25+ rows per request and DRF's per-field machinery was a third of the
        # request time in bench/search.py. The declared fields above still document the shape (OpenAPI).
        cluster, dc = listing.cluster, listing.cluster.data_center
        chip = cluster.accelerator
        return {
            "id": listing.pk,
            "cluster": {
                "id": cluster.pk,
                "name": cluster.name,
                "interconnect": cluster.interconnect,
                "data_center": dc.name,
                "provider": dc.provider.name,
                "accelerator": {
                    "slug": chip.slug,
                    "name": chip.name,
                    "vendor": chip.vendor,
                    "memory_gb": chip.memory_gb,
                    "bf16_tflops": str(chip.bf16_tflops),
                    "domestic": chip.domestic,
                    "export_controlled": chip.export_controlled,
                },
            },
            "accelerator": chip.slug,
            "city": dc.city,
            "operator": dc.operator,
            "price_per_gpu_hour": str(listing.price_per_gpu_hour.quantize(PRICE_QUANTUM)),
            "price_per_pflop_hour": str(listing.price_per_pflop_hour.quantize(CENT, rounding=ROUND_HALF_UP)),
            "available_from": _iso(listing.available_from),
            "available_until": _iso(listing.available_until),
            "min_hours": listing.min_hours,
            "nodes_total": listing.nodes_total,
            "gpus_per_node": listing.gpus_per_node,
            "nodes_available": listing.nodes_available,
            "reliability": None if cluster.reliability is None else str(cluster.reliability),
            "sla_percent": str(listing.sla_percent),
            "status": listing.status,
            "review_note": listing.review_note,
        }


_DATETIME = serializers.DateTimeField()  # stateless: one instance formats every row's datetimes


def _iso(value) -> str:
    return _DATETIME.to_representation(value)


class ListingWriteSerializer(serializers.Serializer):
    """Create (all required) and PATCH (``partial=True``) input."""

    cluster = StrictPrimaryKeyRelatedField(queryset=Cluster.objects.none())
    price_per_gpu_hour = serializers.DecimalField(
        max_digits=PRICE_DIGITS, decimal_places=PRICE_PLACES, min_value=Decimal("0.0001")
    )
    available_from = AwareDateTimeField()
    available_until = AwareDateTimeField()
    min_hours = serializers.IntegerField(min_value=1, max_value=24 * 366, default=1)
    sla_percent = serializers.DecimalField(
        max_digits=5,
        decimal_places=2,
        min_value=Decimal("90"),
        max_value=Decimal("100"),
        default=Decimal("99.00"),
        help_text="promised availability in per cent (90 to 100); set when the listing is created, never changed: "
        "incident node-hours beyond it are credited at settlement",
    )

    def __init__(self, *args, clusters=None, **kwargs):
        super().__init__(*args, **kwargs)
        if clusters is not None:
            self.fields["cluster"].queryset = clusters
        if self.partial:
            self.fields.pop("cluster")


class ReviewSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=REVIEW_DECISIONS)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)

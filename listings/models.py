"""The supply side: accelerator catalog, data centres, clusters of whole nodes, and listings (asks)."""

from django.contrib.postgres.fields import ArrayField
from django.db import models

from accounts.models import CITY_CHOICES, Organization
from marketplace.core.models import TimeStampedModel
from marketplace.core.money import PriceField


class Accelerator(models.Model):
    """A chip model. ``export_controlled`` chips need a reviewed provenance declaration before listing."""

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    vendor = models.CharField(max_length=40)
    memory_gb = models.PositiveIntegerField()
    bf16_tflops = models.DecimalField(max_digits=8, decimal_places=1, help_text="dense BF16 TFLOPS per chip")
    domestic = models.BooleanField(default=False, help_text="made in China (Ascend, Cambricon, …)")
    export_controlled = models.BooleanField(default=False)

    class Meta:
        ordering = ["vendor", "name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(bf16_tflops__gt=0), name="accelerator_tflops_positive"),
            models.CheckConstraint(condition=models.Q(memory_gb__gt=0), name="accelerator_memory_positive"),
        ]

    def __str__(self):
        return self.name


class DataCenter(TimeStampedModel):
    class Operator(models.TextChoices):
        STATE = "state", "State-owned"
        PRIVATE = "private", "Private cloud"

    provider = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="data_centers")
    name = models.CharField(max_length=120)
    city = models.CharField(max_length=32, choices=CITY_CHOICES)
    operator = models.CharField(max_length=8, choices=Operator.choices)
    region = models.CharField(max_length=80, blank=True, help_text="national computing hub / region")

    class Meta:
        ordering = ["city", "name"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "name"], name="datacenter_unique_name_per_provider"),
            models.CheckConstraint(condition=models.Q(operator__in=["state", "private"]), name="datacenter_operator"),
        ]

    def __str__(self):
        return f"{self.name} ({self.city})"


class Cluster(TimeStampedModel):
    """Nodes of one accelerator on one interconnect. Capacity is booked in whole nodes (``Node`` rows)."""

    data_center = models.ForeignKey(DataCenter, on_delete=models.PROTECT, related_name="clusters")
    name = models.CharField(max_length=120)
    accelerator = models.ForeignKey(Accelerator, on_delete=models.PROTECT, related_name="clusters")
    gpus_per_node = models.PositiveSmallIntegerField()
    node_count = models.PositiveIntegerField()
    interconnect = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["data_center", "name"]
        constraints = [
            models.UniqueConstraint(fields=["data_center", "name"], name="cluster_unique_name_per_dc"),
            models.CheckConstraint(condition=models.Q(gpus_per_node__gte=1, gpus_per_node__lte=64),
                                   name="cluster_gpus_per_node_range"),
            models.CheckConstraint(condition=models.Q(node_count__gte=1), name="cluster_node_count_positive"),
        ]

    def __str__(self):
        return f"{self.name} · {self.node_count}×{self.gpus_per_node} {self.accelerator}"


class ProvenanceDeclaration(TimeStampedModel):
    """Where an export-controlled cluster's chips came from; platform staff approve it before listings go active."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    cluster = models.OneToOneField(Cluster, on_delete=models.CASCADE, related_name="provenance")
    invoice_number = models.CharField(max_length=64)
    supplier = models.CharField(max_length=120)
    serial_numbers = ArrayField(models.CharField(max_length=64), default=list)
    import_documents = models.TextField(help_text="customs declaration numbers and other import documents")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    reviewed_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)


class Node(models.Model):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="nodes")
    index = models.PositiveIntegerField(help_text="1-based; bookings take the lowest-numbered free nodes")

    class Meta:
        ordering = ["cluster", "index"]
        constraints = [models.UniqueConstraint(fields=["cluster", "index"], name="node_unique_index_per_cluster")]

    def __str__(self):
        return f"{self.cluster.name} node {self.index}"


class Listing(TimeStampedModel):
    """An ask: a cluster's capacity offered at a price per GPU-hour for a window of whole hours."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PENDING_REVIEW = "pending_review", "Pending review"
        ACTIVE = "active", "Active"
        REJECTED = "rejected", "Rejected"
        PAUSED = "paused", "Paused"
        CLOSED = "closed", "Closed"

    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="listings")
    price_per_gpu_hour = PriceField()
    available_from = models.DateTimeField()
    available_until = models.DateTimeField()
    min_hours = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    review_note = models.TextField(blank=True)

    class Meta:
        ordering = ["price_per_gpu_hour", "id"]
        indexes = [
            # Search: active listings whose window covers the asked one. INCLUDE lets the count run as an
            # index-only scan (measured with bench/search.py: 3 ms instead of 13 ms for 19k matches of 100k).
            models.Index(fields=["available_from", "available_until"],
                         include=["min_hours", "cluster", "price_per_gpu_hour"],
                         condition=models.Q(status="active"), name="listing_active_window_idx"),
            models.Index(fields=["price_per_gpu_hour", "id"], condition=models.Q(status="active"),
                         name="listing_active_price_idx"),
            models.Index(fields=["cluster", "status"], name="listing_cluster_status_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(price_per_gpu_hour__gt=0), name="listing_price_positive"),
            models.CheckConstraint(condition=models.Q(available_until__gt=models.F("available_from")),
                                   name="listing_window_ordered"),
            models.CheckConstraint(condition=models.Q(min_hours__gte=1), name="listing_min_hours_positive"),
            models.CheckConstraint(
                condition=models.Q(status__in=["draft", "pending_review", "active", "rejected", "paused", "closed"]),
                name="listing_status_valid",
            ),
        ]

    def __str__(self):
        return f"Listing {self.pk}: {self.cluster} @ {self.price_per_gpu_hour}/GPU-h"

"""The supply side: accelerator catalog, data centres, clusters of whole nodes, and listings (asks)."""

from decimal import Decimal

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import CITY_CHOICES, Organization
from marketplace.core.models import TimeStampedModel
from marketplace.core.money import PriceField
from marketplace.core.pipeline import StatusPipeline


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
        STATE = "state", _("State-owned")
        PRIVATE = "private", _("Private cloud")

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
    # Delivered / reserved node-hours of its bookings that ended in the last 90 days (issue 20, like Vast.ai's
    # reliability score), kept by ``orders.reliability.clusters_reliability_refresh``; empty before any booking ended.
    reliability = models.DecimalField(max_digits=5, decimal_places=4, null=True, blank=True, editable=False)

    class Meta:
        ordering = ["data_center", "name"]
        constraints = [
            models.UniqueConstraint(fields=["data_center", "name"], name="cluster_unique_name_per_dc"),
            models.CheckConstraint(
                condition=models.Q(gpus_per_node__gte=1, gpus_per_node__lte=64), name="cluster_gpus_per_node_range"
            ),
            models.CheckConstraint(condition=models.Q(node_count__gte=1), name="cluster_node_count_positive"),
            models.CheckConstraint(
                condition=models.Q(reliability__isnull=True) | models.Q(reliability__gte=0, reliability__lte=1),
                name="cluster_reliability_range",
            ),
        ]

    def __str__(self):
        return f"{self.name} · {self.node_count}×{self.gpus_per_node} {self.accelerator}"

    @property
    def reliability_percent(self) -> Decimal | None:
        """``reliability`` in per cent, one place (99.2), for pages; None before any booking ended."""
        return None if self.reliability is None else (self.reliability * 100).quantize(Decimal("0.1"))


class ProvenanceDeclaration(TimeStampedModel):
    """Where an export-controlled cluster's chips came from; platform staff approve it before listings go active."""

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("provenance declaration status", "Pending review")
        APPROVED = "approved", pgettext_lazy("provenance declaration status", "Approved")
        REJECTED = "rejected", pgettext_lazy("provenance declaration status", "Rejected")

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


# Listing columns every search index carries (INCLUDE) besides its keys: what the filters read.
SEARCH_COLUMNS = ["min_hours", "cluster", "accelerator", "city", "operator", "domestic", "gpus_per_node", "node_count"]


class Listing(StatusPipeline, TimeStampedModel):
    """An ask: a cluster's capacity offered at a price per GPU-hour for a window of whole hours."""

    class Status(models.TextChoices):
        DRAFT = "draft", pgettext_lazy("listing status", "Draft")
        PENDING_REVIEW = "pending_review", pgettext_lazy("listing status", "Pending review")
        ACTIVE = "active", pgettext_lazy("listing status", "Active")
        REJECTED = "rejected", pgettext_lazy("listing status", "Rejected")
        PAUSED = "paused", pgettext_lazy("listing status", "Paused")
        CLOSED = "closed", pgettext_lazy("listing status", "Closed")

    # Every change of status goes through ``listings.services._transition`` (``marketplace.core.pipeline.advance``).
    TRANSITIONS = {
        Status.DRAFT: frozenset({Status.PENDING_REVIEW, Status.CLOSED}),
        Status.PENDING_REVIEW: frozenset({Status.ACTIVE, Status.REJECTED, Status.CLOSED}),
        Status.REJECTED: frozenset({Status.PENDING_REVIEW, Status.CLOSED}),
        Status.ACTIVE: frozenset({Status.PAUSED, Status.CLOSED}),
        Status.PAUSED: frozenset({Status.ACTIVE, Status.CLOSED}),
        Status.CLOSED: frozenset(),
    }

    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="listings")
    price_per_gpu_hour = PriceField()
    available_from = models.DateTimeField()
    available_until = models.DateTimeField()
    min_hours = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    review_note = models.TextField(blank=True)
    # The availability the provider promises (issue 20): incident node-hours beyond ``(100 - sla) %`` of a
    # booking's reserved node-hours are credited at settlement (``settlement.credit_services``).
    sla_percent = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("99.00"), help_text="promised availability, in per cent"
    )

    # Search columns: copies of the cluster's (and its data centre's and chip's) facts that search filters and
    # orders on, so a search reads one table and its indexes. A PostgreSQL trigger (migration 0004) fills them on
    # every insert and on updates of the listing's cluster or price, and refreshes them when a cluster, data
    # centre or accelerator changes; whatever Python writes here is overwritten. ``db_default`` makes Django
    # leave them out of INSERTs and read back what the trigger wrote (RETURNING).
    accelerator = models.ForeignKey(
        Accelerator, on_delete=models.PROTECT, related_name="+", editable=False, db_index=False, db_default=None
    )
    city = models.CharField(max_length=32, choices=CITY_CHOICES, editable=False, db_default=None)
    operator = models.CharField(max_length=8, choices=DataCenter.Operator.choices, editable=False, db_default=None)
    domestic = models.BooleanField(editable=False, db_default=None)
    gpus_per_node = models.PositiveSmallIntegerField(editable=False, db_default=None)
    node_count = models.PositiveIntegerField(editable=False, db_default=None)
    price_per_pflop_hour = models.DecimalField(
        max_digits=24,
        decimal_places=10,
        editable=False,
        db_default=None,
        help_text="price per GPU-hour / (BF16 TFLOPS / 1000); 10 places, so rounding it to fen equals rounding "
        "the exact quotient (a price has 4 places and TFLOPS 1)",
    )

    class Meta:
        ordering = ["price_per_gpu_hour", "id"]
        # Search (``selectors.listing_search``): every filter and ordering column is in each of these partial
        # indexes, so the count and the page are index-only scans of one of them, never a join: by (chip or city
        # and) window for the count and selective filters, in price or price-per-PFLOP order for a page of a broad
        # search. Measured with bench/search.py (100k listings): a two-chip count 13.6 → 1.5 ms with the chip index.
        indexes = [
            models.Index(
                fields=["available_from", "available_until"],
                include=["id", "price_per_gpu_hour", "price_per_pflop_hour", *SEARCH_COLUMNS],
                condition=models.Q(status="active"),
                name="listing_search_window_idx",
            ),
            # The filters people give most, leading: the count then reads their listings only (a tenth of them).
            models.Index(
                fields=["accelerator", "available_from", "available_until"],
                include=[
                    "id",
                    "price_per_gpu_hour",
                    "price_per_pflop_hour",
                    *(c for c in SEARCH_COLUMNS if c != "accelerator"),
                ],
                condition=models.Q(status="active"),
                name="listing_search_chip_idx",
            ),
            models.Index(
                fields=["city", "available_from", "available_until"],
                include=[
                    "id",
                    "price_per_gpu_hour",
                    "price_per_pflop_hour",
                    *(c for c in SEARCH_COLUMNS if c != "city"),
                ],
                condition=models.Q(status="active"),
                name="listing_search_city_idx",
            ),
            models.Index(
                fields=["price_per_gpu_hour", "id"],
                include=["available_from", "available_until", *SEARCH_COLUMNS],
                condition=models.Q(status="active"),
                name="listing_search_price_idx",
            ),
            models.Index(
                fields=["price_per_pflop_hour", "price_per_gpu_hour", "id"],
                include=["available_from", "available_until", *SEARCH_COLUMNS],
                condition=models.Q(status="active"),
                name="listing_search_pflop_idx",
            ),
            models.Index(fields=["cluster", "status"], name="listing_cluster_status_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(price_per_gpu_hour__gt=0), name="listing_price_positive"),
            models.CheckConstraint(
                condition=models.Q(available_until__gt=models.F("available_from")), name="listing_window_ordered"
            ),
            models.CheckConstraint(condition=models.Q(min_hours__gte=1), name="listing_min_hours_positive"),
            models.CheckConstraint(
                condition=models.Q(sla_percent__gte=90, sla_percent__lte=100), name="listing_sla_percent_range"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["draft", "pending_review", "active", "rejected", "paused", "closed"]),
                name="listing_status_valid",
            ),
        ]

    def __str__(self):
        return f"Listing {self.pk}: {self.cluster} @ {self.price_per_gpu_hour}/GPU-h"


# --- delivery: the provider agent on each node (issue 20; services in listings.agent_services) ---------------------


class AgentToken(TimeStampedModel):
    """A cluster's agent token: what ``gpux-agent`` sends as ``Authorization: Agent <token>``.

    Only the SHA-256 of the token is stored (the token is shown once, when created); ``prefix`` is its first
    characters, so a provider can tell tokens apart. A token is scoped to its cluster's nodes; revoking it
    (``revoked_at``) refuses it at once. ``login_user`` is the one local account the agents using it hand to
    buyers (their ``--login-user``): handovers name it and an agent configured otherwise refuses them.
    """

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="agent_tokens")
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    login_user = models.CharField(max_length=32, default="gpux")
    created_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["cluster", "-created_at", "-id"]
        indexes = [models.Index(fields=["cluster", "revoked_at"], name="agenttoken_cluster_idx")]
        constraints = [
            models.CheckConstraint(condition=~models.Q(login_user="root"), name="agenttoken_login_user_not_root"),
        ]

    def __str__(self):
        return f"{self.name} ({self.prefix}…) · cluster {self.cluster_id}"

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class NodeAgent(models.Model):
    """Which host runs a node, and its last heartbeat. One row per node, created by the first inventory a host
    sends: a hostname the cluster has not seen binds to its lowest-numbered node without a host
    (``listings.agent_services.node_bind``); the provider releases a binding to move a node to new hardware.

    ``last_sequence`` is the highest heartbeat sequence accepted (a heartbeat must exceed it: replays answer
    409); ``last_heartbeat_at`` is when the platform received it (never the agent's clock).
    """

    node = models.OneToOneField(Node, primary_key=True, on_delete=models.CASCADE, related_name="agent")
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="+")  # = node.cluster
    hostname = models.CharField(max_length=253)
    bound_at = models.DateTimeField()
    # The token this host last reported with: the agent API hands a token the access handovers of its host's node
    # (the handover list request names no host, so a token serving one host is that host).
    token = models.ForeignKey(AgentToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="nodes")
    last_sequence = models.BigIntegerField(default=0)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    healthy = models.BooleanField(null=True, help_text="the last heartbeat's verdict (null before the first)")
    health_detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["cluster", "node"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "hostname"], name="nodeagent_unique_hostname_per_cluster"),
            models.CheckConstraint(condition=models.Q(last_sequence__gte=0), name="nodeagent_sequence_non_negative"),
        ]
        indexes = [models.Index(fields=["last_heartbeat_at"], name="nodeagent_last_heartbeat_idx")]

    def __str__(self):
        return f"{self.hostname} → node {self.node_id}"


class NodeInventoryReport(models.Model):
    """The latest inventory a node's agent reported, and how it compares with what the provider declared.

    ``mismatches`` lists ``{"field", "declared", "reported"}`` (empty when the hardware matches): a cluster with a
    mismatching node is blocked from vouchers (``listings.agent_selectors.cluster_hardware_mismatched``).
    """

    node = models.OneToOneField(Node, primary_key=True, on_delete=models.CASCADE, related_name="inventory")
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="inventory_reports")
    reported_at = models.DateTimeField()
    vendor = models.CharField(max_length=16)
    gpu_model = models.CharField(max_length=120)
    gpu_count = models.PositiveSmallIntegerField()
    memory_mib = models.PositiveIntegerField(null=True, blank=True)
    driver = models.CharField(max_length=64, blank=True)
    serials = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    gpus = models.JSONField(default=list)
    agent_version = models.CharField(max_length=32, blank=True)
    mismatches = models.JSONField(default=list, blank=True)
    mismatched = models.BooleanField(default=False)

    class Meta:
        ordering = ["cluster", "node"]
        indexes = [
            models.Index(fields=["cluster"], condition=models.Q(mismatched=True), name="inventory_mismatched_idx"),
        ]

    def __str__(self):
        return f"node {self.node_id}: {self.gpu_count}× {self.gpu_model}"


class NodeOutage(models.Model):
    """A period a node was silent (no heartbeat for more than ``agent_services.SILENCE``) or unhealthy; open while
    ``ended_at`` is null. The compact heartbeat history: one row per outage, not per heartbeat. Incidents of the
    bookings that held the node then are derived from these rows (``orders.handovers.incidents_sync``)."""

    class Kind(models.TextChoices):
        SILENT = "silent", pgettext_lazy("node outage kind", "Heartbeats missing")
        UNHEALTHY = "unhealthy", pgettext_lazy("node outage kind", "Unhealthy")

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="outages")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["node", "started_at", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=["silent", "unhealthy"]), name="nodeoutage_kind"),
            models.CheckConstraint(
                condition=models.Q(ended_at__isnull=True) | models.Q(ended_at__gte=models.F("started_at")),
                name="nodeoutage_period_ordered",
            ),
            # At most one open outage of each kind per node.
            models.UniqueConstraint(
                fields=["node", "kind"], condition=models.Q(ended_at__isnull=True), name="nodeoutage_one_open"
            ),
        ]
        indexes = [models.Index(fields=["ended_at"], name="nodeoutage_ended_idx")]

    def __str__(self):
        return f"node {self.node_id} {self.kind} {self.started_at:%Y-%m-%d %H:%M}–{self.ended_at or '…'}"

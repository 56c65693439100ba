"""The demand side: bookings of whole nodes and the reservations that make double booking impossible."""

import datetime as dt

from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import ArrayField, DateTimeRangeField, RangeOperators
from django.contrib.postgres.indexes import GistIndex
from django.db import models
from django.utils.translation import pgettext_lazy

from accounts.models import Organization
from listings.models import Cluster, Listing, Node
from marketplace.core.models import TimeStampedModel
from marketplace.core.money import AmountField, PriceField
from marketplace.core.pipeline import StatusPipeline


class Booking(StatusPipeline, TimeStampedModel):
    class Status(models.TextChoices):
        HELD = "held", pgettext_lazy("booking status", "Held")
        CONFIRMED = "confirmed", pgettext_lazy("booking status", "Confirmed")
        ACTIVE = "active", pgettext_lazy("booking status", "Active")
        COMPLETED = "completed", pgettext_lazy("booking status", "Completed")
        SETTLED = "settled", pgettext_lazy("booking status", "Settled")
        CANCELLED = "cancelled", pgettext_lazy("booking status", "Cancelled")
        EXPIRED = "expired", pgettext_lazy("booking status", "Expired")

    # Every change of status goes through ``orders.services._transition`` (``marketplace.core.pipeline.advance``).
    TRANSITIONS = {
        Status.HELD: frozenset({Status.CONFIRMED, Status.CANCELLED, Status.EXPIRED}),
        Status.CONFIRMED: frozenset({Status.ACTIVE, Status.CANCELLED}),
        Status.ACTIVE: frozenset({Status.COMPLETED}),
        Status.COMPLETED: frozenset({Status.SETTLED}),
        Status.SETTLED: frozenset(),
        Status.CANCELLED: frozenset(),
        Status.EXPIRED: frozenset(),
    }

    buyer = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="bookings")
    listing = models.ForeignKey(Listing, on_delete=models.PROTECT, related_name="bookings")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    nodes = models.PositiveIntegerField()
    start = models.DateTimeField()
    end = models.DateTimeField()
    gpu_hours = models.PositiveIntegerField()
    price_per_gpu_hour = PriceField()
    subtotal = AmountField()
    voucher_amount = AmountField(default=0)
    cash_amount = AmountField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.HELD, db_index=True)
    hold_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(nodes__gte=1), name="booking_nodes_positive"),
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="booking_period_ordered"),
            models.CheckConstraint(
                condition=models.Q(subtotal__gte=0, voucher_amount__gte=0, cash_amount__gte=0),
                name="booking_amounts_non_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(subtotal=models.F("voucher_amount") + models.F("cash_amount")),
                name="booking_amounts_add_up",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    status__in=["held", "confirmed", "active", "completed", "settled", "cancelled", "expired"]
                ),
                name="booking_status_valid",
            ),
        ]

    def __str__(self):
        return f"Booking {self.pk} ({self.status})"

    @property
    def cancellable(self) -> bool:
        """The buyer may cancel it (full refund before the start)."""
        return self.can_become(self.Status.CANCELLED)

    @property
    def confirmable(self) -> bool:
        return self.can_become(self.Status.CONFIRMED)


class NodeReservation(models.Model):
    """One booked node for ``[start, end)``. The exclusion constraint refuses two active reservations of one node
    whose periods overlap; a cancelled or expired booking's reservations are deactivated, freeing the node."""

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="reservations")
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="reservations")
    period = DateTimeRangeField()
    active = models.BooleanField(default=True)
    # The node's cluster, copied by a PostgreSQL trigger (migration 0006) on insert and whenever a node changes
    # cluster; whatever Python writes here is overwritten. Listing search counts busy nodes per cluster in a window
    # from the period index alone (it includes node and cluster), without a lookup per busy node.
    cluster = models.ForeignKey(
        Cluster, on_delete=models.PROTECT, related_name="+", editable=False, db_index=False, db_default=None
    )

    class Meta:
        constraints = [
            ExclusionConstraint(
                name="reservation_no_overlap",
                expressions=[("node", RangeOperators.EQUAL), ("period", RangeOperators.OVERLAPS)],
                condition=models.Q(active=True),
            ),
        ]
        indexes = [
            models.Index(fields=["booking"], name="reservation_booking_idx"),
            # Listing search asks "which nodes of which clusters are reserved in this window" for many clusters at
            # once: answered by an index-only scan.
            GistIndex(
                fields=["period"],
                include=["node", "cluster"],
                condition=models.Q(active=True),
                name="reservation_active_period_gist",
            ),
        ]

    def __str__(self):
        return f"node {self.node_id} {self.period} ({'active' if self.active else 'released'})"


class BookingStatusChange(models.Model):
    """One transition of a booking's status (``from_status`` is empty for the creation). Written by
    ``orders.services`` in the same transaction as the change; the booking page shows them as its history."""

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=10, blank=True)
    to_status = models.CharField(max_length=10, choices=Booking.Status.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["booking", "id"]
        indexes = [models.Index(fields=["booking", "id"], name="booking_status_change_idx")]

    def __str__(self):
        return f"booking {self.booking_id}: {self.from_status or '—'} → {self.to_status}"


class Bid(StatusPipeline, TimeStampedModel):
    """A standing order: ``nodes`` whole nodes of one cluster of any of ``accelerators`` for ``duration_hours``
    contiguous hours inside ``[earliest_start, latest_end)``, at most ``max_price_per_gpu_hour``.

    ``held_amount`` is what placing it moved wallet → wallet hold: the maximum cash cost, computed for
    ``max_gpus_per_node`` GPUs per node (the largest cluster of the accepted accelerators with an active listing
    when the bid was placed; matching never uses a cluster with more). Matching releases it in full and books
    through ``booking_create`` (which holds the actual cash part), all in one transaction.
    """

    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("bid status", "Open")
        MATCHED = "matched", pgettext_lazy("bid status", "Matched")
        CANCELLED = "cancelled", pgettext_lazy("bid status", "Cancelled")
        EXPIRED = "expired", pgettext_lazy("bid status", "Expired")

    TRANSITIONS = {
        Status.OPEN: frozenset({Status.MATCHED, Status.CANCELLED, Status.EXPIRED}),
        Status.MATCHED: frozenset(),
        Status.CANCELLED: frozenset(),
        Status.EXPIRED: frozenset(),
    }

    buyer = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="bids")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    accelerators = models.ManyToManyField("listings.Accelerator", related_name="bids")
    nodes = models.PositiveIntegerField()
    duration_hours = models.PositiveIntegerField()
    earliest_start = models.DateTimeField()
    latest_end = models.DateTimeField()
    max_price_per_gpu_hour = PriceField()
    max_gpus_per_node = models.PositiveSmallIntegerField()
    vouchers = ArrayField(models.BigIntegerField(), default=list, blank=True)
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    booking = models.OneToOneField(Booking, null=True, blank=True, on_delete=models.PROTECT, related_name="bid")
    held_amount = AmountField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["expires_at"], condition=models.Q(status="open"), name="bid_open_expiry_idx")]
        constraints = [
            models.CheckConstraint(condition=models.Q(nodes__gte=1), name="bid_nodes_positive"),
            models.CheckConstraint(condition=models.Q(duration_hours__gte=1), name="bid_duration_positive"),
            models.CheckConstraint(condition=models.Q(max_gpus_per_node__gte=1), name="bid_gpus_per_node_positive"),
            models.CheckConstraint(
                condition=models.Q(
                    latest_end__gte=models.ExpressionWrapper(
                        models.F("earliest_start") + models.F("duration_hours") * dt.timedelta(hours=1),
                        output_field=models.DateTimeField(),
                    )
                ),
                name="bid_window_fits_duration",
            ),
            models.CheckConstraint(condition=models.Q(max_price_per_gpu_hour__gt=0), name="bid_price_positive"),
            models.CheckConstraint(condition=models.Q(held_amount__gte=0), name="bid_held_non_negative"),
            models.CheckConstraint(
                condition=models.Q(status__in=["open", "matched", "cancelled", "expired"]), name="bid_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(status="matched", booking__isnull=False)
                | (~models.Q(status="matched") & models.Q(booking__isnull=True)),
                name="bid_matched_has_booking",
            ),
        ]

    def __str__(self):
        return f"Bid {self.pk} ({self.status})"

    @property
    def cancellable(self) -> bool:
        return self.can_become(self.Status.CANCELLED)


class OpenOrderLimit(models.Model):
    """Per buyer organization: how many bookings it holds unconfirmed and how many bids it has open, and the most
    it may have at once (set from ``MAX_HELD_BOOKINGS`` / ``MAX_OPEN_BIDS`` when the row is created; staff may raise
    them per organization). The CHECKs keep the counts within the limits under any concurrency: counting one more
    is an UPDATE, which takes this row's lock and is refused by PostgreSQL past the limit (see ``orders.limits``)."""

    organization = models.OneToOneField(
        Organization, primary_key=True, on_delete=models.CASCADE, related_name="open_order_limit"
    )
    held_bookings = models.PositiveIntegerField(default=0)
    open_bids = models.PositiveIntegerField(default=0)
    max_held_bookings = models.PositiveIntegerField()
    max_open_bids = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(held_bookings__lte=models.F("max_held_bookings")), name="limit_held_bookings"
            ),
            models.CheckConstraint(
                condition=models.Q(open_bids__lte=models.F("max_open_bids")), name="limit_open_bids"
            ),
        ]

    def __str__(self):
        return f"{self.organization_id}: {self.held_bookings} held, {self.open_bids} bids open"


# --- delivery: access handovers and incidents (issue 20; services in orders.handovers) -----------------------------


class AccessHandover(TimeStampedModel):
    """One access change on one booked node, for the cluster's agent to apply: ``install`` the buyer's SSH keys
    (when the booking starts, and again when the buyer's keys change while it runs) or ``remove`` them (when it
    ends). ``pending`` and ``failed`` handovers are listed to the agent until it reports them done; an install the
    agent reported answers the buyer's connection instructions (``host``, ``port``, ``user``).
    """

    class Action(models.TextChoices):
        INSTALL = "install", pgettext_lazy("handover action", "Install keys")
        REMOVE = "remove", pgettext_lazy("handover action", "Remove keys")

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("handover status", "Pending")
        INSTALLED = "installed", pgettext_lazy("handover status", "Installed")
        REMOVED = "removed", pgettext_lazy("handover status", "Removed")
        FAILED = "failed", pgettext_lazy("handover status", "Failed")
        SUPERSEDED = "superseded", pgettext_lazy("handover status", "Superseded")

    OPEN = (Status.PENDING, Status.FAILED)

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="handovers")
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=8, choices=Action.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    login_user = models.CharField(max_length=32)
    ssh_keys = ArrayField(models.TextField(), default=list, blank=True)
    host = models.CharField(max_length=253, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    user = models.CharField(max_length=32, blank=True)
    detail = models.CharField(max_length=300, blank=True)
    reported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["booking", "node", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(action__in=["install", "remove"]), name="handover_action"),
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "installed", "removed", "failed", "superseded"]),
                name="handover_status",
            ),
            models.CheckConstraint(
                condition=models.Q(port__isnull=True) | models.Q(port__gte=1, port__lte=65535), name="handover_port"
            ),
            # At most one open handover of each action per booked node, and one removal ever.
            models.UniqueConstraint(
                fields=["booking", "node", "action"],
                condition=models.Q(status__in=["pending", "failed"]),
                name="handover_one_open",
            ),
            models.UniqueConstraint(
                fields=["booking", "node"], condition=models.Q(action="remove"), name="handover_one_removal"
            ),
        ]
        indexes = [
            models.Index(
                fields=["node"], condition=models.Q(status__in=["pending", "failed"]), name="handover_open_idx"
            )
        ]

    def __str__(self):
        return f"{self.action} booking {self.booking_id} node {self.node_id} ({self.status})"


class DeliveryIncident(TimeStampedModel):
    """A period a booked node did not deliver: its heartbeats were missing or unhealthy (derived from the node's
    ``listings.NodeOutage`` by ``orders.handovers.incidents_sync``), or the buyer reported it.

    ``open`` (still going on) and ``closed`` incidents reduce the booking's delivered node-hours; a buyer's
    ``reported`` incident counts once platform staff accept it (→ ``closed``), not when ``rejected``.
    ``node`` is empty for a buyer's report about every node of the booking.
    """

    class Source(models.TextChoices):
        SILENT = "silent", pgettext_lazy("incident source", "Heartbeats missing")
        UNHEALTHY = "unhealthy", pgettext_lazy("incident source", "Unhealthy hardware")
        BUYER = "buyer", pgettext_lazy("incident source", "Reported by the buyer")

    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("incident status", "Open")
        CLOSED = "closed", pgettext_lazy("incident status", "Closed")
        REPORTED = "reported", pgettext_lazy("incident status", "Reported, awaiting review")
        REJECTED = "rejected", pgettext_lazy("incident status", "Rejected")

    COUNTED = (Status.OPEN, Status.CLOSED)

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="incidents")
    node = models.ForeignKey(Node, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    outage = models.ForeignKey(
        "listings.NodeOutage", null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents"
    )
    source = models.CharField(max_length=10, choices=Source.choices)
    status = models.CharField(max_length=10, choices=Status.choices)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    description = models.TextField(blank=True)
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution_note = models.TextField(blank=True)

    class Meta:
        ordering = ["booking", "started_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(source__in=["silent", "unhealthy", "buyer"]), name="incident_src"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["open", "closed", "reported", "rejected"]), name="incident_status"
            ),
            models.CheckConstraint(
                condition=models.Q(ended_at__isnull=True) | models.Q(ended_at__gte=models.F("started_at")),
                name="incident_period_ordered",
            ),
            models.UniqueConstraint(
                fields=["booking", "outage"], condition=models.Q(outage__isnull=False), name="incident_one_per_outage"
            ),
        ]
        indexes = [models.Index(fields=["status"], condition=models.Q(status="open"), name="incident_open_idx")]

    def __str__(self):
        return f"incident {self.pk}: booking {self.booking_id} node {self.node_id} {self.source} ({self.status})"


# --- resale of booked time (issue 21; services in orders.resale_services) ------------------------------------------


class ResaleAsk(StatusPipeline, TimeStampedModel):
    """The buyer of a confirmed booking offers ``nodes`` of its booked nodes for ``[start, end)`` (inside the
    booking's window) at its own price per GPU-hour. Each purchase takes whole nodes of the ask for a window inside
    the ask's (``ResaleSale``); ``nodes_left`` counts the nodes not sold yet. ``open`` → ``sold`` (no node left) or
    ``withdrawn`` (by the seller, when the window starts, or when the booking closes)."""

    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("resale ask status", "Open")
        SOLD = "sold", pgettext_lazy("resale ask status", "Sold")
        WITHDRAWN = "withdrawn", pgettext_lazy("resale ask status", "Withdrawn")

    TRANSITIONS = {
        Status.OPEN: frozenset({Status.SOLD, Status.WITHDRAWN}),
        Status.SOLD: frozenset(),
        Status.WITHDRAWN: frozenset(),
    }

    booking = models.ForeignKey(Booking, on_delete=models.PROTECT, related_name="resale_asks")
    seller = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="resale_asks")
    # The booking's listing (its cluster): where listing search shows the ask.
    listing = models.ForeignKey(Listing, on_delete=models.PROTECT, related_name="resale_asks")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    nodes = models.PositiveIntegerField()
    nodes_left = models.PositiveIntegerField()
    start = models.DateTimeField()
    end = models.DateTimeField()
    price_per_gpu_hour = PriceField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    withdrawn_note = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["start"], condition=models.Q(status="open"), name="resale_ask_open_start_idx")]
        constraints = [
            models.CheckConstraint(condition=models.Q(nodes__gte=1), name="resale_ask_nodes_positive"),
            models.CheckConstraint(
                condition=models.Q(nodes_left__lte=models.F("nodes")), name="resale_ask_nodes_left_within"
            ),
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="resale_ask_period_ordered"),
            models.CheckConstraint(condition=models.Q(price_per_gpu_hour__gt=0), name="resale_ask_price_positive"),
            models.CheckConstraint(
                condition=models.Q(status__in=["open", "sold", "withdrawn"]), name="resale_ask_status_valid"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="open") | models.Q(nodes_left__gte=1), name="resale_ask_open_has_nodes"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="sold") | models.Q(nodes_left=0), name="resale_ask_sold_has_none"
            ),
        ]

    def __str__(self):
        return f"Resale ask {self.pk} ({self.status})"

    @property
    def withdrawable(self) -> bool:
        return self.can_become(self.Status.WITHDRAWN)


class ResaleSale(models.Model):
    """One purchase of a resale ask: ``nodes`` nodes for ``[start, end)`` moved from ``seller_booking`` to the
    buyer's new ``booking`` (confirmed, amounts zero: it was paid here, not through settlement). ``amount`` is
    what the buyer paid; ``voucher_return`` of it went back to the seller's vouchers (``voucher_returns``:
    ``{voucher id: amount}``; to the program budget once a voucher had ended), ``fee`` to the platform and
    ``seller_amount`` to the seller's wallet."""

    ask = models.ForeignKey(ResaleAsk, on_delete=models.PROTECT, related_name="sales")
    seller_booking = models.ForeignKey(Booking, on_delete=models.PROTECT, related_name="resales")
    booking = models.OneToOneField(Booking, on_delete=models.PROTECT, related_name="resale_purchase")
    buyer = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="resale_purchases")
    nodes = models.PositiveIntegerField()
    start = models.DateTimeField()
    end = models.DateTimeField()
    gpu_hours = models.PositiveIntegerField()
    price_per_gpu_hour = PriceField()
    amount = AmountField()
    voucher_return = AmountField(default=0)
    voucher_returns = models.JSONField(default=dict, blank=True)
    fee = AmountField(default=0)
    seller_amount = AmountField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(nodes__gte=1), name="resale_sale_nodes_positive"),
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="resale_sale_period_ordered"),
            models.CheckConstraint(
                condition=models.Q(amount__gte=0, voucher_return__gte=0, fee__gte=0, seller_amount__gte=0),
                name="resale_sale_amounts_non_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(amount=models.F("voucher_return") + models.F("fee") + models.F("seller_amount")),
                name="resale_sale_amounts_add_up",
            ),
        ]

    def __str__(self):
        return f"Resale sale {self.pk}: ask {self.ask_id} → booking {self.booking_id}"


class BookingDispute(StatusPipeline, TimeStampedModel):
    """The buyer's dispute of a booking's delivery (issue 20), raised within ``DISPUTE_WINDOW`` of its end
    (``orders.disputes``). While it is ``open`` the booking is not settled; platform staff resolve it by crediting
    an amount (the whole subtotal or part of it), which settlement pays back through the same credit path as SLA
    credits (``settlement.credit_services``), or by rejecting it with a reason. One dispute per booking."""

    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("dispute status", "Open")
        CREDITED = "credited", pgettext_lazy("dispute status", "Credited")
        REJECTED = "rejected", pgettext_lazy("dispute status", "Rejected")

    TRANSITIONS = {
        Status.OPEN: frozenset({Status.CREDITED, Status.REJECTED}),
        Status.CREDITED: frozenset(),
        Status.REJECTED: frozenset(),
    }

    booking = models.OneToOneField(Booking, on_delete=models.CASCADE, related_name="dispute")
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    credit_amount = AmountField(default=0)
    resolution_note = models.TextField(blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["open", "credited", "rejected"]), name="dispute_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(status="credited", credit_amount__gt=0)
                | (~models.Q(status="credited") & models.Q(credit_amount=0)),
                name="dispute_credit_iff_credited",
            ),
            models.CheckConstraint(
                condition=models.Q(status="open", resolved_at__isnull=True)
                | (~models.Q(status="open") & models.Q(resolved_at__isnull=False)),
                name="dispute_resolved_at_iff_resolved",
            ),
        ]

    def __str__(self):
        return f"dispute {self.pk} of booking {self.booking_id} ({self.status})"

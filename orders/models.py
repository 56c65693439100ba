"""The demand side: bookings of whole nodes and the reservations that make double booking impossible."""

from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateTimeRangeField, RangeOperators
from django.db import models

from accounts.models import Organization
from listings.models import Listing, Node
from marketplace.core.models import TimeStampedModel
from marketplace.core.money import AmountField, PriceField


class Booking(TimeStampedModel):
    class Status(models.TextChoices):
        HELD = "held", "Held"
        CONFIRMED = "confirmed", "Confirmed"
        ACTIVE = "active", "Active"
        COMPLETED = "completed", "Completed"
        SETTLED = "settled", "Settled"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"

    buyer = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="bookings")
    listing = models.ForeignKey(Listing, on_delete=models.PROTECT, related_name="bookings")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
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
                condition=models.Q(status__in=["held", "confirmed", "active", "completed", "settled", "cancelled",
                                               "expired"]),
                name="booking_status_valid",
            ),
        ]

    def __str__(self):
        return f"Booking {self.pk} ({self.status})"


class NodeReservation(models.Model):
    """One booked node for ``[start, end)``. The exclusion constraint refuses two active reservations of one node
    whose periods overlap; a cancelled or expired booking's reservations are deactivated, freeing the node."""

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="reservations")
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="reservations")
    period = DateTimeRangeField()
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            ExclusionConstraint(
                name="reservation_no_overlap",
                expressions=[("node", RangeOperators.EQUAL), ("period", RangeOperators.OVERLAPS)],
                condition=models.Q(active=True),
            ),
        ]
        indexes = [models.Index(fields=["booking"], name="reservation_booking_idx")]

    def __str__(self):
        return f"node {self.node_id} {self.period} ({'active' if self.active else 'released'})"


class BookingStatusChange(models.Model):
    """One transition of a booking's status (``from_status`` is empty for the creation). Written by
    ``orders.services`` in the same transaction as the change; the booking page shows them as its history."""

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=10, blank=True)
    to_status = models.CharField(max_length=10, choices=Booking.Status.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["booking", "id"]
        indexes = [models.Index(fields=["booking", "id"], name="booking_status_change_idx")]

    def __str__(self):
        return f"booking {self.booking_id}: {self.from_status or '—'} → {self.to_status}"

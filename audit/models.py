"""Audit events: who did what to which object, in the same transaction as the change."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class AuditEvent(models.Model):
    """One recorded action, append-only and hash-chained.

    The database does the chaining (``audit_event_chain`` trigger, migration 0002): under a transaction-scoped
    advisory lock it gives each new event the next ``seq``, the previous event's ``hash`` as ``prev_hash``, and
    ``hash = sha256(prev_hash | seq | fields)``. Another trigger refuses UPDATE, DELETE and TRUNCATE.
    ``manage.py verify_audit`` walks the chain. Because those columns are filled in by the database, the Python
    object returned by ``create()`` does not carry them; re-read the row when they are needed.
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+")
    organization_id = models.BigIntegerField(null=True, blank=True, db_index=True)  # no FK: audit imports no app
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    data = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    seq = models.BigIntegerField(null=True, blank=True, unique=True, editable=False)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object_idx")]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.object_type}:{self.object_id}"


class AnomalyFlag(models.Model):
    """A suspicious voucher spend, found by a rule in ``audit.flags`` and reviewed by an auditor.

    One flag per (kind, booking, voucher) (NULLs equal), so recomputing is idempotent: the rules insert with
    ``ON CONFLICT DO NOTHING``. Status goes open → dismissed | confirmed, once (``audit.flags.flag_review``).
    The foreign keys name other apps' models by string only: this module imports no other app.
    """

    class Kind(models.TextChoices):
        RELATED_PARTY = "related_party", _("Related-party booking")
        PRICE_ABOVE_MEDIAN = "price_above_median", _("Price far above the market median")
        SPEND_VELOCITY = "spend_velocity", _("Voucher drained right after issue")
        SPLIT_BOOKING = "split_booking", _("Split bookings dodging a per-booking cap")
        EXPORT_CONTROLLED = "export_controlled", _("Voucher spend on export-controlled hardware")

    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("anomaly flag status", "Open")
        DISMISSED = "dismissed", pgettext_lazy("anomaly flag status", "Dismissed")
        CONFIRMED = "confirmed", pgettext_lazy("anomaly flag status", "Confirmed")

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=24, choices=Kind.choices, db_index=True)
    booking = models.ForeignKey("orders.Booking", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    voucher = models.ForeignKey("vouchers.Voucher", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    program = models.ForeignKey("vouchers.VoucherProgram", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+")
    organization = models.ForeignKey("accounts.Organization", null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+", help_text="the buyer")
    details = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "booking", "voucher"], nulls_distinct=False,
                                    name="anomalyflag_unique_kind_booking_voucher"),
            models.CheckConstraint(
                condition=models.Q(kind__in=["related_party", "price_above_median", "spend_velocity", "split_booking",
                                             "export_controlled"]),
                name="anomalyflag_kind_valid",
            ),
            models.CheckConstraint(condition=models.Q(status__in=["open", "dismissed", "confirmed"]),
                                   name="anomalyflag_status_valid"),
            models.CheckConstraint(condition=models.Q(booking__isnull=False) | models.Q(voucher__isnull=False),
                                   name="anomalyflag_has_subject"),
            models.CheckConstraint(condition=models.Q(status="open") | models.Q(reviewed_at__isnull=False),
                                   name="anomalyflag_reviewed_has_time"),
        ]

    def __str__(self):
        subject = f"booking {self.booking_id}" if self.booking_id else f"voucher {self.voucher_id}"
        return f"{self.get_kind_display()} · {subject} ({self.status})"

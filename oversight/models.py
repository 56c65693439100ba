"""Anomaly flags: suspicious voucher spend found by the rules of ``oversight.flags``, reviewed by auditors."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class AnomalyFlag(models.Model):
    """A suspicious voucher spend, found by a rule in ``oversight.flags`` and reviewed by an auditor.

    One flag per (kind, booking, voucher) (NULLs equal), so recomputing is idempotent: the rules insert with
    ``ON CONFLICT DO NOTHING``; the audit-lag flag (no booking, no voucher) is one *open* at a time instead
    (``oversight.audit_lag``). Status goes open → dismissed | confirmed, once (``oversight.flags.flag_review``).
    The foreign keys name other apps' models by string only: this module imports no other app.
    """

    class Kind(models.TextChoices):
        RELATED_PARTY = "related_party", _("Related-party booking")
        PRICE_ABOVE_MEDIAN = "price_above_median", _("Price far above the market median")
        SPEND_VELOCITY = "spend_velocity", _("Voucher drained right after issue")
        SPLIT_BOOKING = "split_booking", _("Split bookings dodging a per-booking cap")
        EXPORT_CONTROLLED = "export_controlled", _("Voucher spend on export-controlled hardware")
        HARDWARE_MISMATCH = "hardware_mismatch", _("Reported hardware differs from the listing")
        RESALE_ABOVE_PRICE = "resale_above_price", _("Voucher-paid time resold above its price")
        AUDIT_LAG = "audit_lag", _("Audit events left unsequenced too long")

    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("anomaly flag status", "Open")
        DISMISSED = "dismissed", pgettext_lazy("anomaly flag status", "Dismissed")
        CONFIRMED = "confirmed", pgettext_lazy("anomaly flag status", "Confirmed")

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=24, choices=Kind.choices, db_index=True)
    booking = models.ForeignKey("orders.Booking", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    voucher = models.ForeignKey("vouchers.Voucher", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    program = models.ForeignKey(
        "vouchers.VoucherProgram", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    organization = models.ForeignKey(
        "accounts.Organization",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="the buyer",
    )
    details = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "booking", "voucher"],
                nulls_distinct=False,
                condition=~models.Q(kind="audit_lag"),
                name="anomalyflag_unique_kind_booking_voucher",
            ),
            # The audit-lag flag has no booking nor voucher: one open at a time (oversight.audit_lag).
            models.UniqueConstraint(
                fields=["kind"],
                condition=models.Q(kind="audit_lag", status="open"),
                name="anomalyflag_one_open_audit_lag",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    kind__in=[
                        "related_party",
                        "price_above_median",
                        "spend_velocity",
                        "split_booking",
                        "export_controlled",
                        "hardware_mismatch",
                        "resale_above_price",
                        "audit_lag",
                    ]
                ),
                name="anomalyflag_kind_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["open", "dismissed", "confirmed"]), name="anomalyflag_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(booking__isnull=False)
                | models.Q(voucher__isnull=False)
                | models.Q(kind="audit_lag"),  # about the log, not a booking or a voucher
                name="anomalyflag_has_subject",
            ),
            models.CheckConstraint(
                condition=models.Q(status="open") | models.Q(reviewed_at__isnull=False),
                name="anomalyflag_reviewed_has_time",
            ),
        ]

    def __str__(self):
        if self.booking_id:
            subject = f"booking {self.booking_id}"
        else:
            subject = f"voucher {self.voucher_id}" if self.voucher_id else "audit log"
        return f"{self.get_kind_display()} · {subject} ({self.status})"

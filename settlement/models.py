"""Settlement records: what each settled booking paid whom, the city's debts, and provider payouts.

The money itself lives in the ledger (``ledger.JournalTransaction`` with reference ``booking:{id}``); these rows
are the business view of it and carry the uniqueness that makes settlement exactly-once per booking.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Organization
from marketplace.core.models import TimeStampedModel
from marketplace.core.money import AmountField


class Payout(TimeStampedModel):
    """One batch transfer of a provider's payable to its bank account, covering the settlements it lists."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PAID = "paid", "Paid"

    provider = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="payouts")
    amount = AmountField()
    period_until = models.DateTimeField(help_text="covers bookings settled before this time")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING, db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    paid_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payout_amount_positive"),
            models.CheckConstraint(condition=Q(status__in=["pending", "paid"]), name="payout_status_valid"),
        ]

    def __str__(self):
        return f"Payout {self.pk}: {self.amount} ({self.status})"


class BookingSettlement(models.Model):
    """One per settled booking (unique): the split of its subtotal, and the payout that paid the provider."""

    booking = models.OneToOneField("orders.Booking", on_delete=models.PROTECT, related_name="settlement")
    provider = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="settlements")
    subtotal = AmountField()
    cash_amount = AmountField()
    voucher_amount = AmountField()
    fee = AmountField()
    provider_amount = AmountField()
    payout = models.ForeignKey(Payout, null=True, blank=True, on_delete=models.PROTECT, related_name="settlements")
    settled_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-settled_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(subtotal=models.F("cash_amount") + models.F("voucher_amount")),
                                   name="settlement_amounts_add_up"),
            models.CheckConstraint(condition=Q(subtotal=models.F("fee") + models.F("provider_amount")),
                                   name="settlement_split_adds_up"),
            models.CheckConstraint(condition=Q(fee__gte=0, provider_amount__gte=0), name="settlement_non_negative"),
        ]
        indexes = [models.Index(fields=["provider", "payout"], name="settlement_provider_payout_idx")]

    def __str__(self):
        return f"Settlement of booking {self.booking_id}"


class ReimbursementClaim(TimeStampedModel):
    """What a voucher program (a city) owes for the voucher part of one settled booking."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        PAID = "paid", "Paid"

    program = models.ForeignKey("vouchers.VoucherProgram", on_delete=models.PROTECT,
                                related_name="reimbursement_claims")
    booking = models.ForeignKey("orders.Booking", on_delete=models.PROTECT, related_name="reimbursement_claims")
    amount = AmountField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN, db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    paid_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["program", "booking"], name="claim_unique_program_booking"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="claim_amount_positive"),
            models.CheckConstraint(condition=Q(status__in=["open", "paid"]), name="claim_status_valid"),
        ]

    def __str__(self):
        return f"Claim {self.pk}: {self.amount} ({self.status})"

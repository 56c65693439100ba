"""Settlement records: what each settled booking paid whom, the city's debts, and provider payouts.

The money itself lives in the ledger (``ledger.JournalTransaction`` with reference ``booking:{id}``); these rows
are the business view of it and carry the uniqueness that makes settlement exactly-once per booking.
"""

from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateTimeRangeField, RangeOperators
from django.db import models
from django.db.models import F, Func, Q
from django.utils.translation import pgettext_lazy

from accounts.models import Organization
from marketplace.core.models import TimeStampedModel
from marketplace.core.money import AmountField
from marketplace.core.pipeline import StatusPipeline


class Payout(StatusPipeline, TimeStampedModel):
    """One batch transfer of a provider's payable to its bank account, covering the settlements it lists."""

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("payout status", "Pending")
        PAID = "paid", pgettext_lazy("payout status", "Paid")

    TRANSITIONS = {Status.PENDING: frozenset({Status.PAID}), Status.PAID: frozenset()}

    provider = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="payouts")
    amount = AmountField()
    period_until = models.DateTimeField(help_text="covers bookings settled before this time")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING, db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    paid_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payout_amount_positive"),
            models.CheckConstraint(condition=Q(status__in=["pending", "paid"]), name="payout_status_valid"),
        ]

    def __str__(self):
        return f"Payout {self.pk}: {self.amount} ({self.status})"


class BookingSettlement(models.Model):
    """One per settled booking (unique): the split of its subtotal, and the payout that paid the provider. With a
    service credit (``ServiceCredit``) the amounts are what was settled after it: the booking's subtotal, cash and
    voucher parts less the credit's."""

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
            models.CheckConstraint(
                condition=Q(subtotal=models.F("cash_amount") + models.F("voucher_amount")),
                name="settlement_amounts_add_up",
            ),
            models.CheckConstraint(
                condition=Q(subtotal=models.F("fee") + models.F("provider_amount")), name="settlement_split_adds_up"
            ),
            models.CheckConstraint(condition=Q(fee__gte=0, provider_amount__gte=0), name="settlement_non_negative"),
        ]
        indexes = [models.Index(fields=["provider", "payout"], name="settlement_provider_payout_idx")]

    def __str__(self):
        return f"Settlement of booking {self.booking_id}"


class TstzRange(Func):
    """``tstzrange(start, end)``: the half-open period ``[start, end)`` of two columns (for the exclusion)."""

    function = "tstzrange"
    output_field = DateTimeRangeField()


class ReimbursementStatement(StatusPipeline, TimeStampedModel):
    """What a voucher program (a city) is asked to pay for one period: the open claims it lists, in one sum.

    Issued by ``payout_services.statements_issue`` and paid as a whole by ``payout_services.statement_mark_paid``
    (one ledger posting ``statement:{id}:paid``); a claim listed here is never paid on its own. A program's
    statements never overlap in time (exclusion constraint), so there is one statement per program and period.
    """

    class Status(models.TextChoices):
        ISSUED = "issued", pgettext_lazy("reimbursement statement status", "Issued")
        PAID = "paid", pgettext_lazy("reimbursement statement status", "Paid")

    TRANSITIONS = {Status.ISSUED: frozenset({Status.PAID}), Status.PAID: frozenset()}

    program = models.ForeignKey("vouchers.VoucherProgram", on_delete=models.PROTECT, related_name="statements")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField(help_text="lists the program's open claims created before this time")
    total = AmountField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ISSUED, db_index=True)
    issued_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    paid_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-period_end", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(total__gte=0), name="statement_total_non_negative"),
            models.CheckConstraint(condition=Q(period_end__gt=F("period_start")), name="statement_period_valid"),
            models.CheckConstraint(condition=Q(status__in=["issued", "paid"]), name="statement_status_valid"),
            models.CheckConstraint(
                condition=Q(status="issued", paid_at__isnull=True) | Q(status="paid", paid_at__isnull=False),
                name="statement_paid_at_iff_paid",
            ),
            ExclusionConstraint(
                name="statement_no_overlap",
                expressions=[
                    ("program", RangeOperators.EQUAL),
                    (TstzRange("period_start", "period_end"), RangeOperators.OVERLAPS),
                ],
            ),
        ]

    def __str__(self):
        return f"Statement {self.pk}: {self.total} ({self.status})"


class ReimbursementClaim(StatusPipeline, TimeStampedModel):
    """What a voucher program (a city) owes for the voucher part of one settled booking."""

    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("reimbursement claim status", "Open")
        PAID = "paid", pgettext_lazy("reimbursement claim status", "Paid")

    TRANSITIONS = {Status.OPEN: frozenset({Status.PAID}), Status.PAID: frozenset()}

    program = models.ForeignKey(
        "vouchers.VoucherProgram", on_delete=models.PROTECT, related_name="reimbursement_claims"
    )
    booking = models.ForeignKey("orders.Booking", on_delete=models.PROTECT, related_name="reimbursement_claims")
    amount = AmountField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN, db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    paid_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Set once, when a statement lists the claim; from then on only paying the statement pays it.
    statement = models.ForeignKey(
        ReimbursementStatement, null=True, blank=True, on_delete=models.PROTECT, related_name="claims"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["program", "booking"], name="claim_unique_program_booking"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="claim_amount_positive"),
            models.CheckConstraint(condition=Q(status__in=["open", "paid"]), name="claim_status_valid"),
        ]

    def __str__(self):
        return f"Claim {self.pk}: {self.amount} ({self.status})"


class ServiceCredit(models.Model):
    """What a settled booking credited back to its buyer (issue 20): the SLA credit for incident node-hours beyond
    the listing's allowance plus a credit staff granted on a dispute, capped at the subtotal. One per booking
    (unique), written by ``settlement.services`` in the settlement's own transaction; the money moved with the
    ledger posting ``booking:{id}:service_credit`` (kind ``service_credit``). See ``settlement.credit_services``."""

    booking = models.OneToOneField("orders.Booking", on_delete=models.PROTECT, related_name="service_credit")
    sla_percent = models.DecimalField(max_digits=5, decimal_places=2)
    reserved_node_hours = models.DecimalField(max_digits=12, decimal_places=2)
    incident_node_hours = models.DecimalField(max_digits=12, decimal_places=2)
    credited_node_hours = models.DecimalField(max_digits=12, decimal_places=2)
    sla_amount = AmountField()
    dispute_amount = AmountField(default=0)
    amount = AmountField()
    cash_amount = AmountField()
    voucher_amount = AmountField()
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="service_credit_positive"),
            models.CheckConstraint(
                condition=Q(amount=F("cash_amount") + F("voucher_amount")), name="service_credit_split_adds_up"
            ),
            models.CheckConstraint(
                condition=Q(cash_amount__gte=0, voucher_amount__gte=0, sla_amount__gte=0, dispute_amount__gte=0),
                name="service_credit_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(amount__lte=F("sla_amount") + F("dispute_amount")), name="service_credit_capped"
            ),
        ]

    def __str__(self):
        return f"Service credit {self.amount} of booking {self.booking_id}"

"""City compute vouchers: programs (policy rules), applications, vouchers and their redemptions.

Money never lives on these rows: a program's budget, a voucher's balance and its held parts are ledger accounts
(``program_budget`` owned by the program id, ``voucher`` / ``voucher_hold`` owned by the voucher id). The rows
record who, what and why; ``face_value`` and ``Redemption.amount`` are the amounts that were posted.
"""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import F, Q
from django.utils.translation import pgettext_lazy

from accounts.models import CITY_CHOICES, ModelFiling, Organization
from marketplace.core.models import TimeStampedModel
from marketplace.core.money import AmountField
from marketplace.core.pipeline import StatusPipeline
from vouchers.rules import LIMIT_EXPLANATIONS


def RatioField(**kwargs) -> models.DecimalField:  # noqa: N802 - reads like a field class at call sites
    """A share in [0, 1] with 4 places (0.3000 = 30 %); the models add the range CHECK."""
    return models.DecimalField(max_digits=5, decimal_places=4, **kwargs)


class Level(models.TextChoices):
    """Which government runs a program; stacking rules between programs are written in levels."""

    NATIONAL = "national", pgettext_lazy("program level", "National")
    PROVINCIAL = "provincial", pgettext_lazy("program level", "Provincial")
    CITY = "city", pgettext_lazy("program level", "City")
    DISTRICT = "district", pgettext_lazy("program level", "District")


def all_levels() -> list[str]:
    return list(Level.values)


class VoucherProgram(StatusPipeline, TimeStampedModel):
    """A city's voucher policy and budget. ``budget_total`` is what was funded (program_funding → program_budget)."""

    class Status(models.TextChoices):
        DRAFT = "draft", pgettext_lazy("voucher program status", "Draft")
        ACTIVE = "active", pgettext_lazy("voucher program status", "Active")
        CLOSED = "closed", pgettext_lazy("voucher program status", "Closed")

    TRANSITIONS = {
        Status.DRAFT: frozenset({Status.ACTIVE, Status.CLOSED}),
        Status.ACTIVE: frozenset({Status.CLOSED}),
        Status.CLOSED: frozenset(),
    }

    issuer = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="voucher_programs",
        limit_choices_to={"kind": Organization.Kind.ISSUER},
    )
    name = models.CharField(max_length=200)
    city = models.CharField(max_length=32, choices=CITY_CHOICES)
    description = models.TextField(blank=True)
    budget_total = AmountField(default=0)
    face_value_min = AmountField()
    face_value_max = AmountField()
    validity_days = models.PositiveIntegerField(default=365)
    applications_open_from = models.DateTimeField()
    applications_open_until = models.DateTimeField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT, db_index=True)

    # --- rules (see vouchers.rules) ---
    domestic_ratio = RatioField(default=0)
    other_ratio = RatioField(default=0)
    sme_bonus_ratio = RatioField(default=0)
    # Hangzhou: "domestic chips OR a registered model → the domestic ratio".
    model_filing_earns_domestic_ratio = models.BooleanField(default=False)
    annual_cap_per_org = AmountField(null=True, blank=True, help_text="empty = no annual cap")
    per_booking_cap = AmountField(null=True, blank=True, help_text="empty = no per-booking cap")
    eligible_providers = models.ManyToManyField(
        Organization,
        blank=True,
        related_name="+",
        limit_choices_to={"kind": Organization.Kind.PROVIDER},
        help_text="empty = any provider",
    )
    city_data_centers_only = models.BooleanField(default=False)
    eligible_accelerators = models.ManyToManyField(
        "listings.Accelerator", blank=True, related_name="+", help_text="empty = every accelerator"
    )
    requires_model_filing = models.BooleanField(default=False)
    ban_related_party = models.BooleanField(default=True)
    max_stacked_share = RatioField(default=1, help_text="the most all vouchers together may pay of one booking")
    require_reviewed_listing = models.BooleanField(default=True)
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.CITY)
    stack_levels = ArrayField(
        models.CharField(max_length=10, choices=Level.choices),
        default=all_levels,
        blank=True,
        help_text="levels of other programs whose vouchers may pay in the same booking",
    )
    stack_excluded_programs = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="+", help_text="programs never combined with this one"
    )
    eligible_buyer_cities = ArrayField(
        models.CharField(max_length=32, choices=CITY_CHOICES),
        default=list,
        blank=True,
        help_text="registered cities of eligible buyers; empty = any",
    )
    subsidy_period_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="days a buyer is subsidised from its first subsidised booking; empty = none"
    )
    sme_contract_limit = AmountField(
        null=True, blank=True, help_text="SMEs booking at most this much get the SME contract ratio"
    )
    sme_contract_ratio = RatioField(default=0)
    # Steer vouchers to idle capacity: bookings on a cluster used below this share of its listed node-hours over
    # the last 7 days get ``idle_extra_ratio`` on top of the coverage ratio. Both empty = no such rule.
    idle_threshold_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="clusters below this utilisation (%) over the last 7 days get the extra ratio; empty = none",
    )
    idle_extra_ratio = RatioField(null=True, blank=True, help_text="extra coverage ratio on such clusters")

    class Meta:
        ordering = ["city", "name"]
        constraints = [
            models.UniqueConstraint(fields=["issuer", "name"], name="voucherprogram_unique_name_per_issuer"),
            models.CheckConstraint(
                condition=Q(
                    domestic_ratio__gte=0,
                    domestic_ratio__lte=1,
                    other_ratio__gte=0,
                    other_ratio__lte=1,
                    sme_bonus_ratio__gte=0,
                    sme_bonus_ratio__lte=1,
                    max_stacked_share__gte=0,
                    max_stacked_share__lte=1,
                ),
                name="voucherprogram_ratios_in_unit_range",
            ),
            models.CheckConstraint(
                condition=Q(face_value_min__gt=0, face_value_min__lte=F("face_value_max")),
                name="voucherprogram_face_value_range",
            ),
            models.CheckConstraint(condition=Q(budget_total__gte=0), name="voucherprogram_budget_non_negative"),
            models.CheckConstraint(
                condition=(Q(annual_cap_per_org__isnull=True) | Q(annual_cap_per_org__gte=0))
                & (Q(per_booking_cap__isnull=True) | Q(per_booking_cap__gte=0)),
                name="voucherprogram_caps_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(applications_open_until__gt=F("applications_open_from")),
                name="voucherprogram_window_ordered",
            ),
            models.CheckConstraint(condition=Q(validity_days__gte=1), name="voucherprogram_validity_positive"),
            models.CheckConstraint(
                condition=Q(level__in=["national", "provincial", "city", "district"]), name="voucherprogram_level_valid"
            ),
            models.CheckConstraint(
                condition=Q(sme_contract_ratio__gte=0, sme_contract_ratio__lte=1)
                & (Q(sme_contract_limit__isnull=True) | Q(sme_contract_limit__gte=0))
                & (Q(subsidy_period_days__isnull=True) | Q(subsidy_period_days__gte=1)),
                name="voucherprogram_tiers_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["draft", "active", "closed"]), name="voucherprogram_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(idle_threshold_percent__isnull=True, idle_extra_ratio__isnull=True)
                | Q(
                    idle_threshold_percent__isnull=False,
                    idle_extra_ratio__isnull=False,
                    idle_threshold_percent__gte=0,
                    idle_threshold_percent__lte=100,
                    idle_extra_ratio__gte=0,
                    idle_extra_ratio__lte=1,
                ),
                name="voucherprogram_idle_rule_valid",
            ),
        ]

    def __str__(self):
        return self.name


class VoucherApplication(StatusPipeline, TimeStampedModel):
    class Status(models.TextChoices):
        SUBMITTED = "submitted", pgettext_lazy("voucher application status", "Submitted")
        APPROVED = "approved", pgettext_lazy("voucher application status", "Approved")
        REJECTED = "rejected", pgettext_lazy("voucher application status", "Rejected")

    TRANSITIONS = {
        Status.SUBMITTED: frozenset({Status.APPROVED, Status.REJECTED}),
        Status.APPROVED: frozenset(),
        Status.REJECTED: frozenset(),
    }

    program = models.ForeignKey(VoucherProgram, on_delete=models.PROTECT, related_name="applications")
    applicant = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="voucher_applications")
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_amount = AmountField()
    purpose = models.TextField()
    model_filing = models.ForeignKey(ModelFiling, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SUBMITTED, db_index=True)
    approved_face_value = AmountField(null=True, blank=True)
    reject_reason = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(requested_amount__gt=0), name="voucherapplication_amount_positive"),
            models.CheckConstraint(
                condition=Q(status__in=["submitted", "approved", "rejected"]), name="voucherapplication_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status="approved")
                | Q(approved_face_value__gt=0, approved_face_value__lte=F("requested_amount")),
                name="voucherapplication_approved_face_value",
            ),
        ]

    def __str__(self):
        return f"Application {self.pk} ({self.status})"


class Voucher(TimeStampedModel):
    class Status(models.TextChoices):
        ACTIVE = "active", pgettext_lazy("voucher status", "Active")
        EXPIRED = "expired", pgettext_lazy("voucher status", "Expired")
        REVOKED = "revoked", pgettext_lazy("voucher status", "Revoked")

    program = models.ForeignKey(VoucherProgram, on_delete=models.PROTECT, related_name="vouchers")
    holder = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="vouchers")
    application = models.OneToOneField(
        VoucherApplication, null=True, blank=True, on_delete=models.PROTECT, related_name="voucher"
    )
    face_value = AmountField()
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE, db_index=True)

    class Meta:
        ordering = ["expires_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(face_value__gt=0), name="voucher_face_value_positive"),
            models.CheckConstraint(condition=Q(expires_at__gt=F("issued_at")), name="voucher_expiry_after_issue"),
            models.CheckConstraint(
                condition=Q(status__in=["active", "expired", "revoked"]), name="voucher_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["holder", "program"], name="voucher_holder_program_idx")]

    def __str__(self):
        return f"Voucher {self.pk} · {self.face_value} ({self.program})"


class Redemption(TimeStampedModel):
    """A voucher's part of one booking: held at booking, captured at settlement, released on cancel/expiry."""

    class Status(models.TextChoices):
        HELD = "held", pgettext_lazy("redemption status", "Held")
        CAPTURED = "captured", pgettext_lazy("redemption status", "Captured")
        RELEASED = "released", pgettext_lazy("redemption status", "Released")

    voucher = models.ForeignKey(Voucher, on_delete=models.PROTECT, related_name="redemptions")
    booking = models.ForeignKey("orders.Booking", on_delete=models.PROTECT, related_name="redemptions")
    amount = AmountField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.HELD, db_index=True)
    bound_by = models.CharField(max_length=32, help_text="the rule that bound this part")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["voucher", "booking"], name="redemption_unique_voucher_booking"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="redemption_amount_positive"),
            models.CheckConstraint(
                condition=Q(status__in=["held", "captured", "released"]), name="redemption_status_valid"
            ),
        ]

    @property
    def bound_by_text(self) -> str:
        """The limit that bound this part, in plain words."""
        return LIMIT_EXPLANATIONS.get(self.bound_by, self.bound_by)

    def __str__(self):
        return f"Redemption {self.pk}: {self.amount} of voucher {self.voucher_id} ({self.status})"

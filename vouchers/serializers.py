"""Voucher API shapes. Input serializers validate types only; the services enforce the business rules."""

from decimal import Decimal

from rest_framework import serializers

from accounts.models import CITY_CHOICES, ModelFiling, Organization
from listings.models import Accelerator
from listings.serializers import AwareDateTimeField
from marketplace.core.fields import BoundedManyRelatedField, StrictPrimaryKeyRelatedField
from marketplace.core.money import AMOUNT_DIGITS, AMOUNT_PLACES
from vouchers import selectors
from vouchers.models import Level, Redemption, Voucher, VoucherApplication, VoucherProgram
from vouchers.services import PROGRAM_FIELDS

MAX_DAYS = 3660  # ten years: longer periods are typing mistakes
# Longest list of providers, accelerators or programs a program names: each item is looked up, so a list of
# 10,001 took seconds; the lists are refused above this before any lookup (marketplace.core.fields).
MAX_LIST_ITEMS = 200


def amount_field(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES, **kwargs)


def ratio_field(help_text: str, **kwargs) -> serializers.DecimalField:
    """A share of a booking's price in [0, 1] with 4 places (0.3 = 30 %)."""
    return serializers.DecimalField(
        max_digits=5, decimal_places=4, min_value=Decimal(0), max_value=Decimal(1), help_text=help_text, **kwargs
    )


def cap_field(help_text: str) -> serializers.DecimalField:
    return amount_field(required=False, allow_null=True, min_value=Decimal(0), help_text=help_text)


class VoucherProgramSerializer(serializers.ModelSerializer):
    """A program and its rules. ``stack_excluded_programs`` may name only programs the caller can see (the request
    in the context decides; without one, none)."""

    issuer = serializers.CharField(source="issuer.name", read_only=True)
    eligible_providers = BoundedManyRelatedField(
        child_relation=StrictPrimaryKeyRelatedField(
            queryset=Organization.objects.filter(kind=Organization.Kind.PROVIDER)
        ),
        max_length=MAX_LIST_ITEMS,
        required=False,
        help_text="Ids of the providers whose listings the vouchers pay for. Empty: any provider.",
    )
    eligible_accelerators = BoundedManyRelatedField(
        child_relation=serializers.SlugRelatedField(slug_field="slug", queryset=Accelerator.objects.all()),
        max_length=MAX_LIST_ITEMS,
        required=False,
        help_text="Slugs of the accelerators the vouchers pay for. Empty: every accelerator.",
    )
    budget = amount_field(
        write_only=True,
        required=False,
        min_value=Decimal(0),
        help_text="Money moved into the program's budget when it is created (CNY).",
    )
    applications_open_from = AwareDateTimeField(help_text="When applications open (with a UTC offset).")
    applications_open_until = AwareDateTimeField(help_text="When applications close (with a UTC offset).")
    validity_days = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_DAYS, help_text="How many days an issued voucher can be spent."
    )
    domestic_ratio = ratio_field("Share of a booking paid on domestic accelerators: 0.3 pays 30 %.", required=False)
    other_ratio = ratio_field("Share of a booking paid on other accelerators: 0.2 pays 20 %.", required=False)
    sme_bonus_ratio = ratio_field("Extra share for startups and SMEs, added to the ratio above.", required=False)
    max_stacked_share = ratio_field(
        "The most all vouchers together may pay of one booking when this program pays a part (combined cap): "
        "0.6 means vouchers pay at most 60 %, the buyer at least 40 %.",
        required=False,
    )
    annual_cap_per_org = cap_field("The most the program pays one organization in a year (CNY). Null: no cap.")
    per_booking_cap = cap_field("The most the program pays for one booking (CNY). Null: no cap.")
    level = serializers.ChoiceField(
        choices=Level.choices,
        required=False,
        help_text="Which government runs the program: national, provincial, city or district.",
    )
    stack_levels = serializers.ListField(
        child=serializers.ChoiceField(choices=Level.choices),
        required=False,
        allow_empty=True,
        max_length=4,
        help_text="Levels of other programs whose vouchers may pay in the same booking as this one. Empty: never "
        "combined with another program. Both programs must allow each other's level.",
    )
    stack_excluded_programs = BoundedManyRelatedField(
        child_relation=StrictPrimaryKeyRelatedField(queryset=VoucherProgram.objects.none()),
        max_length=MAX_LIST_ITEMS,
        required=False,
        help_text="Ids of programs whose vouchers are never combined with this one in a booking, whatever their "
        "level. Only programs you can see.",
    )
    eligible_buyer_cities = serializers.ListField(
        child=serializers.ChoiceField(choices=CITY_CHOICES),
        required=False,
        allow_empty=True,
        max_length=len(CITY_CHOICES),
        help_text="Cities where a buyer must be registered to use the vouchers. Empty: any city.",
    )
    subsidy_period_days = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=MAX_DAYS,
        help_text="How many days a buyer is subsidised, counted from its first booking paid by this program "
        "(365: at most one year). Null: no limit.",
    )
    sme_contract_limit = cap_field(
        "SMEs whose booking costs at most this much (CNY) get the SME contract share "
        "instead of the usual one. Null: no contract-size tier."
    )
    sme_contract_ratio = ratio_field(
        "Share paid for SMEs whose booking is within the contract limit: 0.5 pays 50 %.", required=False
    )
    idle_threshold_percent = serializers.DecimalField(
        max_digits=5,
        decimal_places=2,
        min_value=Decimal(0),
        max_value=Decimal(100),
        required=False,
        allow_null=True,
        help_text="Idle capacity: bookings on a cluster whose utilisation over the last 7 days (reserved share of "
        "its listed node-hours) is below this percentage get the extra share below. Null: no such rule.",
    )
    idle_extra_ratio = ratio_field(
        "Extra share paid on such under-used clusters, added to the share above: 0.1 pays 10 % more. Null: none.",
        required=False,
        allow_null=True,
    )

    class Meta:
        model = VoucherProgram
        fields = [
            "id",
            "issuer",
            "budget_total",
            "budget",
            *PROGRAM_FIELDS,
            "eligible_providers",
            "eligible_accelerators",
            "stack_excluded_programs",
            "created_at",
        ]
        read_only_fields = ["id", "issuer", "budget_total", "created_at"]
        extra_kwargs = {"city": {"required": False}}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None and request.user.is_authenticated:
            self.fields["stack_excluded_programs"].child_relation.queryset = selectors.programs_visible(request.user)

    def validate_stack_levels(self, value: list[str]) -> list[str]:
        return sorted(set(value), key=Level.values.index)

    def validate_eligible_buyer_cities(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class VoucherApplicationCreateSerializer(serializers.Serializer):
    requested_amount = amount_field(min_value=0)
    purpose = serializers.CharField(max_length=2000)
    model_filing = StrictPrimaryKeyRelatedField(queryset=ModelFiling.objects.all(), required=False, allow_null=True)


class VoucherApplicationSerializer(serializers.ModelSerializer):
    program_name = serializers.CharField(source="program.name", read_only=True)
    applicant_name = serializers.CharField(source="applicant.name", read_only=True)
    voucher = serializers.SerializerMethodField()

    class Meta:
        model = VoucherApplication
        fields = [
            "id",
            "program",
            "program_name",
            "applicant",
            "applicant_name",
            "requested_amount",
            "purpose",
            "model_filing",
            "status",
            "approved_face_value",
            "reject_reason",
            "decided_at",
            "created_at",
            "voucher",
        ]
        read_only_fields = fields

    def get_voucher(self, obj) -> int | None:
        voucher = getattr(obj, "voucher", None)
        return voucher.pk if voucher else None


class ApproveSerializer(serializers.Serializer):
    face_value = amount_field(min_value=0)


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class RedemptionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Redemption
        fields = ["id", "booking", "amount", "status", "bound_by", "created_at", "updated_at"]
        read_only_fields = fields


class VoucherSerializer(serializers.ModelSerializer):
    program_name = serializers.CharField(source="program.name", read_only=True)
    holder_name = serializers.CharField(source="holder.name", read_only=True)
    balance = serializers.SerializerMethodField()
    held = serializers.SerializerMethodField()
    spent = serializers.SerializerMethodField()
    # A plain string in the schema: an enum here would collide with the booking "status" enum in drf-spectacular.
    status = serializers.CharField(read_only=True, help_text="active | expired | revoked")

    class Meta:
        model = Voucher
        fields = [
            "id",
            "program",
            "program_name",
            "holder",
            "holder_name",
            "face_value",
            "balance",
            "held",
            "spent",
            "issued_at",
            "expires_at",
            "status",
        ]
        read_only_fields = fields

    def _amounts(self, obj) -> dict:
        return self.context.get("balances", {}).get(obj.pk, {})

    def get_balance(self, obj) -> str:
        return str(self._amounts(obj).get("balance", "0.00"))

    def get_held(self, obj) -> str:
        return str(self._amounts(obj).get("held", "0.00"))

    def get_spent(self, obj) -> str:
        return str(self._amounts(obj).get("spent", "0.00"))


class VoucherDetailSerializer(VoucherSerializer):
    redemptions = RedemptionSerializer(many=True, read_only=True)

    class Meta(VoucherSerializer.Meta):
        fields = [*VoucherSerializer.Meta.fields, "redemptions"]
        read_only_fields = fields

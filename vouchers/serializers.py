"""Voucher API shapes. Input serializers validate types only; the services enforce the business rules."""

from rest_framework import serializers

from accounts.models import ModelFiling, Organization
from listings.models import Accelerator
from marketplace.core.money import AMOUNT_DIGITS, AMOUNT_PLACES
from vouchers.models import Redemption, Voucher, VoucherApplication, VoucherProgram
from vouchers.services import PROGRAM_FIELDS


def amount_field(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES, **kwargs)


class VoucherProgramSerializer(serializers.ModelSerializer):
    issuer = serializers.CharField(source="issuer.name", read_only=True)
    eligible_providers = serializers.PrimaryKeyRelatedField(
        many=True, required=False, queryset=Organization.objects.filter(kind=Organization.Kind.PROVIDER))
    eligible_accelerators = serializers.SlugRelatedField(many=True, required=False, slug_field="slug",
                                                         queryset=Accelerator.objects.all())
    budget = amount_field(write_only=True, required=False, min_value=0)

    class Meta:
        model = VoucherProgram
        fields = ["id", "issuer", "budget_total", "budget", *PROGRAM_FIELDS, "eligible_providers",
                  "eligible_accelerators", "created_at"]
        read_only_fields = ["id", "issuer", "budget_total", "created_at"]
        extra_kwargs = {"city": {"required": False}}


class VoucherApplicationCreateSerializer(serializers.Serializer):
    requested_amount = amount_field(min_value=0)
    purpose = serializers.CharField(max_length=2000)
    model_filing = serializers.PrimaryKeyRelatedField(queryset=ModelFiling.objects.all(), required=False,
                                                      allow_null=True)


class VoucherApplicationSerializer(serializers.ModelSerializer):
    program_name = serializers.CharField(source="program.name", read_only=True)
    applicant_name = serializers.CharField(source="applicant.name", read_only=True)
    voucher = serializers.SerializerMethodField()

    class Meta:
        model = VoucherApplication
        fields = ["id", "program", "program_name", "applicant", "applicant_name", "requested_amount", "purpose",
                  "model_filing", "status", "approved_face_value", "reject_reason", "decided_at", "created_at",
                  "voucher"]
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
        fields = ["id", "program", "program_name", "holder", "holder_name", "face_value", "balance", "held", "spent",
                  "issued_at", "expires_at", "status"]
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

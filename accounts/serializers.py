from django.contrib.auth import get_user_model
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import CITY_CHOICES, Invitation, Membership, ModelFiling, Organization, VerificationStatus
from marketplace.core.filters import status_filter_serializer

# The kinds a person may sign up, with the model's own (translated) labels.
SIGNUP_KIND_CHOICES = [(kind.value, kind.label) for kind in (Organization.Kind.STARTUP, Organization.Kind.PROVIDER)]


@extend_schema_field({"type": "string", "enum": [value for value, _ in SIGNUP_KIND_CHOICES]})
class SignupKindField(serializers.ChoiceField):
    """Startup or provider (issuers and the platform are set up by platform staff). An inline enum in the schema:
    the organization kinds' enum has four values."""

    def __init__(self, **kwargs):
        super().__init__(choices=SIGNUP_KIND_CHOICES, **kwargs)


class OrganizationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "kind", "name", "city", "credit_code", "is_sme", "verification_status"]


class MembershipSerializer(serializers.ModelSerializer):
    organization = OrganizationSerializer()

    class Meta:
        model = Membership
        fields = ["organization", "role"]


class MeSerializer(serializers.ModelSerializer):
    memberships = MembershipSerializer(many=True)

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "email", "first_name", "last_name", "memberships"]


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)
    otp = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=10,
        help_text="the current code of your authenticator app: required for platform staff, issuers and auditors, "
        "and for anyone who turned two-factor sign-in on",
    )


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField()


# --- sign-up and e-mail confirmation -------------------------------------------------------------------------------


class SignupSerializer(serializers.Serializer):
    """Types and lengths only; the rules (credit code check character, duplicates, password strength) are the
    service's (``accounts.services.signup``), so the page and the API refuse the same things the same way."""

    kind = SignupKindField()
    name = serializers.CharField(max_length=200)
    credit_code = serializers.CharField(max_length=32, help_text="unified social credit code, 18 characters")
    city = serializers.ChoiceField(choices=CITY_CHOICES, help_text="registered city")
    legal_representative = serializers.CharField(max_length=100)
    owners = serializers.ListField(child=serializers.CharField(max_length=100), allow_empty=False, max_length=20)
    is_sme = serializers.BooleanField(default=False, help_text="a startup / small or medium enterprise")
    username = serializers.CharField(max_length=150)
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(
        max_length=4096, trim_whitespace=False, write_only=True, style={"input_type": "password"}
    )


class SignupUserSerializer(serializers.ModelSerializer):
    class Meta:
        model = get_user_model()
        fields = ["id", "username", "email", "is_active"]


class SignupOrganizationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "kind", "name", "city", "verification_status"]


class SignupResponseSerializer(serializers.Serializer):
    detail = serializers.CharField()
    user = SignupUserSerializer()
    organization = SignupOrganizationSerializer()


class ConfirmEmailSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=1024)


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


# --- verification by platform staff --------------------------------------------------------------------------------


class OrganizationReviewSerializer(serializers.ModelSerializer):
    """What staff see to decide: the registration data and the decision so far."""

    class Meta:
        model = Organization
        fields = [
            "id",
            "kind",
            "name",
            "city",
            "credit_code",
            "legal_representative",
            "owners",
            "is_sme",
            "verification_status",
            "verification_reason",
            "verification_decided_at",
            "created_at",
            "business_licence_type",
            "business_licence_url",
        ]

    business_licence_url = serializers.SerializerMethodField(
        help_text="where staff fetch the uploaded business licence; null when none was uploaded"
    )

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_business_licence_url(self, org) -> str | None:
        return reverse("api-organization-licence", args=[org.pk]) if org.business_licence else None


class OrganizationVerifySerializer(serializers.Serializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class OrganizationRejectSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


# --- teams ---------------------------------------------------------------------------------------------------------


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Membership.Role.choices, default=Membership.Role.MEMBER)


class InvitationSerializer(serializers.ModelSerializer):
    """An invitation as its organization's members see it (never its token)."""

    class Meta:
        model = Invitation
        fields = ["id", "organization", "email", "role", "status", "expires_at", "created_at"]


class InvitationAcceptSerializer(serializers.Serializer):
    """Signed in: empty. Not signed in: the new account's username and password (the e-mail is the invitation's)."""

    username = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    password = serializers.CharField(
        max_length=4096,
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
        write_only=True,
        style={"input_type": "password"},
    )


class MemberSerializer(serializers.ModelSerializer):
    user_id = serializers.IntegerField(source="user.id")
    username = serializers.CharField(source="user.username")
    email = serializers.CharField(source="user.email")

    class Meta:
        model = Membership
        fields = ["user_id", "username", "email", "role"]


OrganizationReviewFilterSerializer = status_filter_serializer(
    "OrganizationReviewFilterSerializer", VerificationStatus.choices, name="verification_status"
)
ModelFilingFilterSerializer = status_filter_serializer("ModelFilingFilterSerializer", ModelFiling.Status.choices)


class OrganizationProfileSerializer(serializers.ModelSerializer):
    """What a counter-party may see of an organization; its members and platform staff also get the private fields
    (``context["private"]``)."""

    PRIVATE = ("credit_code", "legal_representative", "owners")

    class Meta:
        model = Organization
        fields = [
            "id",
            "name",
            "kind",
            "city",
            "is_sme",
            "verification_status",
            "credit_code",
            "legal_representative",
            "owners",
        ]
        read_only_fields = fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not self.context.get("private"):
            for name in self.PRIVATE:
                data.pop(name)
        return data


class ModelFilingSerializer(serializers.ModelSerializer):
    organization_name = serializers.CharField(source="organization.name", read_only=True)
    reviewed_by = serializers.CharField(source="reviewed_by.username", read_only=True, default=None, allow_null=True)

    class Meta:
        model = ModelFiling
        fields = [
            "id",
            "organization",
            "organization_name",
            "filing_number",
            "model_name",
            "registered_on",
            "valid_until",
            "status",
            "reviewed_by",
            "reviewed_at",
            "review_note",
            "created_at",
        ]
        read_only_fields = fields


class ModelFilingCreateSerializer(serializers.Serializer):
    filing_number = serializers.CharField(max_length=64)
    model_name = serializers.CharField(max_length=120)
    registered_on = serializers.DateField()
    valid_until = serializers.DateField(required=False, allow_null=True)


class ModelFilingReviewSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

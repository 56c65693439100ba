from django.contrib import admin

from accounts.models import Invitation, Membership, ModelFiling, Organization


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class ModelFilingInline(admin.TabularInline):
    model = ModelFiling
    extra = 0


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "city", "credit_code", "is_sme", "verification_status"]
    list_filter = ["kind", "verification_status", "city", "is_sme"]
    search_fields = ["name", "credit_code", "legal_representative"]
    inlines = [MembershipInline, ModelFilingInline]
    # Decisions are made on /staff/organizations/ (accounts.services: locked, audited, owners told), not here.
    readonly_fields = [
        "verification_status",
        "verification_reason",
        "verification_decided_at",
        "verification_decided_by",
    ]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role"]
    list_filter = ["role", "organization__kind"]
    search_fields = ["user__username", "organization__name"]


@admin.register(ModelFiling)
class ModelFilingAdmin(admin.ModelAdmin):
    list_display = ["model_name", "filing_number", "organization", "registered_on"]
    search_fields = ["model_name", "filing_number", "organization__name"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organization", "role", "status", "expires_at", "invited_by"]
    list_filter = ["status", "role"]
    search_fields = ["email", "organization__name"]
    # Invitations are made and accepted through accounts.services (the token is only ever e-mailed).
    readonly_fields = [
        "organization",
        "email",
        "role",
        "token_hash",
        "status",
        "expires_at",
        "invited_by",
        "accepted_by",
        "accepted_at",
    ]

    def has_add_permission(self, request):
        return False

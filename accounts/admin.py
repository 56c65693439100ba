from django.contrib import admin

from accounts.models import Membership, ModelFiling, Organization


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class ModelFilingInline(admin.TabularInline):
    model = ModelFiling
    extra = 0


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "city", "credit_code", "is_sme"]
    list_filter = ["kind", "city", "is_sme"]
    search_fields = ["name", "credit_code", "legal_representative"]
    inlines = [MembershipInline, ModelFilingInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role"]
    list_filter = ["role", "organization__kind"]
    search_fields = ["user__username", "organization__name"]


@admin.register(ModelFiling)
class ModelFilingAdmin(admin.ModelAdmin):
    list_display = ["model_name", "filing_number", "organization", "registered_on"]
    search_fields = ["model_name", "filing_number", "organization__name"]

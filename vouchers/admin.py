"""Admin: programs are editable (rules); money-bearing rows are read-only — they change only through services."""

from django.contrib import admin

from ledger.admin import ReadOnlyAdmin
from vouchers.models import Redemption, Voucher, VoucherApplication, VoucherProgram


@admin.register(VoucherProgram)
class VoucherProgramAdmin(admin.ModelAdmin):
    list_display = ["name", "issuer", "city", "status", "budget_total", "domestic_ratio", "other_ratio"]
    list_filter = ["status", "city"]
    search_fields = ["name", "issuer__name"]
    readonly_fields = ["budget_total"]
    filter_horizontal = ["eligible_providers", "eligible_accelerators"]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(VoucherApplication)
class VoucherApplicationAdmin(ReadOnlyAdmin):
    list_display = ["id", "program", "applicant", "requested_amount", "status", "approved_face_value", "decided_at"]
    list_filter = ["status"]
    search_fields = ["applicant__name", "program__name"]


@admin.register(Voucher)
class VoucherAdmin(ReadOnlyAdmin):
    list_display = ["id", "program", "holder", "face_value", "issued_at", "expires_at", "status"]
    list_filter = ["status"]
    search_fields = ["holder__name", "program__name"]


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyAdmin):
    list_display = ["id", "voucher", "booking", "amount", "status", "bound_by", "created_at"]
    list_filter = ["status", "bound_by"]

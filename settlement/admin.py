"""Read-only admin: settlement rows change only through the services (money moves with them)."""

from django.contrib import admin

from ledger.admin import ReadOnlyAdmin
from settlement.models import BookingSettlement, Payout, ReimbursementClaim, ReimbursementStatement


@admin.register(BookingSettlement)
class BookingSettlementAdmin(ReadOnlyAdmin):
    list_display = ["booking", "provider", "subtotal", "fee", "provider_amount", "payout", "settled_at"]


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdmin):
    list_display = ["id", "provider", "amount", "status", "period_until", "paid_at"]
    list_filter = ["status"]


@admin.register(ReimbursementClaim)
class ReimbursementClaimAdmin(ReadOnlyAdmin):
    list_display = ["id", "program", "booking", "amount", "status", "statement", "paid_at"]
    list_filter = ["status"]


@admin.register(ReimbursementStatement)
class ReimbursementStatementAdmin(ReadOnlyAdmin):
    list_display = ["id", "program", "period_start", "period_end", "total", "status", "issued_at", "paid_at"]
    list_filter = ["status"]

"""Anomaly flags in the Django admin, browse only (they are reviewed on /audit/flags/, with an audit event)."""

from django.contrib import admin

from audit.admin import ReadOnlyAdmin
from oversight.models import AnomalyFlag


@admin.register(AnomalyFlag)
class AnomalyFlagAdmin(ReadOnlyAdmin):
    """Flags are reviewed on /audit/flags/ (with an audit event); the admin only browses them."""

    list_display = [
        "id",
        "created_at",
        "kind",
        "status",
        "booking_id",
        "voucher_id",
        "program",
        "organization",
        "reviewer",
        "reviewed_at",
    ]
    list_filter = ["kind", "status", "program"]
    search_fields = ["review_note"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AnomalyFlag._meta.fields]

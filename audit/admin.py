"""Read-only audit views in the Django admin: nobody edits or deletes an audit event (the database refuses too)."""

import csv
import json

from django.contrib import admin
from django.http import HttpResponse

from audit.models import AuditEvent
from marketplace.core.spreadsheet import safe_cell


class ReadOnlyAdmin(admin.ModelAdmin):
    """Browse only: no add, change or delete from the admin."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["seq", "created_at", "action", "object_type", "object_id", "organization_id", "actor", "ip"]
    list_filter = ["action", "object_type"]
    search_fields = ["action", "object_type", "object_id", "hash"]
    date_hierarchy = "created_at"
    ordering = ["-seq"]


def _export_events_csv(modeladmin, request, queryset):
    """Download the selected events as CSV (read-only: nothing is changed)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit-events.csv"'
    writer = csv.writer(response)
    columns = [
        "seq",
        "created_at",
        "actor_id",
        "organization_id",
        "action",
        "object_type",
        "object_id",
        "data",
        "ip",
        "prev_hash",
        "hash",
    ]
    writer.writerow(columns)
    for event in queryset.order_by("seq"):
        writer.writerow(
            [
                safe_cell(json.dumps(event.data, sort_keys=True) if name == "data" else getattr(event, name))
                for name in columns
            ]
        )
    return response


_export_events_csv.short_description = "Export selected events as CSV"
AuditEventAdmin.actions = [_export_events_csv]

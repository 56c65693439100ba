"""Read-only audit views in the Django admin: nobody edits or deletes an audit event (the database refuses too)."""

import csv
import json

from django.contrib import admin
from django.http import HttpResponse

from audit.models import AuditEvent, TreeHead
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
    list_display = ["id", "leaf_index", "created_at", "action", "object_type", "object_id", "organization_id", "actor"]
    list_filter = ["action", "object_type"]
    search_fields = ["action", "object_type", "object_id"]
    date_hierarchy = "created_at"
    ordering = ["-id"]
    list_select_related = ["actor", "leaf"]

    @admin.display(description="leaf index")
    def leaf_index(self, event):
        leaf = getattr(event, "leaf", None)
        return None if leaf is None else leaf.leaf_index


@admin.register(TreeHead)
class TreeHeadAdmin(ReadOnlyAdmin):
    list_display = ["tree_size", "root_hash_hex", "timestamp", "key_id"]
    ordering = ["-tree_size"]

    @admin.display(description="root hash")
    def root_hash_hex(self, head):
        return bytes(head.root_hash).hex()


def _export_events_csv(modeladmin, request, queryset):
    """Download the selected events as CSV (read-only: nothing is changed)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit-events.csv"'
    writer = csv.writer(response)
    columns = [
        "id",
        "leaf_index",
        "created_at",
        "actor_id",
        "organization_id",
        "action",
        "object_type",
        "object_id",
        "data",
        "ip",
        "leaf_hash",
    ]
    writer.writerow(columns)
    for event in queryset.select_related("leaf").order_by("id"):
        leaf = getattr(event, "leaf", None)
        values = {
            "leaf_index": None if leaf is None else leaf.leaf_index,
            "leaf_hash": "" if leaf is None else bytes(leaf.leaf_hash).hex(),
            "data": json.dumps(event.data, sort_keys=True),
        }
        writer.writerow([safe_cell(values[name] if name in values else getattr(event, name)) for name in columns])
    return response


_export_events_csv.short_description = "Export selected events as CSV"
AuditEventAdmin.actions = [_export_events_csv]

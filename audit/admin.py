"""Read-only audit views in the Django admin: nobody edits or deletes an audit event (the database refuses too)."""

from django.contrib import admin

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["seq", "created_at", "action", "object_type", "object_id", "organization_id", "actor", "ip"]
    list_filter = ["action", "object_type"]
    search_fields = ["action", "object_type", "object_id", "hash"]
    date_hierarchy = "created_at"
    ordering = ["-seq"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

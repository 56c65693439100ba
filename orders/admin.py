from django.contrib import admin

from orders.models import Booking, BookingStatusChange, NodeReservation


class NodeReservationInline(admin.TabularInline):
    model = NodeReservation
    extra = 0
    readonly_fields = ["node", "period", "active"]
    can_delete = False


class BookingStatusChangeInline(admin.TabularInline):
    model = BookingStatusChange
    extra = 0
    readonly_fields = ["from_status", "to_status", "actor", "note", "created_at"]
    can_delete = False


@admin.register(Booking)
class BookingAdmin(admin.ModelAdmin):
    """Read-only: status and money change only through ``orders.services`` (holds, releases, audit)."""

    list_display = ["id", "buyer", "listing", "nodes", "start", "end", "status", "subtotal", "cash_amount"]
    list_filter = ["status"]
    search_fields = ["buyer__name", "id"]
    inlines = [NodeReservationInline, BookingStatusChangeInline]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

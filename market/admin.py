"""Price index fixings in the Django admin, browse only (the daily job and ``backfill_fixings`` write them)."""

from django.contrib import admin

from audit.admin import ReadOnlyAdmin
from market.models import Fixing


@admin.register(Fixing)
class FixingAdmin(ReadOnlyAdmin):
    list_display = ["day", "accelerator", "city", "vwap", "ask_mean", "asks", "listed_gpus", "utilisation"]
    list_filter = ["accelerator", "city"]
    date_hierarchy = "day"
    readonly_fields = [f.name for f in Fixing._meta.fields]

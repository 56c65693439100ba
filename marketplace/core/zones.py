"""How pages name the time zone their times are in: "北京时间 (UTC+8)" / "Beijing time (UTC+8)", another zone as
"Europe/Berlin (UTC+1)". The zone itself is activated per request (``accounts.preferences.PreferenceMiddleware``);
storage and the API stay in UTC."""

from __future__ import annotations

from django.utils import timezone
from django.utils.functional import lazy
from django.utils.text import format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

BEIJING_ZONES = {"Asia/Shanghai", "Asia/Chongqing", "Asia/Chungking", "Asia/Harbin", "PRC"}


def utc_offset(zone=None) -> str:
    """``UTC+8``, ``UTC−3:30``, ``UTC`` for the zone's offset now."""
    zone = zone or timezone.get_current_timezone()
    offset = timezone.localtime(timezone.now(), zone).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    if not minutes:
        return "UTC"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{'+' if minutes > 0 else '−'}{hours}" + (f":{rest:02d}" if rest else "")


def zone_label(zone=None) -> str:
    zone = zone or timezone.get_current_timezone()
    name = str(getattr(zone, "key", zone))
    if name in BEIJING_ZONES:
        return gettext("Beijing time (%(offset)s)") % {"offset": utc_offset(zone)}
    if name == "UTC":
        return "UTC"
    return f"{name} ({utc_offset(zone)})"


zone_label_lazy = lazy(zone_label, str)


def in_zone(label) -> str:
    """A form label with the zone its time is read in, evaluated when the form is rendered: "Start · Beijing time
    (UTC+8)"."""
    return format_lazy(_("{label} · {zone}"), label=label, zone=zone_label_lazy())


def local_moment(value) -> str:
    """A moment as people read it in messages, in the active zone: "2030-01-01 18:00 Beijing time (UTC+8)"."""
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M} {zone_label()}"

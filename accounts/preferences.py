"""Per-user preferences: the time zone pages show and read times in, and the language of the pages.

Times are stored and exchanged over the API in UTC; people see and type them in their zone, Beijing time
(``settings.DISPLAY_TIME_ZONE``, Asia/Shanghai) unless they chose another. ``PreferenceMiddleware`` activates that
zone for every page and leaves /api/ in UTC (DRF renders aware datetimes in the current zone).

The language: the header's switch (Django's ``set_language``, a cookie) wins, then a saved preference, then the
browser's ``Accept-Language`` (``LocaleMiddleware``), then English.
"""

from __future__ import annotations

import zoneinfo
from functools import lru_cache

from django import forms
from django.conf import settings
from django.db import models
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

SESSION_KEY = "gpux_preferences"  # {"tz": "...", "lang": "..."}: read once per session, not once per page


@lru_cache(maxsize=1)
def time_zone_choices() -> list[tuple[str, str]]:
    """Every IANA zone this machine knows, Asia/Shanghai first."""
    zones = sorted(z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))
    first = settings.DISPLAY_TIME_ZONE
    return [(first, first)] + [(z, z) for z in zones if z != first] + [("UTC", "UTC")]


def validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise forms.ValidationError(_("Unknown time zone."), code="time_zone") from exc


class UserPreference(models.Model):
    """One row per user who changed a preference; without a row the defaults apply."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference")
    time_zone = models.CharField(max_length=64, default="Asia/Shanghai", validators=[validate_time_zone])
    # "" = follow the browser
    language = models.CharField(max_length=16, blank=True, default="", choices=[("", "—"), *settings.LANGUAGES])
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "accounts"

    def __str__(self):
        return f"{self.user} ({self.time_zone}, {self.language or 'browser'})"


def preferences_of(request) -> dict:
    """The signed-in user's ``{"tz", "lang"}``, cached in the session; {} for anonymous users."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    cached = request.session.get(SESSION_KEY)
    if cached is None:
        pref = UserPreference.objects.filter(user=user).values("time_zone", "language").first() or {}
        cached = {"tz": pref.get("time_zone", ""), "lang": pref.get("language", "")}
        request.session[SESSION_KEY] = cached
    return cached


def remember(request, preference: UserPreference) -> None:
    request.session[SESSION_KEY] = {"tz": preference.time_zone, "lang": preference.language}


def display_zone(request) -> zoneinfo.ZoneInfo:
    name = preferences_of(request).get("tz") or settings.DISPLAY_TIME_ZONE
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.DISPLAY_TIME_ZONE)


class PreferenceMiddleware:
    """After ``AuthenticationMiddleware``: pages in the user's time zone (and saved language, unless the language
    cookie says otherwise); /api/ stays in UTC and in the negotiated language."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            timezone.deactivate()  # TIME_ZONE = UTC: the API answers ISO 8601 in UTC
            return self.get_response(request)
        timezone.activate(display_zone(request))
        saved = preferences_of(request).get("lang")
        if saved and settings.LANGUAGE_COOKIE_NAME not in request.COOKIES:
            translation.activate(saved)
            request.LANGUAGE_CODE = translation.get_language()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()

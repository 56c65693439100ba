"""The preferences page (/account/preferences/): time zone and language of the pages."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from accounts.preferences import UserPreference, remember, time_zone_choices, validate_time_zone


class PreferenceForm(forms.Form):
    time_zone = forms.ChoiceField(
        label=_("Time zone"),
        choices=time_zone_choices,
        validators=[validate_time_zone],
        help_text=_("Pages show and read times in this zone; the API always uses UTC."),
    )
    language = forms.ChoiceField(
        label=_("Language"), required=False, choices=[("", _("As my browser asks")), *settings.LANGUAGES]
    )


@login_required
def preferences(request):
    pref = UserPreference.objects.filter(user=request.user).first()
    initial = {
        "time_zone": pref.time_zone if pref else settings.DISPLAY_TIME_ZONE,
        "language": pref.language if pref else "",
    }
    form = PreferenceForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if form.is_valid():
            pref, _created = UserPreference.objects.update_or_create(
                user=request.user,
                defaults={"time_zone": form.cleaned_data["time_zone"], "language": form.cleaned_data["language"]},
            )
            remember(request, pref)
            language = pref.language or translation.get_language_from_request(request)
            translation.activate(language)
            messages.success(request, _("Preferences saved."))
            response = redirect("preferences")
            if pref.language:
                response.set_cookie(
                    settings.LANGUAGE_COOKIE_NAME,
                    pref.language,
                    max_age=settings.LANGUAGE_COOKIE_AGE,
                    samesite=settings.LANGUAGE_COOKIE_SAMESITE,
                    secure=settings.SESSION_COOKIE_SECURE,
                )
            else:
                response.delete_cookie(settings.LANGUAGE_COOKIE_NAME)
            return response
        return render(request, "accounts/preferences.html", {"form": form}, status=400)
    return render(request, "accounts/preferences.html", {"form": form})

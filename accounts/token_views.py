"""Page: the signed-in user's API tokens (``/account/tokens/``): list, create (the token is shown once), revoke."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts import tokens
from marketplace.core.exceptions import ApplicationError
from marketplace.core.forms import ServiceErrorsMixin


class ApiTokenForm(ServiceErrorsMixin, forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=80)
    expires_in_days = forms.IntegerField(
        label=gettext_lazy("Valid for (days)"),
        min_value=1,
        max_value=max(tokens.MAX_DAYS, settings.API_TOKEN_DAYS),
        initial=settings.API_TOKEN_DAYS,
    )


def _page(request, form=None, created=None, status: int = 200):
    context = {
        "tokens": tokens.user_tokens(request.user),
        "form": form or ApiTokenForm(initial={"expires_in_days": settings.API_TOKEN_DAYS}),
        "created": created,
        "now": timezone.now(),
    }
    return render(request, "accounts/api_tokens.html", context, status=status)


@login_required
def api_tokens(request):
    if request.method != "POST":
        return _page(request)
    form = ApiTokenForm(request.POST)
    if form.is_valid():
        try:
            token, raw = tokens.api_token_create(user=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            form.add_service_errors(exc)
        else:
            # Rendered, not redirected: the token is in this response only, never stored in a session or a message.
            return _page(request, created={"token": token, "raw": raw}, status=201)
    return _page(request, form, status=400)


@login_required
@require_POST
def api_token_revoke(request, pk: int):
    token = tokens.api_token_revoke(user=request.user, token_id=pk)
    messages.success(request, _("Token “%(name)s” revoked.") % {"name": token.name})
    return redirect("account-tokens")

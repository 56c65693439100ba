"""Pages of two-factor sign-in: the code after the password (``/login/two-factor/``) and setting it up or turning
it off (``/account/two-factor/``). Wrong codes count as failed logins (``accounts.throttling``)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.forms.utils import ErrorDict
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_otp import login as otp_login

from accounts import throttling, two_factor
from marketplace.core.exceptions import ApplicationError
from marketplace.core.forms import ServiceErrorsMixin
from marketplace.core.requests import client_ip


class CodeForm(ServiceErrorsMixin, forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code from your authenticator app"),
        max_length=10,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )


def _next_url(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return settings.LOGIN_REDIRECT_URL


@login_required
def verify(request):
    """The second step of signing in: the current code of the user's authenticator app."""
    user = request.user
    if user.is_verified() or two_factor.confirmed_device(user) is None:
        return redirect(_next_url(request))
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        username, ip = user.get_username(), client_ip(request)
        if throttling.login_blocked(username=username, ip=ip):
            form = CodeForm()  # unbound: the code is not checked while refused
            form.cleaned_data, form._errors = {}, ErrorDict()
            form.add_error(None, throttling.BLOCKED_MESSAGE)
            status = 429
        elif form.is_valid() and (device := two_factor.totp_check(user=user, code=form.cleaned_data["code"])):
            otp_login(request, device)
            throttling.login_succeeded(username=username, ip=ip)
            return redirect(_next_url(request))
        else:
            throttling.login_failed(username=username, ip=ip)
            if form.is_valid():
                form.add_error("code", _("That code is not right: check the app's clock and try the next one."))
            status = 400
    context = {"form": form, "next": _next_url(request)}
    return render(request, "accounts/two_factor_verify.html", context, status=status)


@login_required
def setup(request):
    """Set up (show a new key, confirm it with a code) or, where optional, turn off two-factor sign-in."""
    user = request.user
    device = two_factor.confirmed_device(user)
    required = two_factor.two_factor_required(user)
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            if device is None:
                confirmed = two_factor.totp_confirm(user=user, code=form.cleaned_data["code"], ip=client_ip(request))
                otp_login(request, confirmed)
                throttling.login_succeeded(username=user.get_username(), ip=client_ip(request))
                messages.success(request, _("Two-factor sign-in is on: you will give a code at every sign-in."))
                return redirect(_next_url(request) if required else "two-factor-setup")
            two_factor.totp_disable(user=user, code=form.cleaned_data["code"], ip=client_ip(request))
            messages.success(request, _("Two-factor sign-in is off."))
            return redirect("two-factor-setup")
        except ApplicationError as exc:
            throttling.login_failed(username=user.get_username(), ip=client_ip(request))
            form.add_service_errors(exc)
            status = 400
    elif request.method == "POST":
        status = 400
    new_device = two_factor.totp_device_for_setup(user) if device is None else None
    context = {
        "form": form,
        "device": device,
        "required": required,
        "new_device": new_device,
        "secret": two_factor.secret_text(new_device) if new_device else "",
        "qr_svg": two_factor.setup_qr_svg(new_device) if new_device else "",
        "next": _next_url(request),
    }
    return render(request, "accounts/two_factor_setup.html", context, status=status)

"""Two-factor sign-in (TOTP, django-otp): who needs it, setting it up, checking a code, and the middleware that keeps
a signed-in user without the second factor away from every page but the code and set-up pages.

Required for platform staff, issuer members and auditors (every member of a platform or issuer organization) and for
Django staff accounts; optional for everyone else. A user with a confirmed device gives a code at every sign-in,
whether required or not. Wrong codes count as failed logins (``accounts.throttling``), so the password and the code
share one limit per (username, address); the device's own back-off (django-otp) comes on top.
"""

from __future__ import annotations

import base64

import segno
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Membership, Organization
from audit.services import audit_record
from marketplace.core.exceptions import ApplicationError

REQUIRED_KINDS = (Organization.Kind.PLATFORM, Organization.Kind.ISSUER)
DEVICE_NAME = "authenticator"

# --- selectors -----------------------------------------------------------------------------------------------------


def two_factor_required(user) -> bool:
    """Platform staff, issuer members and auditors (of a platform or an issuer) must use a second factor."""
    if not user.is_authenticated:
        return False
    if user.is_staff or user.is_superuser:
        return True
    return Membership.objects.filter(user=user, organization__kind__in=REQUIRED_KINDS).exists()


def confirmed_device(user) -> TOTPDevice | None:
    if not user.is_authenticated:
        return None
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id").first()


def needs_code(user) -> bool:
    """True when signing in as ``user`` takes a code after the password (a device, or the role requires one)."""
    return confirmed_device(user) is not None or two_factor_required(user)


def secret_text(device: TOTPDevice) -> str:
    """The key as people type it into an authenticator app: base32, in groups of four."""
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def setup_qr_svg(device: TOTPDevice) -> SafeString:
    """The device's ``otpauth://`` address as a QR code that an authenticator app scans instead of the key being
    typed: inline SVG markup (no script, no external file, so the content-security policy allows it)."""
    svg = segno.make(device.config_url, error="m").svg_inline(scale=4, border=2, omitsize=True)
    # Safe: segno writes the markup itself; the address is encoded in the modules' path, never copied as text.
    return mark_safe(svg)  # noqa: S308


# --- services ------------------------------------------------------------------------------------------------------


@transaction.atomic
def totp_device_for_setup(user) -> TOTPDevice:
    """The user's unconfirmed device (a new secret the first time); set-up shows its secret until a code confirms it."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("id").first()
    return device or TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)


def _code_ok(device: TOTPDevice, code: str) -> bool:
    code = (code or "").strip().replace(" ", "")
    return code.isdigit() and len(code) == device.digits and device.verify_token(code)


@transaction.atomic
def totp_confirm(*, user, code: str, ip: str | None = None) -> TOTPDevice:
    """Confirm the set-up device with a code from the app; other devices of the user are removed."""
    device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).order_by("id").first()
    if device is None:
        raise ApplicationError(_("Start the set-up again: no new key is waiting."), errors={"code": [_("No key.")]})
    if not _code_ok(device, code):
        raise ApplicationError(
            _("That code is not right."), errors={"code": [_("That code is not right: check the app's clock.")]}
        )
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    audit_record(action="accounts.two_factor_enabled", obj=device, actor=user, ip=ip)
    return device


def totp_check(*, user, code: str) -> TOTPDevice | None:
    """The user's confirmed device when ``code`` is right for it (each code works once), else None."""
    device = confirmed_device(user)
    if device is None or not _code_ok(device, code):
        return None
    return device


@transaction.atomic
def totp_disable(*, user, code: str, ip: str | None = None) -> None:
    """Turn two-factor sign-in off (only where it is optional), with a current code."""
    if two_factor_required(user):
        raise ApplicationError(_("Your role requires two-factor sign-in: it cannot be turned off."))
    if totp_check(user=user, code=code) is None:
        raise ApplicationError(_("That code is not right."), errors={"code": [_("That code is not right.")]})
    TOTPDevice.objects.filter(user=user).delete()
    audit_record(
        action="accounts.two_factor_disabled", object_type="auth.user", object_id=str(user.pk), actor=user, ip=ip
    )


# --- middleware ----------------------------------------------------------------------------------------------------

ALWAYS_OPEN = ("/static/", "/i18n/", "/healthz", "/favicon.ico")


class TwoFactorRequiredMiddleware:
    """After ``OTPMiddleware``: a session signed in with the password only, whose user needs a code, reaches the code
    page (or the set-up page, when the role requires a device it has not set up), log-out and static files only;
    pages redirect there, ``/api/`` answers 403. API token requests are not sessions: ``POST /api/v1/auth/token/``
    asks those users for the code."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if not user.is_authenticated or user.is_verified() or request.path.startswith(ALWAYS_OPEN):
            return self.get_response(request)
        open_paths = {reverse("logout"), reverse("two-factor-verify")}
        if request.path in open_paths:
            return self.get_response(request)
        device = confirmed_device(user)
        if device is None and not two_factor_required(user):
            return self.get_response(request)
        target = "two-factor-verify" if device is not None else "two-factor-setup"
        if target == "two-factor-setup" and request.path == reverse("two-factor-setup"):
            return self.get_response(request)
        if request.path.startswith("/api/"):
            message = _("Give your two-factor code on the website first, or log in to the API with it.")
            return JsonResponse({"detail": message, "errors": {}}, status=403)
        return redirect(f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}")

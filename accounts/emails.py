"""E-mails about accounts (Django's e-mail framework: ``EMAIL_BACKEND`` from the environment) and the signed,
expiring e-mail confirmation link.

Services send after their transaction commits (``transaction.on_commit``): a rolled-back sign-up sends nothing. A
failure to send is logged, never raised: the rows are committed by then and the person can ask again (password reset,
a new invitation). Links are absolute, built from the request's host (validated against ``ALLOWED_HOSTS``) as
Django's own password reset does.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext

logger = logging.getLogger(__name__)

CONFIRMATION_SALT = "accounts.emails.confirmation"
CONFIRMATION_MAX_AGE = dt.timedelta(days=3)


def site_url(request) -> str:
    """``https://host`` of ``request`` (no trailing slash), for links in e-mails."""
    return request.build_absolute_uri("/").rstrip("/")


# --- e-mail confirmation token -------------------------------------------------------------------------------------


def _state(user) -> str:
    """Changes once the link is used (the user becomes active, then logs in) or the account changes (e-mail,
    password): a used or superseded link no longer matches."""
    value = f"{user.pk}|{user.is_active}|{user.email}|{user.password}|{user.last_login}"
    return salted_hmac(CONFIRMATION_SALT, value).hexdigest()[:20]


def confirmation_token(user) -> str:
    return signing.dumps({"u": user.pk, "s": _state(user)}, salt=CONFIRMATION_SALT, compress=True)


class ConfirmationError(Exception):
    """The link is expired, tampered with, or already used; ``message`` says which, for people."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def confirmation_user_id(token: str) -> tuple[int, str]:
    """``(user id, state)`` from a confirmation token. Raises ``ConfirmationError`` when it is expired or forged."""
    try:
        data = signing.loads(token, salt=CONFIRMATION_SALT, max_age=CONFIRMATION_MAX_AGE)
    except signing.SignatureExpired:
        raise ConfirmationError(
            gettext("This confirmation link has expired: sign up again or ask for a new link.")
        ) from None
    except signing.BadSignature:
        raise ConfirmationError(gettext("This confirmation link is not valid.")) from None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int) or not isinstance(data.get("s"), str):
        raise ConfirmationError(gettext("This confirmation link is not valid."))
    return data["u"], data["s"]


def confirmation_matches(user, state: str) -> bool:
    return constant_time_compare(_state(user), state)


# --- sending ---------------------------------------------------------------------------------------------------


def _send(*, template: str, context: dict, to: list[str]) -> None:
    subject = " ".join(render_to_string(f"accounts/email/{template}_subject.txt", context).split())
    body = render_to_string(f"accounts/email/{template}.txt", context)
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, to)
    except (smtplib.SMTPException, OSError):
        logger.exception("could not send the %s e-mail", template)


def send_confirmation(user, *, base_url: str) -> None:
    link = base_url + reverse("signup-confirm", args=[confirmation_token(user)])
    _send(template="confirm", to=[user.email], context={"user": user, "link": link, "days": CONFIRMATION_MAX_AGE.days})


def send_invitation(invitation, token: str, *, base_url: str) -> None:
    link = base_url + reverse("invitation-accept", args=[token])
    _send(
        template="invitation",
        to=[invitation.email],
        context={
            "invitation": invitation,
            "organization": invitation.organization,
            "link": link,
            "inviter": invitation.invited_by,
            "expires_at": invitation.expires_at,
        },
    )


def send_verification_decision(organization, recipients: list[str], *, base_url: str) -> None:
    if recipients:
        _send(
            template="decision",
            to=recipients,
            context={"organization": organization, "link": base_url + reverse("team")},
        )

"""A user's named API tokens: selectors and services (create, revoke) and the lookup authentication uses.

A token is ``gpuxt_`` and 43 URL-safe characters; only its SHA-256 is stored, and it is shown once, when created.
It expires ``expires_in_days`` after creation (``settings.API_TOKEN_DAYS`` by default) and can be revoked at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework.authtoken.models import Token

from accounts.models import ApiToken
from audit.services import audit_record
from marketplace.core.exceptions import ApplicationError, Conflict, NotFound

TOKEN_PREFIX = "gpuxt_"  # noqa: S105 - a marker every named token starts with, not a secret
MAX_ACTIVE_TOKENS = 20
MAX_DAYS = 365
LAST_USED_GRANULARITY_S = 60  # ``last_used_at`` is refreshed at most once a minute per token


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


# --- selectors -----------------------------------------------------------------------------------------------------


def user_tokens(user) -> QuerySet[ApiToken]:
    """The user's tokens, newest first (revoked and expired ones too: the list says which)."""
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")


def active_token_for(raw: str) -> ApiToken | None:
    """The unrevoked, unexpired token whose text is ``raw`` (with its user), or None."""
    if not raw or len(raw) > 200 or not raw.startswith(TOKEN_PREFIX):
        return None
    return (
        ApiToken.objects.select_related("user")
        .filter(token_hash=token_hash(raw), revoked_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )


def touch(token: ApiToken) -> None:
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() >= LAST_USED_GRANULARITY_S:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


# --- services ------------------------------------------------------------------------------------------------------


@transaction.atomic
def api_token_create(*, user, name: str, expires_in_days: int | None = None) -> tuple[ApiToken, str]:
    """Create a token for ``user``; returns it and its text (shown once). ``ApplicationError`` 400 with field errors
    on a bad name or lifetime, ``Conflict`` 409 when the user already has ``MAX_ACTIVE_TOKENS`` active ones."""
    name = (name or "").strip()
    errors: dict[str, list[str]] = {}
    if not name or len(name) > 80 or not name.isprintable():
        errors["name"] = [_("Give the token a name of at most 80 characters, without control characters.")]
    days = settings.API_TOKEN_DAYS if expires_in_days is None else expires_in_days
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= max(MAX_DAYS, settings.API_TOKEN_DAYS):
        errors["expires_in_days"] = [
            _("A token lives from 1 to %(days)s days.") % {"days": max(MAX_DAYS, settings.API_TOKEN_DAYS)}
        ]
    if errors:
        raise ApplicationError(_("The token was not created."), errors=errors)
    get_user_model().objects.select_for_update(no_key=True).filter(pk=user.pk).first()  # serialise the count
    now = timezone.now()
    if ApiToken.objects.filter(user=user, revoked_at__isnull=True, expires_at__gt=now).count() >= MAX_ACTIVE_TOKENS:
        raise Conflict(_("You have %(n)s active tokens: revoke one first.") % {"n": MAX_ACTIVE_TOKENS})
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=raw[: len(TOKEN_PREFIX) + 4],
        token_hash=token_hash(raw),
        expires_at=now + dt.timedelta(days=days),
    )
    audit_record(
        action="accounts.api_token_created",
        obj=token,
        actor=user,
        data={"name": name, "prefix": token.prefix, "expires_at": token.expires_at.isoformat()},
    )
    return token, raw


@transaction.atomic
def api_token_revoke(*, user, token_id: int) -> ApiToken:
    """Revoke one of ``user``'s tokens (another user's or an unknown id: ``NotFound``). Revoking twice is a no-op."""
    token = ApiToken.objects.select_for_update().filter(user=user, pk=token_id).first()
    if token is None:
        raise NotFound(_("No such token."))
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at", "updated_at"])
        audit_record(action="accounts.api_token_revoked", obj=token, actor=user, data={"name": token.name})
    return token


@transaction.atomic
def login_token_for(*, user):
    """The token ``POST /api/v1/auth/token/`` answers with: the user's DRF ``Token``, replaced by a fresh one once
    older than ``settings.API_TOKEN_DAYS`` (``accounts.authentication`` refuses it from then on)."""
    Token.objects.filter(user=user, created__lte=timezone.now() - dt.timedelta(days=settings.API_TOKEN_DAYS)).delete()
    return Token.objects.get_or_create(user=user)[0]

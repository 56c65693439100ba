"""``Authorization: Token <token>``: the API's token authentication (``REST_FRAMEWORK`` lists both classes).

- ``ApiTokenAuthentication``: a user's named tokens (``gpuxt_…``, ``accounts.tokens``). An unknown, expired or revoked
  one answers 401; a token without the prefix is left to the next class.
- ``ExpiringLoginTokenAuthentication``: the token ``POST /api/v1/auth/token/`` hands out (DRF's ``Token``, one per
  user), refused once older than ``settings.API_TOKEN_DAYS`` (logging in again issues a fresh one).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from accounts import tokens

KEYWORD = "Token"


def login_token_expired(created: dt.datetime) -> bool:
    return created <= timezone.now() - dt.timedelta(days=settings.API_TOKEN_DAYS)


class ApiTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if len(header) != 2 or header[0].lower() != KEYWORD.lower().encode():
            return None  # no token, or a malformed header: DRF's TokenAuthentication answers it
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            return None
        if not raw.startswith(tokens.TOKEN_PREFIX):
            return None
        token = tokens.active_token_for(raw)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid, expired or revoked token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        tokens.touch(token)
        return (token.user, token)

    def authenticate_header(self, request):
        return KEYWORD


class ExpiringLoginTokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if login_token_expired(token.created):
            raise exceptions.AuthenticationFailed(_("Invalid, expired or revoked token."))
        return user, token


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <token>`: a named token (`gpuxt_…`) from /api/v1/tokens/ or the tokens page.",
        }

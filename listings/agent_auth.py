"""``Authorization: Agent <token>``: the provider agent's authentication, for the agent API only.

A valid, unrevoked token authenticates as no user (``request.user`` is anonymous) with ``request.auth`` the
``AgentToken``: the agent API's views read its cluster from there and answer only for that cluster's nodes and
bookings. A missing, malformed, unknown or revoked token answers 401 (``WWW-Authenticate: Agent``).
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.permissions import BasePermission

from listings.agent_selectors import agent_token_for
from listings.models import AgentToken

KEYWORD = "Agent"
LAST_USED_GRANULARITY_S = 60  # ``last_used_at`` is refreshed at most once a minute per token


class AgentTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != KEYWORD.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Invalid agent token header: send 'Agent <token>'."))
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Invalid agent token.")) from None
        token = agent_token_for(raw)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked agent token."))
        _touch(token)
        return (AnonymousUser(), token)

    def authenticate_header(self, request):
        return KEYWORD


def _touch(token: AgentToken) -> None:
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() >= LAST_USED_GRANULARITY_S:
        AgentToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


class IsClusterAgent(BasePermission):
    """The request carries a valid agent token (``AgentTokenAuthentication``)."""

    message = _("An agent token is required.")

    def has_permission(self, request, view):
        return isinstance(request.auth, AgentToken)


class AgentTokenScheme(OpenApiAuthenticationExtension):
    target_class = "listings.agent_auth.AgentTokenAuthentication"
    name = "agentToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Agent <token>`: a cluster's agent token, created on the cluster's agent page.",
        }

"""API token authentication: DRF's ``TokenAuthentication`` with its lookup written out.

Same contract as DRF's (``Authorization: Token <key>``; 401 for an unknown key or an inactive user; ``request.auth``
is the ``Token``), one indexed join on the token's primary key like DRF's ``select_related`` query, but without
compiling that query on every request: it runs before every API call (see ``marketplace.core.rows``).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from marketplace.core import rows


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key):
        user_model = get_user_model()
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {rows.columns(Token, 't')}, {rows.columns(user_model, 'u')} "  # noqa: S608 - metadata names
                f"FROM {Token._meta.db_table} t JOIN {user_model._meta.db_table} u ON u.id = t.user_id "
                "WHERE t.key = %s",
                [key],
            )
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        token = rows.instance(Token, row)
        token.user = rows.instance(user_model, row, rows.width(Token))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return (token.user, token)

"""The psycopg cursor the database connection uses (settings: ``DATABASES["default"]["OPTIONS"]``).

Server-side binding (parameters sent apart from the SQL, statements prepared once they repeat) spares PostgreSQL
the parse and plan of every hot-path statement. Its one hard limit is the protocol's: a statement carries at most
65,535 parameters, where client-side binding has none. Django does not split a long ``__in`` list or a large
``bulk_create`` for PostgreSQL, so such a statement would fail; this cursor sends that one with its values inlined
(client-side binding, not prepared) instead.
"""

from __future__ import annotations

from django.db.backends.postgresql.base import ServerBindingCursor
from psycopg import ClientCursor

# The extended query protocol counts a statement's parameters in 16 bits.
MAX_BIND_PARAMETERS = 65_535


class ServerBindingCursorWithoutLimit(ServerBindingCursor):
    """Django's server-binding cursor, which falls back to client-side binding for a statement with more
    parameters than the protocol can carry."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        if params is not None and len(params) > MAX_BIND_PARAMETERS:
            with ClientCursor(self.connection) as client:
                query = client.mogrify(query, params)
            params, prepare = None, False
        return super().execute(query, params, prepare=prepare, binary=binary)

"""Model instances from hand-written SQL, for the few statements on the booking request's hot path.

Compiling an ORM query (filters, joins, select_related, ordering) costs several times more CPU than PostgreSQL
spends answering a primary-key lookup; on a request that runs a dozen of them that is most of the request. Those
statements are written out instead, and these helpers turn their rows into complete model instances, exactly as
the ORM would (every concrete field, the fields' ``from_db_value`` converters, ``_state`` of a loaded row)::

    cursor.execute(f"SELECT {rows.columns(Listing, 'l')} FROM listings_listing l WHERE l.id = %s", [pk])
    listing = rows.instance(Listing, cursor.fetchone())

The column list comes from the model's metadata, so a field added to the model is read too.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from django.db import connection
from django.db.models import Model


@functools.cache
def _shape(model: type[Model]) -> tuple[tuple[str, ...], tuple[str, ...], tuple]:
    fields = model._meta.concrete_fields
    converters = tuple(
        (index, tuple(field.get_db_converters(connection)), field)
        for index, field in enumerate(fields)
        if field.get_db_converters(connection)
    )
    return tuple(field.column for field in fields), tuple(field.attname for field in fields), converters


def columns(model: type[Model], alias: str) -> str:
    """``alias."col1", alias."col2", …``: every concrete column of ``model``, in the order ``instance`` reads."""
    return ", ".join(f'{alias}."{column}"' for column in _shape(model)[0])


def width(model: type[Model]) -> int:
    """How many columns ``columns(model, …)`` selects."""
    return len(_shape(model)[0])


def instance(model: type[Model], row: Sequence, start: int = 0) -> Model:
    """The ``model`` object of the ``width(model)`` values of ``row`` from ``start`` (selected by ``columns``)."""
    _, attnames, converters = _shape(model)
    values = list(row[start : start + len(attnames)])
    for index, funcs, field in converters:
        for func in funcs:
            values[index] = func(values[index], field, connection)
    return model.from_db(connection.alias, attnames, values)

"""The API's JSON parser: DRF's, with a body-size limit and a nesting limit.

DRF's ``JSONParser`` turns only ``ValueError`` into a 400, so a body of 5,000 nested brackets (10 kB) escaped as a
``RecursionError`` (500) on every JSON endpoint, anonymous ones included; and it read bodies of any size. Here a
body above ``API_MAX_BODY_BYTES`` answers 413 before it is parsed, and one nested deeper than ``API_MAX_JSON_DEPTH``
answers 400; neither reaches a view. A string holding a NUL character (``"\u0000"``, in a value or a key) is a 400
field error naming where it is: PostgreSQL text and jsonb cannot hold one, so a value that reached a lookup (a slug
field) or a JSON column failed with ``DataError`` (500).
"""

from __future__ import annotations

import json

from django.conf import settings
from django.utils.translation import gettext, gettext_lazy
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError, ValidationError
from rest_framework.parsers import JSONParser


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = gettext_lazy("The request body is too large.")
    default_code = "body_too_large"


def json_depth_exceeds(value, limit: int) -> bool:
    """Whether ``value`` (parsed JSON) nests lists/objects deeper than ``limit``; stops at the first that does."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


NUL = "\x00"
NUL_MESSAGE = gettext_lazy("May not contain a NUL character.")


def nul_path(value, path: str = "") -> str | None:
    """The dotted path (``field``, ``field.0``, ``provenance.supplier``) of a string in ``value`` (parsed JSON,
    already known to be shallow) that contains a NUL character, ``"non_field_errors"`` for the top level; None when
    there is none."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                return where or "non_field_errors"
        elif isinstance(item, dict):
            for key, child in item.items():
                name = f"{where}.{key}" if where else str(key)
                if NUL in str(key):
                    return name.replace(NUL, "\\u0000")
                stack.append((child, name))
        elif isinstance(item, list):
            stack.extend((child, f"{where}.{index}" if where else str(index)) for index, child in enumerate(item))
    return None


class LimitedJSONParser(JSONParser):
    """``JSONParser`` that refuses oversized bodies (413) and deep nesting (400) instead of failing with a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise BodyTooLarge(gettext("The request body is larger than %(limit)s bytes.") % {"limit": limit})
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = json.loads(raw.decode(encoding), parse_constant=_refuse_constant)
        except RecursionError:
            raise ParseError(gettext("JSON parse error - nested too deeply.")) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(gettext("JSON parse error - %(error)s") % {"error": exc}) from None
        if json_depth_exceeds(data, settings.API_MAX_JSON_DEPTH):
            raise ParseError(
                gettext("JSON parse error - nested deeper than %(depth)s levels.")
                % {"depth": settings.API_MAX_JSON_DEPTH}
            )
        if (where := nul_path(data)) is not None:
            raise ValidationError({where: [NUL_MESSAGE]})
        return data


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")

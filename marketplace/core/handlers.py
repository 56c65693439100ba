"""One exception handler for the API: every error answers ``{"detail": str, "errors": {field: [messages]}}``."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError
from django.http import Http404
from django.utils.translation import gettext
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from marketplace.core.exceptions import ApplicationError
from marketplace.core.locks import Busy, is_contention


def _flatten(detail) -> dict[str, list[str]]:
    """DRF error detail (dict / list / str, nested) → ``{field: [messages]}``; nested fields use dotted names."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            for sub, messages in _flatten(value).items():
                name = key if sub == "non_field_errors" else f"{key}.{sub}"
                out.setdefault(name, []).extend(messages)
        return out
    if isinstance(detail, list):
        out = {}
        for index, item in enumerate(detail):
            if isinstance(item, dict):
                for sub, messages in _flatten(item).items():
                    out.setdefault(f"{index}.{sub}" if sub != "non_field_errors" else str(index), []).extend(messages)
            else:
                out.setdefault("non_field_errors", []).append(str(item))
        return out
    return {"non_field_errors": [str(detail)]}


def error_body(detail: str, errors: dict[str, list[str]] | None = None) -> dict:
    return {"detail": detail, "errors": errors or {}}


def api_exception_handler(exc, context):
    """Map ``ApplicationError``, Django and DRF exceptions to the one error format. Unknown errors re-raise (500).

    A deadlock or serialization failure that escaped the services' retries (``marketplace.core.locks``) answers
    409 ``Busy`` like an exhausted retry: contention is the client's cue to retry, never a server error."""
    if isinstance(exc, DatabaseError) and is_contention(exc):
        exc = Busy()
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.message, exc.errors), status=exc.status)
    if isinstance(exc, DjangoValidationError):
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(error_body(gettext("Invalid input."), errors), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        detail = gettext("Invalid input.")
        if list(errors) == ["non_field_errors"] and len(errors["non_field_errors"]) == 1:
            detail = errors["non_field_errors"][0]
        response.data = error_body(detail, errors)
    else:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        response.data = error_body(detail)
    return response

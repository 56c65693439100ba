"""OpenAPI: every operation documents the error answers it can give, in the one error shape.

drf-spectacular documents the 2xx answer of each view only; the exception handler (``marketplace.core.handlers``)
answers ``{"detail", "errors"}`` with 400/401/403/404/409/413/422/429 on every route. This post-processing hook
adds those to each operation (leaving any a view declares itself), so clients and schema-driven tests know them.

``filterset_parameters`` documents the query parameters of a django-filter ``FilterSet`` a view parses itself.
"""

from __future__ import annotations

import django_filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "what went wrong, in plain words"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "messages per field (dotted names for nested fields); empty when none",
        },
    },
    "required": ["detail", "errors"],
}
WRITE_METHODS = {"post", "put", "patch", "delete"}
DESCRIPTIONS = {
    "400": "Invalid input: field errors in ``errors``.",
    "401": "Not logged in (send ``Authorization: Token <token>``).",
    "403": "Logged in but not allowed.",
    "404": "No such object (objects of other organizations answer 404 too), or no such page of a list.",
    "409": "Conflicts with the current state (capacity or funds short, a status change not allowed, or the exchange "
    "busy: retry).",
    "413": "The request body is too large.",
    "422": "The Idempotency-Key was already used with another request.",
    "429": "Too many requests.",
}


def _codes(path: str, method: str, operation: dict) -> list[str]:
    codes = ["400", "403", "404"]  # 404 too for lists: a page number past the last page
    if {} not in operation.get("security", []):  # ``{}`` in the list: anonymous callers are allowed
        codes.append("401")
    if method in WRITE_METHODS:
        codes += ["409", "413", "422"]
    if method in WRITE_METHODS and {} in operation.get("security", []):
        codes.append("429")  # anonymous writes (token, sign-up, confirmations) are rate-limited
    return codes


def add_error_responses(result, generator, request, public):
    """drf-spectacular ``POSTPROCESSING_HOOKS`` entry: the error answers of every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/Error"}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for code in _codes(path, method, operation):
                responses.setdefault(
                    code, {"description": DESCRIPTIONS[code], "content": {"application/json": {"schema": reference}}}
                )
    return result


def filterset_parameters(filterset_class, descriptions: dict[str, str] | None = None) -> list:
    """The query parameters of a django-filter ``FilterSet`` as drf-spectacular ``OpenApiParameter``s, for views
    that parse their parameters with a filter set themselves (no filter backend for drf-spectacular to read).

    Multiple-choice filters are repeatable (``?accelerator=a&accelerator=b``), choices are enums, booleans,
    numbers and date-times are typed; ``descriptions`` (by name) says what each does."""
    descriptions = descriptions or {}
    parameters = []
    for name, spec in filterset_class.base_filters.items():
        kind, enum, many = OpenApiTypes.STR, None, False
        field_class = getattr(spec, "field_class", None)
        if isinstance(spec, django_filters.ModelMultipleChoiceFilter | django_filters.MultipleChoiceFilter):
            many = True
        elif isinstance(spec, django_filters.ChoiceFilter):
            enum = [str(key) for key, _ in spec.extra.get("choices", []) if key not in ("", None)]
        elif isinstance(spec, django_filters.BooleanFilter):
            kind = OpenApiTypes.BOOL
        elif isinstance(spec, django_filters.NumberFilter):
            kind = OpenApiTypes.INT if spec.extra.get("decimal_places") == 0 else OpenApiTypes.DECIMAL
        elif field_class is not None and issubclass(field_class, forms.DateTimeField):
            kind = OpenApiTypes.DATETIME
        parameters.append(
            OpenApiParameter(
                name,
                kind,
                OpenApiParameter.QUERY,
                required=False,
                enum=enum,
                many=many or None,
                explode=True if many else None,
                description=descriptions.get(name, ""),
            )
        )
    return parameters

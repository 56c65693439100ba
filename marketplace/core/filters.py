"""Query-string filters of list APIs, validated by serializers: a bad value answers 400 with a field message
instead of silently listing nothing."""

from __future__ import annotations

from rest_framework import serializers


def status_filter_serializer(class_name: str, choices, *, name: str = "status") -> type[serializers.Serializer]:
    """A serializer class for ``?status=`` (or ``?<name>=``: one of ``choices``; absent or empty = no filter); also
    what the schema documents (``extend_schema(parameters=[...])``)."""
    field = serializers.ChoiceField(choices=choices, required=False, allow_blank=True)
    return type(class_name, (serializers.Serializer,), {name: field, "__doc__": f"Filter by {name}."})


def validated_query(serializer_class: type[serializers.Serializer], request) -> dict:
    """The request's query parameters, validated by ``serializer_class``, empty values dropped. Raises DRF's
    ``ValidationError`` (400 with field messages) on a bad value."""
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    return {name: value for name, value in query.validated_data.items() if value not in ("", None)}

"""API fields shared by the apps."""

from __future__ import annotations

from django.utils.translation import gettext_lazy
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers


class StrictPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """``PrimaryKeyRelatedField`` that takes whole numbers only: DRF's passes 1.5 to the lookup, which the database
    column truncates to 1, so a float id silently named another object."""

    def to_internal_value(self, data):
        whole = isinstance(data, int) and not isinstance(data, bool)
        if not whole and not (isinstance(data, str) and data.isascii() and data.isdigit()):
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(data)


class BoundedManyRelatedField(serializers.ManyRelatedField):
    """``ManyRelatedField`` (what ``many=True`` builds) with ``max_length``, checked BEFORE any item is looked up:
    DRF's looks up each item with its own query, so a list of 10,001 slugs took 3.3 s of server time before any
    error. Longer lists are a field error; the schema shows ``maxItems``.

        eligible_accelerators = BoundedManyRelatedField(
            child_relation=serializers.SlugRelatedField(slug_field="slug", queryset=Accelerator.objects.all()),
            max_length=200, required=False)
    """

    default_error_messages = {"max_length": gettext_lazy("Ensure this list has no more than {max_length} items.")}

    def __init__(self, child_relation=None, *args, max_length: int, **kwargs):
        self.max_length = max_length
        super().__init__(child_relation, *args, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str) and hasattr(data, "__len__") and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


class BoundedManyRelatedFieldExtension(OpenApiSerializerFieldExtension):
    """drf-spectacular: ``BoundedManyRelatedField`` is an array with ``maxItems`` (it does not read the validators of
    related fields)."""

    target_class = BoundedManyRelatedField

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        return {**schema, "maxItems": self.target.max_length}

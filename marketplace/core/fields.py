"""API fields shared by the apps."""

from __future__ import annotations

from rest_framework import serializers


class StrictPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """``PrimaryKeyRelatedField`` that takes whole numbers only: DRF's passes 1.5 to the lookup, which the database
    column truncates to 1, so a float id silently named another object."""

    def to_internal_value(self, data):
        whole = isinstance(data, int) and not isinstance(data, bool)
        if not whole and not (isinstance(data, str) and data.isascii() and data.isdigit()):
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(data)

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework import serializers

from accounts.models import CITY_CHOICES
from listings.models import Accelerator
from market.models import Fixing
from market.selectors import CSV_COLUMNS


class FixingQuerySerializer(serializers.Serializer):
    """The index filters: ``accelerator`` (slug), ``city``, ``from`` and ``to`` (UTC days, both included)."""

    accelerator = serializers.CharField(required=False, help_text="accelerator slug, e.g. ascend-910b")
    city = serializers.ChoiceField(choices=CITY_CHOICES, required=False)
    from_ = serializers.DateField(required=False, help_text="first day (YYYY-MM-DD, UTC), included")
    to = serializers.DateField(required=False, help_text="last day (YYYY-MM-DD, UTC), included")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")  # a Python keyword: declared as from_
        return fields

    def validate_accelerator(self, value: str) -> Accelerator:
        accelerator = Accelerator.objects.filter(slug=value).first()
        if accelerator is None:
            raise serializers.ValidationError(_("Give a known accelerator slug."))
        return accelerator

    def validate(self, attrs):
        if attrs.get("from") and attrs.get("to") and attrs["to"] < attrs["from"]:
            raise serializers.ValidationError({"to": [_("The end of the date range is before its start.")]})
        return attrs


class FixingSerializer(serializers.ModelSerializer):
    accelerator = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Fixing
        fields = CSV_COLUMNS
        read_only_fields = fields

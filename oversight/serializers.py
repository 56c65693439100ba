"""Audit API serializers: events, spend report rows and query, flags and their review."""

from rest_framework import serializers

from audit.models import AuditEvent
from oversight.models import AnomalyFlag
from oversight.reports import GROUPS


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(
        source="actor.username",
        default=None,
        read_only=True,
        allow_null=True,
        help_text="username; null for changes the system made (sweeps, settlement)",
    )

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "seq",
            "created_at",
            "actor",
            "organization_id",
            "action",
            "object_type",
            "object_id",
            "data",
            "ip",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields


class EventFilterSerializer(serializers.Serializer):
    action = serializers.CharField(required=False, max_length=64)
    object_type = serializers.CharField(required=False, max_length=64)
    organization = serializers.IntegerField(required=False, min_value=1)


class SpendQuerySerializer(serializers.Serializer):
    group_by = serializers.ChoiceField(choices=GROUPS, default="city")


class SpendRowSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    bookings = serializers.IntegerField()
    held = serializers.DecimalField(max_digits=16, decimal_places=2)
    captured = serializers.DecimalField(max_digits=16, decimal_places=2)
    reimbursed = serializers.DecimalField(max_digits=16, decimal_places=2)
    spent = serializers.DecimalField(max_digits=16, decimal_places=2)
    budget_total = serializers.DecimalField(max_digits=16, decimal_places=2, allow_null=True)
    budget_used = serializers.DecimalField(max_digits=6, decimal_places=4, allow_null=True)


class SpendTotalsSerializer(serializers.Serializer):
    bookings = serializers.IntegerField(
        help_text="sum of the rows' bookings (a booking paid by vouchers of several groups counts in each)"
    )
    held = serializers.DecimalField(max_digits=16, decimal_places=2)
    captured = serializers.DecimalField(max_digits=16, decimal_places=2)
    reimbursed = serializers.DecimalField(max_digits=16, decimal_places=2)
    spent = serializers.DecimalField(max_digits=16, decimal_places=2)


class SpendReportSerializer(serializers.Serializer):
    """``GET /audit/spend/``: the grouping, one row per group and the column totals."""

    group_by = serializers.ChoiceField(choices=GROUPS)
    results = SpendRowSerializer(many=True)
    totals = SpendTotalsSerializer()


class FlagFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=AnomalyFlag.Status.choices, required=False)
    kind = serializers.ChoiceField(choices=AnomalyFlag.Kind.choices, required=False)


class AnomalyFlagSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(
        source="reviewer.username",
        default=None,
        read_only=True,
        allow_null=True,
        help_text="username; null until reviewed",
    )

    class Meta:
        model = AnomalyFlag
        fields = [
            "id",
            "kind",
            "status",
            "booking",
            "voucher",
            "program",
            "organization",
            "details",
            "created_at",
            "reviewer",
            "reviewed_at",
            "review_note",
        ]
        read_only_fields = fields


class FlagReviewSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=[AnomalyFlag.Status.DISMISSED, AnomalyFlag.Status.CONFIRMED])
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")

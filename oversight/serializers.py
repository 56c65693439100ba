"""Audit API serializers: events, spend report rows and query, flags and their review, the signed log's tree heads,
proofs and exports."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from accounts.models import CITY_CHOICES
from audit.models import AuditEvent
from audit.tree import head_document
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

    leaf_index = serializers.SerializerMethodField(
        help_text="the event's position in the signed log (GET …/events/{id}/proof/); null until the sequencer has "
        "appended it (seconds after its transaction commits)"
    )

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "leaf_index",
            "created_at",
            "actor",
            "organization_id",
            "action",
            "object_type",
            "object_id",
            "data",
            "ip",
        ]
        read_only_fields = fields

    def get_leaf_index(self, event) -> int | None:
        leaf = getattr(event, "leaf", None)
        return None if leaf is None else leaf.leaf_index


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


# --- the signed log (RFC 9162 transparency log) -------------------------------------------------------------------

_HEX = "lowercase hex"


class TreeHeadSerializer(serializers.Serializer):
    """A signed tree head. The Ed25519 signature covers the canonical JSON (UTF-8, keys sorted, no spaces) of exactly
    ``{"root_hash", "timestamp", "tree_size"}`` as given here; ``key_id`` is the hex SHA-256 of the raw 32-byte
    public key (``GET /audit/public-key/?key_id=…``; heads signed before a key rotation name a previous key, listed
    with the current one at ``GET /audit/public-keys/``)."""

    tree_size = serializers.IntegerField(help_text="how many events the log held")
    root_hash = serializers.CharField(help_text=f"RFC 9162 Merkle tree hash of those events' leaves, {_HEX}")
    timestamp = serializers.CharField(help_text="when it was signed, ISO 8601 UTC ending in Z (signed as written)")
    signature = serializers.CharField(help_text="Ed25519 signature, base64")
    key_id = serializers.CharField(help_text=f"SHA-256 of the raw public key, {_HEX}")

    def to_representation(self, instance):
        return head_document(instance)


class PublicKeyQuerySerializer(serializers.Serializer):
    key_id = serializers.RegexField(
        r"^[0-9a-f]{64}$",
        required=False,
        help_text=f"the key id a tree head names (SHA-256 of the raw public key, {_HEX}): that key, current or "
        "previous (default: the current signing key)",
        error_messages={"invalid": _("A key id is 64 lowercase hex characters (SHA-256 of the raw public key).")},
    )


class PublicKeySerializer(serializers.Serializer):
    """One of the exchange's audit signing keys, by its public half: the current one or a previous (rotated) one
    whose tree heads still verify."""

    key_id = serializers.CharField(help_text=f"SHA-256 of the raw public key, {_HEX}; tree heads name it")
    public_key = serializers.CharField(help_text="the Ed25519 public key, PEM (SubjectPublicKeyInfo)")
    current = serializers.BooleanField(help_text="true for the key that signs new tree heads (listed first)")


class ProofQuerySerializer(serializers.Serializer):
    tree_size = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="prove the event in the tree of this many leaves (default: the newest signed head's size)",
    )


class InclusionProofSerializer(serializers.Serializer):
    leaf_index = serializers.IntegerField(help_text="the event's leaf index (0-based)")
    leaf = serializers.CharField(
        help_text="the event's canonical JSON (the leaf hash is SHA-256(0x00 ‖ its UTF-8 bytes)); keys: id, "
        "created_at, actor, organization, action, object_type, object_id, data, ip"
    )
    audit_path = serializers.ListField(
        child=serializers.CharField(), help_text=f"RFC 9162 §2.1.3 inclusion proof, lowest level first, {_HEX}"
    )


class ConsistencyQuerySerializer(serializers.Serializer):
    first = serializers.IntegerField(min_value=0, help_text="the older tree size")
    second = serializers.IntegerField(min_value=0, help_text="the newer tree size (at most the newest head's)")

    def validate(self, attrs):
        if attrs["first"] > attrs["second"]:
            raise serializers.ValidationError({"first": [_("Must not be larger than second.")]})
        return attrs


class ConsistencyProofSerializer(serializers.Serializer):
    proof = serializers.ListField(
        child=serializers.CharField(),
        help_text=f"RFC 9162 §2.1.4 consistency proof ({_HEX}); empty when first is 0 or equals second",
    )


class ExportQuerySerializer(serializers.Serializer):
    group_by = serializers.ChoiceField(choices=GROUPS, default="city", help_text="the spend report's grouping")
    since = serializers.DateTimeField(required=False, help_text="events recorded at or after (ISO 8601)")
    until = serializers.DateTimeField(required=False, help_text="events recorded before (ISO 8601)")
    previous_tree_size = serializers.IntegerField(
        required=False,
        min_value=0,
        help_text="the size of a signed head you kept from an earlier export: the export adds it and the "
        "consistency proof from it to the newest head",
    )
    statement = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="only the voucher spend events of this reimbursement statement's lines (its claims' bookings)",
    )

    def validate(self, attrs):
        if attrs.get("since") and attrs.get("until") and attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": [_("Must be after since.")]})
        return attrs


# --- idle capacity of a city (orders.capacity_selectors.idle_capacity) --------------------------------------------


class IdleCapacityQuerySerializer(serializers.Serializer):
    city = serializers.ChoiceField(choices=CITY_CHOICES, help_text="the city whose data centres are shown")


def _node_hours(help_text: str, *, source: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.DecimalField(max_digits=14, decimal_places=1),
        source=source,
        help_text=f"{help_text}, one per day",
    )


def _node_hours_total(help_text: str) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=16, decimal_places=1, help_text=f"{help_text} over the days")


class IdleCapacitySeriesSerializer(serializers.Serializer):
    listed_node_hours = _node_hours(
        "node-hours offered by active listings (node count × listed hours)", source="listed"
    )
    booked_node_hours = _node_hours("node-hours of active reservations", source="booked")
    idle_node_hours = _node_hours("listed less booked node-hours, never below 0", source="idle")
    listed_total = _node_hours_total("listed node-hours")
    booked_total = _node_hours_total("booked node-hours")
    idle_total = _node_hours_total("idle node-hours")
    utilisation_percent = serializers.DecimalField(
        max_digits=4,
        decimal_places=1,
        allow_null=True,
        help_text="booked ÷ listed node-hours over the days, in percent; null when nothing is listed",
    )


class IdleCapacityRowSerializer(IdleCapacitySeriesSerializer):
    accelerator = serializers.CharField(help_text="accelerator slug")
    accelerator_name = serializers.CharField()
    domestic = serializers.BooleanField(help_text="a domestic chip (Ascend, Cambricon …)")
    provider_id = serializers.IntegerField()
    provider = serializers.CharField(help_text="the provider's name")


class IdleCapacitySerializer(serializers.Serializer):
    """``GET /market/idle-capacity/``: listed vs booked node-hours of a city's clusters, per day for 14 days, by
    accelerator and provider, with the city's totals."""

    city = serializers.CharField()
    start = serializers.DateTimeField(help_text="the first day's start: midnight in the reader's time zone")
    end = serializers.DateTimeField(help_text="the end of the last day (exclusive)")
    days = serializers.ListField(child=serializers.DateTimeField(), help_text="each day's start")
    rows = IdleCapacityRowSerializer(many=True)
    totals = IdleCapacitySeriesSerializer()

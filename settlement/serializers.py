from rest_framework import serializers

from ledger.models import Entry, JournalTransaction
from marketplace.core.filters import status_filter_serializer
from settlement.models import Payout, ReimbursementClaim, ReimbursementStatement


class EntrySerializer(serializers.ModelSerializer):
    account = serializers.SerializerMethodField()
    account_kind = serializers.CharField(source="account.kind")
    owner_id = serializers.IntegerField(source="account.owner_id", allow_null=True)

    class Meta:
        model = Entry
        fields = ["account", "account_kind", "owner_id", "amount"]

    def get_account(self, entry) -> str:
        return str(entry.account)


class MovementSerializer(serializers.ModelSerializer):
    entries = EntrySerializer(many=True, read_only=True)

    class Meta:
        model = JournalTransaction
        fields = ["id", "kind", "reference", "idempotency_key", "memo", "created_at", "entries"]


PayoutFilterSerializer = status_filter_serializer("PayoutFilterSerializer", Payout.Status.choices)
ClaimFilterSerializer = status_filter_serializer("ClaimFilterSerializer", ReimbursementClaim.Status.choices)


class PayoutSerializer(serializers.ModelSerializer):
    provider_name = serializers.CharField(source="provider.name", read_only=True)
    bookings = serializers.SerializerMethodField()

    class Meta:
        model = Payout
        fields = [
            "id",
            "provider",
            "provider_name",
            "amount",
            "status",
            "period_until",
            "paid_at",
            "created_at",
            "bookings",
        ]

    def get_bookings(self, payout) -> list[int]:
        return sorted(s.booking_id for s in payout.settlements.all())


class ClaimSerializer(serializers.ModelSerializer):
    program_name = serializers.CharField(source="program.name", read_only=True)

    class Meta:
        model = ReimbursementClaim
        fields = ["id", "program", "program_name", "booking", "amount", "status", "created_at", "paid_at", "statement"]


class StatementFilterSerializer(serializers.Serializer):
    """Query of ``GET /statements/``: unknown programs give an empty list, bad values a 400."""

    program = serializers.IntegerField(required=False, min_value=1)
    status = serializers.ChoiceField(choices=ReimbursementStatement.Status.choices, required=False)


class StatementSerializer(serializers.ModelSerializer):
    program_name = serializers.CharField(source="program.name", read_only=True)
    issuer = serializers.IntegerField(source="program.issuer_id", read_only=True)
    issuer_name = serializers.CharField(source="program.issuer.name", read_only=True)
    claim_count = serializers.IntegerField(read_only=True)
    paid_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = ReimbursementStatement
        fields = [
            "id",
            "program",
            "program_name",
            "issuer",
            "issuer_name",
            "period_start",
            "period_end",
            "total",
            "status",
            "claim_count",
            "issued_at",
            "paid_at",
            "paid_by",
        ]


class StatementLineSerializer(serializers.ModelSerializer):
    """One claim on a statement: the booking it reimburses, who provided and who bought the compute."""

    provider = serializers.IntegerField(source="booking.listing.cluster.data_center.provider_id", read_only=True)
    provider_name = serializers.CharField(source="booking.listing.cluster.data_center.provider.name", read_only=True)
    startup = serializers.IntegerField(source="booking.buyer_id", read_only=True)
    startup_name = serializers.CharField(source="booking.buyer.name", read_only=True)
    booking_start = serializers.DateTimeField(source="booking.start", read_only=True)
    booking_end = serializers.DateTimeField(source="booking.end", read_only=True)

    class Meta:
        model = ReimbursementClaim
        fields = [
            "id",
            "booking",
            "booking_start",
            "booking_end",
            "provider",
            "provider_name",
            "startup",
            "startup_name",
            "amount",
            "status",
            "created_at",
        ]


class StatementDetailSerializer(StatementSerializer):
    """A statement with its lines; the view sets ``lines`` (``selectors.statement_lines``)."""

    claims = StatementLineSerializer(source="lines", many=True, read_only=True)

    class Meta(StatementSerializer.Meta):
        fields = [*StatementSerializer.Meta.fields, "claims"]

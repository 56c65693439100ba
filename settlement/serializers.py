from rest_framework import serializers

from ledger.models import Entry, JournalTransaction
from settlement.models import BookingSettlement, Payout, ReimbursementClaim


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


class SettlementSerializer(serializers.ModelSerializer):
    class Meta:
        model = BookingSettlement
        fields = ["booking", "subtotal", "cash_amount", "voucher_amount", "fee", "provider_amount", "payout",
                  "settled_at"]


class PayoutSerializer(serializers.ModelSerializer):
    bookings = serializers.SerializerMethodField()

    class Meta:
        model = Payout
        fields = ["id", "provider", "amount", "status", "period_until", "paid_at", "created_at", "bookings"]

    def get_bookings(self, payout) -> list[int]:
        return sorted(s.booking_id for s in payout.settlements.all())


class ClaimSerializer(serializers.ModelSerializer):
    program_name = serializers.CharField(source="program.name", read_only=True)

    class Meta:
        model = ReimbursementClaim
        fields = ["id", "program", "program_name", "booking", "amount", "status", "created_at", "paid_at"]

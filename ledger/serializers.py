"""Wallet API shapes. Amounts travel as strings with 2 places (DRF's Decimal rendering), never floats."""

from decimal import Decimal

from rest_framework import serializers

from marketplace.core.money import AMOUNT_DIGITS, AMOUNT_PLACES


class WalletSerializer(serializers.Serializer):
    organization = serializers.IntegerField()
    currency = serializers.CharField()
    balance = serializers.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES)
    held = serializers.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES)


class WalletEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField(source="transaction.created_at")
    account = serializers.CharField(source="account.kind")
    amount = serializers.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES)
    balance_after = serializers.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES)
    kind = serializers.CharField(source="transaction.kind")
    reference = serializers.CharField(source="transaction.reference")
    transaction = serializers.IntegerField(source="transaction_id")


class DepositInputSerializer(serializers.Serializer):
    """A bank transfer received for a startup. ``organization`` is checked to be a startup by the view's caller."""

    organization = serializers.IntegerField(min_value=1)
    amount = serializers.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES, min_value=Decimal("0.01"))
    reference = serializers.CharField(max_length=80, help_text="The bank transfer's reference (unique per transfer).")


class DepositSerializer(serializers.Serializer):
    transaction = serializers.IntegerField(source="id")
    organization = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES)
    reference = serializers.CharField()
    created_at = serializers.DateTimeField()
    wallet = WalletSerializer()

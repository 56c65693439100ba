"""Request and response shapes of the resale API (issue 21)."""

from __future__ import annotations

from rest_framework import serializers

from marketplace.core.filters import status_filter_serializer
from orders.models import ResaleAsk, ResaleSale
from orders.serializers import AwareDateTimeField, BookingSerializer

ASK_STATUS_HELP = "one of " + ", ".join(ResaleAsk.Status.values)


class ResellRequestSerializer(serializers.Serializer):
    nodes = serializers.IntegerField(min_value=1, max_value=100_000, help_text="how many of the booking's nodes")
    start = AwareDateTimeField(help_text="a whole UTC hour in the future, inside the booking's window")
    end = AwareDateTimeField(help_text="a whole UTC hour after start, inside the booking's window")
    price_per_gpu_hour = serializers.DecimalField(
        max_digits=12,
        decimal_places=4,
        help_text="your price per GPU-hour (CNY), more than zero and at least the booking's voucher-funded share "
        "per GPU-hour",
    )


class ResaleBuyRequestSerializer(serializers.Serializer):
    nodes = serializers.IntegerField(min_value=1, max_value=100_000, help_text="whole nodes of the ask")
    start = AwareDateTimeField(help_text="a whole UTC hour in the future, inside the ask's window")
    end = AwareDateTimeField(help_text="a whole UTC hour after start, inside the ask's window")


class ResaleAskSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True, help_text=ASK_STATUS_HELP)
    booking = serializers.IntegerField(source="booking_id", read_only=True)
    seller = serializers.IntegerField(source="seller_id", read_only=True)
    listing = serializers.IntegerField(source="listing_id", read_only=True)
    cluster = serializers.IntegerField(source="listing.cluster_id", read_only=True)
    accelerator = serializers.CharField(source="listing.cluster.accelerator.slug", read_only=True)
    city = serializers.CharField(source="listing.cluster.data_center.city", read_only=True)
    gpus_per_node = serializers.IntegerField(source="listing.cluster.gpus_per_node", read_only=True)

    class Meta:
        model = ResaleAsk
        fields = [
            "id",
            "status",
            "booking",
            "seller",
            "listing",
            "cluster",
            "accelerator",
            "city",
            "gpus_per_node",
            "nodes",
            "nodes_left",
            "start",
            "end",
            "price_per_gpu_hour",
            "withdrawn_note",
            "created_at",
        ]
        read_only_fields = fields


class ResaleSaleSerializer(serializers.ModelSerializer):
    ask = serializers.IntegerField(source="ask_id", read_only=True)
    seller_booking = serializers.IntegerField(source="seller_booking_id", read_only=True)
    booking = BookingSerializer(read_only=True, help_text="your new booking (confirmed; paid here, amounts zero)")
    voucher_return = serializers.DecimalField(
        max_digits=16,
        decimal_places=2,
        read_only=True,
        help_text="part of amount returned to the seller's vouchers (the voucher-funded share of the time)",
    )

    class Meta:
        model = ResaleSale
        fields = [
            "id",
            "ask",
            "seller_booking",
            "booking",
            "nodes",
            "start",
            "end",
            "gpu_hours",
            "price_per_gpu_hour",
            "amount",
            "voucher_return",
            "fee",
            "seller_amount",
            "created_at",
        ]
        read_only_fields = fields


class ResaleAskFilterSerializer(serializers.Serializer):
    mine = serializers.BooleanField(
        required=False, default=False, help_text="true: your organizations' asks in every status; else open asks"
    )
    status = serializers.ChoiceField(
        choices=ResaleAsk.Status.choices, required=False, allow_blank=True, help_text="with mine=true"
    )
    accelerator = serializers.ListField(
        child=serializers.SlugField(max_length=40), required=False, default=list, help_text="slug; repeatable"
    )
    city = serializers.CharField(required=False, allow_blank=True, max_length=32)
    start = AwareDateTimeField(required=False, help_text="the ask's window starts at or before this")
    end = AwareDateTimeField(required=False, help_text="the ask's window ends at or after this")
    max_price = serializers.DecimalField(max_digits=12, decimal_places=4, min_value=0, required=False)


ResaleAskStatusFilterSerializer = status_filter_serializer("ResaleAskStatusFilterSerializer", ResaleAsk.Status.choices)

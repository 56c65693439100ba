"""Request and response shapes of the bookings API."""

from __future__ import annotations

from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy
from rest_framework import serializers

from listings.serializers import ListingSerializer
from marketplace.core.filters import status_filter_serializer
from orders.models import Bid, Booking, BookingStatusChange
from orders.selectors import reserved_node_indexes


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 datetime that must carry its offset: DRF would silently read a naive one as UTC."""

    default_error_messages = {"naive": gettext_lazy("Give a timezone-aware time (UTC), e.g. 2030-01-01T10:00:00Z.")}

    def to_internal_value(self, value):
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:  # well-formed but impossible ("12:99"): DRF's parser answers 400 below
                parsed = None
            if parsed is not None and parsed.tzinfo is None:
                self.fail("naive")
        return super().to_internal_value(value)


class QuoteRequestSerializer(serializers.Serializer):
    listing = serializers.IntegerField(min_value=1)
    nodes = serializers.IntegerField(
        min_value=1, max_value=100_000, error_messages={"min_value": gettext_lazy("Book at least one node.")}
    )
    start = AwareDateTimeField()
    end = AwareDateTimeField()
    vouchers = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        default=list,
        max_length=10,
        help_text="ids of your vouchers to pay part of the subtotal",
    )


class BookingRequestSerializer(QuoteRequestSerializer):
    confirm = serializers.BooleanField(
        required=False, default=False, help_text="true: book and confirm in one call (no hold period)"
    )


class VoucherPartSerializer(serializers.Serializer):
    voucher = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=16, decimal_places=2)
    rule = serializers.CharField(
        help_text="the limit that bound this part: coverage_ratio, balance, annual_cap, "
        "per_booking_cap, stacking_limit or stacking_rule"
    )
    explanation = serializers.CharField(help_text="the same, in plain words")


class QuoteSerializer(serializers.Serializer):
    listing = serializers.IntegerField(source="listing_id")
    nodes = serializers.IntegerField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    hours = serializers.IntegerField()
    gpu_hours = serializers.IntegerField()
    price_per_gpu_hour = serializers.DecimalField(max_digits=12, decimal_places=4)
    subtotal = serializers.DecimalField(max_digits=16, decimal_places=2)
    voucher_parts = VoucherPartSerializer(many=True)
    voucher_amount = serializers.DecimalField(max_digits=16, decimal_places=2)
    cash_amount = serializers.DecimalField(max_digits=16, decimal_places=2)


STATUS_HELP = "one of " + ", ".join(Booking.Status.values)


class BookingStatusChangeSerializer(serializers.ModelSerializer):
    # Plain strings in the schema: one enum per app would collide on the name "status" in the OpenAPI components.
    from_status = serializers.CharField(read_only=True, help_text="empty for the creation; else " + STATUS_HELP)
    to_status = serializers.CharField(read_only=True, help_text=STATUS_HELP)
    actor = serializers.CharField(
        source="actor.username",
        default=None,
        read_only=True,
        allow_null=True,
        help_text="username; null for changes the system made (expiry, start, settlement)",
    )

    class Meta:
        model = BookingStatusChange
        fields = ["from_status", "to_status", "actor", "note", "created_at"]


class BookingSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True, help_text=STATUS_HELP)
    listing = serializers.IntegerField(source="listing_id")
    buyer = serializers.IntegerField(source="buyer_id")

    class Meta:
        model = Booking
        fields = [
            "id",
            "status",
            "buyer",
            "listing",
            "nodes",
            "start",
            "end",
            "gpu_hours",
            "price_per_gpu_hour",
            "subtotal",
            "voucher_amount",
            "cash_amount",
            "hold_expires_at",
            "created_at",
        ]


class BookingDetailSerializer(BookingSerializer):
    reserved_nodes = serializers.SerializerMethodField(help_text="cluster node numbers held by this booking")
    status_changes = BookingStatusChangeSerializer(many=True, read_only=True)

    class Meta(BookingSerializer.Meta):
        fields = [*BookingSerializer.Meta.fields, "reserved_nodes", "status_changes"]

    def get_reserved_nodes(self, booking) -> list[int]:
        return reserved_node_indexes(booking)


class BookingCreatedSerializer(BookingSerializer):
    """The 201 answer to a booking: built from what ``booking_create`` returned, without reading it back.

    Output only, and on every booking: its fields are built once per process rather than per instance (a
    ModelSerializer derives each field from the model again for every object, which cost more than the rest of
    the serialization). They keep no per-request state: plain values, no context, no request.
    """

    _fields_once: list | None = None

    @property
    def _readable_fields(self):
        cls = type(self)
        if cls.__dict__.get("_fields_once") is None:
            cls._fields_once = [field for field in self.fields.values() if not field.write_only]
        return cls._fields_once

    reserved_nodes = serializers.ListField(
        child=serializers.IntegerField(), read_only=True, help_text="cluster node numbers held by this booking"
    )

    class Meta(BookingSerializer.Meta):
        fields = [*BookingSerializer.Meta.fields, "reserved_nodes"]


# --- bids ---------------------------------------------------------------------------------------------------------


class BidRequestSerializer(serializers.Serializer):
    accelerators = serializers.ListField(
        child=serializers.SlugField(max_length=40),
        min_length=1,
        max_length=20,
        help_text='accelerator slugs you accept, e.g. ["h100", "ascend-910b"]',
    )
    nodes = serializers.IntegerField(min_value=1, max_value=100_000)
    duration_hours = serializers.IntegerField(min_value=1, max_value=24 * 90)
    earliest_start = AwareDateTimeField()
    latest_end = AwareDateTimeField()
    max_price_per_gpu_hour = serializers.DecimalField(
        max_digits=12,
        decimal_places=4,
        min_value=0,
        help_text="your limit per GPU-hour. Without vouchers it bounds the listing's price. With vouchers it bounds "
        "the NET price, the cash you pay per GPU-hour after them (price less the vouchers' part ÷ "
        "GPU-hours): the bid may fill on a listing priced above it when the vouchers bring the cash "
        "within it. The hold is this limit × the largest GPU-hours a fill may take (the most cash).",
    )
    expires_at = AwareDateTimeField(required=False, default=None, help_text="default: the last possible start")
    vouchers = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        default=list,
        max_length=10,
        help_text="ids of your vouchers to pay part of the fill: the bid is matched only with listings where ALL "
        "of them may pay, cheapest net price first",
    )


class BidSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True, help_text="one of open, matched, cancelled, expired")
    buyer = serializers.IntegerField(source="buyer_id")
    accelerators = serializers.SlugRelatedField(many=True, read_only=True, slug_field="slug")
    booking = serializers.IntegerField(source="booking_id", allow_null=True)

    class Meta:
        model = Bid
        fields = [
            "id",
            "status",
            "buyer",
            "accelerators",
            "nodes",
            "duration_hours",
            "earliest_start",
            "latest_end",
            "max_price_per_gpu_hour",
            "max_gpus_per_node",
            "vouchers",
            "expires_at",
            "held_amount",
            "booking",
            "created_at",
        ]


class BidDetailSerializer(BidSerializer):
    booking = BookingSerializer(read_only=True, allow_null=True)


class DepthLevelSerializer(serializers.Serializer):
    price = serializers.DecimalField(max_digits=12, decimal_places=4)
    gpus = serializers.IntegerField()


class DepthSerializer(serializers.Serializer):
    accelerator = serializers.CharField()
    asks = DepthLevelSerializer(many=True, help_text="price levels of active listings, GPUs free next hour")
    bids = DepthLevelSerializer(many=True, help_text="open bids' maximum prices, GPUs asked")


# --- listing search by what I will pay --------------------------------------------------------------------------


class NetPriceListingSerializer(ListingSerializer):
    """A search result when ``vouchers`` were given: the listing plus what the buyer pays per GPU-hour after them."""

    net_price_per_gpu_hour = serializers.DecimalField(
        max_digits=12,
        decimal_places=4,
        read_only=True,
        allow_null=True,
        help_text="cash per GPU-hour after your vouchers, for one node over your window (start/end), else over the "
        "listing's minimum hours; null where one of them may not pay for this listing, and when no vouchers "
        "were given",
    )

    class Meta(ListingSerializer.Meta):
        fields = [*ListingSerializer.Meta.fields, "net_price_per_gpu_hour"]
        read_only_fields = fields

    def to_representation(self, listing) -> dict:
        # ListingSerializer builds its rows by hand (speed); the one more column the same way.
        net = getattr(listing, "net_price_per_gpu_hour", None)  # set only when vouchers were given
        return {**super().to_representation(listing), "net_price_per_gpu_hour": None if net is None else str(net)}


BookingFilterSerializer = status_filter_serializer("BookingFilterSerializer", Booking.Status.choices)
BidFilterSerializer = status_filter_serializer("BidFilterSerializer", Bid.Status.choices)

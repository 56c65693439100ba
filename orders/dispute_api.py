"""API of booking disputes (issue 20, ``orders.disputes``): the buyer's ``POST /bookings/{id}/dispute/`` and, for
platform staff, ``GET /disputes/`` (open ones first) and ``POST /disputes/{id}/resolve/``."""

from __future__ import annotations

from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Organization
from accounts.permissions import IsPlatformStaff
from accounts.selectors import acting_organization
from listings.agent_serializers import PrintableCharField
from marketplace.core.exceptions import NotFound
from orders import disputes, selectors
from orders.models import BookingDispute


class DisputeSerializer(serializers.ModelSerializer):
    class Meta:
        model = BookingDispute
        fields = ["id", "booking", "status", "reason", "credit_amount", "resolution_note", "created_at", "resolved_at"]


class DisputeOpenSerializer(serializers.Serializer):
    reason = PrintableCharField(max_length=2000)


class DisputeResolveSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=list(disputes.DECISIONS))
    amount = serializers.DecimalField(
        max_digits=14, decimal_places=2, required=False, allow_null=True, help_text="for a partial credit"
    )
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class BookingDisputeApi(APIView):
    """The buyer disputes a booking (from its start until 48 h after its end, before it is settled): settlement
    waits until platform staff resolve it. Other organizations' bookings answer 404."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=DisputeOpenSerializer, responses={201: DisputeSerializer})
    def post(self, request, pk: int):
        booking = selectors.bookings_bought_by(request.user).filter(pk=pk).first()
        if booking is None:
            raise NotFound(gettext("No such booking."))
        acting_organization(
            request.user, kind=Organization.Kind.STARTUP, organization_id=booking.buyer_id, for_write=True
        )
        data = DisputeOpenSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dispute = disputes.dispute_open(booking=booking, actor=request.user, reason=data.validated_data["reason"])
        return Response(DisputeSerializer(dispute).data, status=status.HTTP_201_CREATED)


class DisputeListApi(generics.ListAPIView):
    """Every dispute, open ones first (platform staff)."""

    permission_classes = [IsAuthenticated, IsPlatformStaff]
    serializer_class = DisputeSerializer
    filter_backends: list = []

    def get_queryset(self):
        return disputes.disputes_for_review()


class DisputeResolveApi(APIView):
    """Platform staff resolve a dispute: ``credit`` the whole subtotal, a ``partial`` credit of ``amount``, or
    ``reject`` with a ``note``. Settlement pays the credit when it next runs (within a minute)."""

    permission_classes = [IsAuthenticated, IsPlatformStaff]

    @extend_schema(request=DisputeResolveSerializer, responses={200: DisputeSerializer})
    def post(self, request, pk: int):
        data = DisputeResolveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dispute = disputes.dispute_resolve(dispute=pk, actor=request.user, **data.validated_data)
        return Response(DisputeSerializer(dispute).data)

"""Settlement API: a booking's money movements, payouts for providers, reimbursement claims for issuers."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsIssuerMember, IsPlatformStaff, IsProviderMember
from ledger.models import JournalTransaction
from marketplace.core.exceptions import NotFound
from settlement import selectors, services
from settlement.models import ReimbursementClaim
from settlement.serializers import ClaimSerializer, MovementSerializer, PayoutSerializer


class BookingMovementsApi(generics.ListAPIView):
    """Every ledger transaction of one booking (hold, release, capture, settle, claim paid) with its entries,
    oldest first. Members of the buyer or the provider; others get 404."""

    serializer_class = MovementSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no booking in the URL
            return JournalTransaction.objects.none()
        booking = selectors.booking_for_progress(self.request.user, self.kwargs["booking_id"])
        return selectors.booking_movements(booking.pk)


class PayoutListApi(generics.ListAPIView):
    """Payouts of your provider organizations, newest first, each with the bookings it covers."""

    serializer_class = PayoutSerializer
    permission_classes = [IsAuthenticated, IsProviderMember]

    def get_queryset(self):
        return selectors.payouts_visible_to(self.request.user).prefetch_related("settlements")


class PayoutDetailApi(generics.RetrieveAPIView):
    serializer_class = PayoutSerializer
    permission_classes = [IsAuthenticated, IsProviderMember]

    def get_queryset(self):
        return selectors.payouts_visible_to(self.request.user).prefetch_related("settlements")


class ClaimListApi(generics.ListAPIView):
    """Reimbursement claims against your programs, newest first; ``?status=open|paid`` filters."""

    serializer_class = ClaimSerializer
    permission_classes = [IsAuthenticated, IsIssuerMember]

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=ReimbursementClaim.Status.values)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        status = self.request.query_params.get("status") or None
        if status is not None and status not in ReimbursementClaim.Status.values:
            status = "__none__"
        return selectors.claims_visible_to(self.request.user, status=status)


class ClaimMarkPaidApi(APIView):
    """The city paid this claim: bank → reimbursement due in the ledger, the claim becomes ``paid``. Repeating it
    changes nothing. Another issuer's claim answers 404."""

    permission_classes = [IsAuthenticated, IsIssuerMember]

    @extend_schema(request=None, responses={200: ClaimSerializer})
    def post(self, request, pk):
        claim = selectors.claims_visible_to(request.user).filter(pk=pk).first()
        if claim is None:
            raise NotFound("No such claim.")
        claim = services.claim_mark_paid(claim=claim, actor=request.user)
        return Response(ClaimSerializer(claim).data)


class PayoutMarkPaidApi(APIView):
    """Platform staff record that a payout's bank transfer was made: provider payable → bank, ``paid``."""

    permission_classes = [IsAuthenticated, IsPlatformStaff]

    @extend_schema(request=None, responses={200: PayoutSerializer})
    def post(self, request, pk):
        payout = services.payout_mark_paid(payout=pk, actor=request.user)
        return Response(PayoutSerializer(payout).data)

"""Settlement API: a booking's money movements, payouts for providers (and platform staff, who pay them),
reimbursement claims and statements for issuers."""

from __future__ import annotations

from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsIssuerMember, IsPlatformStaff
from ledger.models import JournalTransaction
from marketplace.core.exceptions import ApplicationError, NotFound
from marketplace.core.filters import validated_query
from marketplace.core.idempotency import SCHEMA_PARAMETER as IDEMPOTENCY_HEADER
from marketplace.core.idempotency import idempotent
from settlement import payout_services, selectors
from settlement.models import Payout, ReimbursementStatement
from settlement.serializers import (
    ClaimFilterSerializer,
    ClaimSerializer,
    MovementSerializer,
    PayoutFilterSerializer,
    PayoutSerializer,
    StatementDetailSerializer,
    StatementFilterSerializer,
    StatementSerializer,
)


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


class CanReadPayouts(BasePermission):
    message = gettext_lazy("Only provider members and platform staff can read payouts.")

    def has_permission(self, request, view):
        return selectors.can_read_payouts(request.user)


class PayoutListApi(generics.ListAPIView):
    """Payouts of your provider organizations (every provider's for platform staff, who make the transfers), newest
    first, each with the bookings it covers; ``?status=pending|paid`` filters."""

    serializer_class = PayoutSerializer
    permission_classes = [IsAuthenticated, CanReadPayouts]

    @extend_schema(parameters=[PayoutFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user to scope by
            return Payout.objects.none()
        query = validated_query(PayoutFilterSerializer, self.request)
        return selectors.payouts_visible_to(self.request.user, status=query.get("status")).prefetch_related(
            "settlements"
        )


class PayoutDetailApi(generics.RetrieveAPIView):
    """One payout with the bookings it covers. Another provider's answers 404."""

    serializer_class = PayoutSerializer
    permission_classes = [IsAuthenticated, CanReadPayouts]

    def get_queryset(self):
        return selectors.payouts_visible_to(self.request.user).prefetch_related("settlements")


class ClaimListApi(generics.ListAPIView):
    """Reimbursement claims against your programs, newest first; ``?status=open|paid`` filters."""

    serializer_class = ClaimSerializer
    permission_classes = [IsAuthenticated, IsIssuerMember]

    @extend_schema(parameters=[ClaimFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = validated_query(ClaimFilterSerializer, self.request)
        return selectors.claims_visible_to(self.request.user, status=query.get("status"))


class ClaimMarkPaidApi(APIView):
    """The city paid this claim: bank → reimbursement due in the ledger, the claim becomes ``paid``. Repeating it
    changes nothing. Another issuer's claim answers 404."""

    permission_classes = [IsAuthenticated, IsIssuerMember]

    @extend_schema(request=None, responses={200: ClaimSerializer})
    def post(self, request, pk):
        claim = selectors.claims_visible_to(request.user).filter(pk=pk).first()
        if claim is None:
            raise NotFound(gettext("No such claim."))
        claim = payout_services.claim_mark_paid(claim=claim, actor=request.user)
        return Response(ClaimSerializer(claim).data)


class PayoutMarkPaidApi(APIView):
    """Platform staff record that a payout's bank transfer was made: provider payable → bank, ``paid``."""

    permission_classes = [IsAuthenticated, IsPlatformStaff]

    @extend_schema(request=None, responses={200: PayoutSerializer})
    def post(self, request, pk):
        payout = payout_services.payout_mark_paid(payout=pk, actor=request.user)
        return Response(PayoutSerializer(payout).data)


class CanReadStatements(BasePermission):
    message = gettext_lazy("Only voucher issuers, platform staff and auditors can read reimbursement statements.")

    def has_permission(self, request, view):
        return selectors.can_read_statements(request.user)


class StatementListApi(generics.ListAPIView):
    """Reimbursement statements of your programs (every program's for platform staff and auditors), latest period
    first; ``?program=<id>`` and ``?status=issued|paid`` filter."""

    serializer_class = StatementSerializer
    permission_classes = [IsAuthenticated, CanReadStatements]

    @extend_schema(parameters=[StatementFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user to scope by
            return ReimbursementStatement.objects.none()
        query = validated_query(StatementFilterSerializer, self.request)
        return selectors.statements_visible_to(
            self.request.user, program_id=query.get("program"), status=query.get("status")
        )


class StatementDetailApi(APIView):
    """One statement with the claims it lists (booking, provider, startup, amount). Another city's answers 404."""

    permission_classes = [IsAuthenticated, CanReadStatements]

    @extend_schema(responses={200: StatementDetailSerializer})
    def get(self, request, pk):
        statement = selectors.statement_for(request.user, pk)
        statement.lines = list(selectors.statement_lines(statement))
        return Response(StatementDetailSerializer(statement).data)


class StatementPayApi(APIView):
    """The city paid this statement: one ledger posting bank → reimbursement due for its total, the statement and
    its claims become ``paid``. Repeating it changes nothing. Issuer members of the program and platform staff;
    auditors get 403, another city's issuer 404. Accepts ``Idempotency-Key``."""

    permission_classes = [IsAuthenticated, CanReadStatements]

    @extend_schema(request=None, responses={200: StatementDetailSerializer}, parameters=[IDEMPOTENCY_HEADER])
    @idempotent
    def post(self, request, pk):
        statement = selectors.statement_for(request.user, pk)
        if not selectors.can_pay_statement(request.user, statement):
            raise ApplicationError(
                gettext("Only the program's issuer or platform staff can mark a statement paid."),
                status=403,
                code="permission_denied",
            )
        statement = payout_services.statement_mark_paid(statement=statement, actor=request.user)
        statement = selectors.statement_for(request.user, statement.pk)
        statement.lines = list(selectors.statement_lines(statement))
        return Response(StatementDetailSerializer(statement).data)

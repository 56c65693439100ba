"""Vouchers API: programs, applications, approve/reject, vouchers. Views validate, call one service, serialize.
Querysets come from ``vouchers.selectors``, so another organization's objects answer 404."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import ORG_HEADER
from accounts.models import Organization
from accounts.permissions import IsIssuerMember, IsStartupMember
from accounts.selectors import acting_organization_for
from marketplace.core.exceptions import ApplicationError
from marketplace.core.idempotency import SCHEMA_PARAMETER as IDEMPOTENCY_HEADER
from marketplace.core.idempotency import idempotent
from vouchers import selectors, services
from vouchers.models import VoucherApplication
from vouchers.serializers import (
    ApproveSerializer,
    RejectSerializer,
    VoucherApplicationCreateSerializer,
    VoucherApplicationSerializer,
    VoucherDetailSerializer,
    VoucherProgramSerializer,
    VoucherSerializer,
)

# The program's many-to-many rules, fetched with the programs the API answers with.
PROGRAM_LISTS = ("eligible_providers", "eligible_accelerators", "stack_excluded_programs")


class ProgramListCreateApi(generics.ListCreateAPIView):
    """``GET``: active programs, plus your issuer's drafts and closed ones. ``POST``: create and fund a program
    (issuer members); ``budget`` is moved into the program's ledger budget. Besides ratios and caps, a program has a
    level and stacking rules (the levels and programs its vouchers may be combined with, a combined cap), buyer
    cities, a subsidy period and an SME contract-size tier."""

    serializer_class = VoucherProgramSerializer

    def get_permissions(self):
        if self.request.method == "POST":
            return [IsAuthenticated(), IsIssuerMember()]
        return [IsAuthenticated()]

    def get_queryset(self):
        return selectors.programs_visible(self.request.user).prefetch_related(*PROGRAM_LISTS)

    @extend_schema(parameters=[ORG_HEADER])
    def post(self, request, *args, **kwargs):
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        program = services.program_create(
            issuer=acting_organization_for(request, Organization.Kind.ISSUER, for_write=True),
            actor=request.user,
            **data.validated_data,
        )
        return Response(self.get_serializer(program).data, status=status.HTTP_201_CREATED)


class ProgramDetailApi(generics.RetrieveUpdateAPIView):
    """``GET`` a visible program; ``PATCH`` rules or status of a program your issuer runs (others: 404)."""

    serializer_class = VoucherProgramSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self):
        if self.request.method == "PATCH":
            return selectors.programs_managed(self.request.user)
        return selectors.programs_visible(self.request.user).prefetch_related(*PROGRAM_LISTS)

    def patch(self, request, *args, **kwargs):
        program = self.get_object()
        data = self.get_serializer(program, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        if "budget" in values:
            raise ApplicationError(
                gettext("The budget is funded, not edited."),
                errors={"budget": [gettext("Fund the program instead of editing its budget.")]},
            )
        program = services.program_update(program=program, actor=request.user, **values)
        return Response(self.get_serializer(program).data)


class ApplicationCreateApi(APIView):
    """Apply to a program (startup members): ``{requested_amount, purpose, model_filing?}`` → 201."""

    permission_classes = [IsAuthenticated, IsStartupMember]

    @extend_schema(
        request=VoucherApplicationCreateSerializer,
        responses={201: VoucherApplicationSerializer},
        parameters=[ORG_HEADER],
    )
    def post(self, request, pk: int):
        program = get_object_or_404(selectors.programs_visible(request.user), pk=pk)
        data = VoucherApplicationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        application = services.application_submit(
            program=program,
            applicant=acting_organization_for(request, Organization.Kind.STARTUP, for_write=True),
            actor=request.user,
            **data.validated_data,
        )
        return Response(VoucherApplicationSerializer(application).data, status=status.HTTP_201_CREATED)


class ApplicationListApi(generics.ListAPIView):
    """Your organizations' applications and, for issuers, the queue of your programs. ``?status=`` filters."""

    serializer_class = VoucherApplicationSerializer

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=VoucherApplication.Status.values)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        qs = selectors.applications_visible(self.request.user)
        if status_filter := self.request.query_params.get("status"):
            qs = qs.filter(status=status_filter)
        return qs


class ApplicationApproveApi(APIView):
    """Approve with ``{face_value}`` (≤ requested, within the program's range): issues the voucher. 409 when the
    program budget is short or the application was decided. Accepts an ``Idempotency-Key`` header."""

    permission_classes = [IsAuthenticated, IsIssuerMember]

    @extend_schema(
        request=ApproveSerializer, responses={200: VoucherApplicationSerializer}, parameters=[IDEMPOTENCY_HEADER]
    )
    @idempotent
    def post(self, request, pk: int):
        application = get_object_or_404(selectors.applications_for_issuer(request.user), pk=pk)
        data = ApproveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.application_approve(application=application, actor=request.user, **data.validated_data)
        application.refresh_from_db()
        return Response(VoucherApplicationSerializer(application).data)


class ApplicationRejectApi(APIView):
    """Reject with ``{reason}``."""

    permission_classes = [IsAuthenticated, IsIssuerMember]

    @extend_schema(request=RejectSerializer, responses={200: VoucherApplicationSerializer})
    def post(self, request, pk: int):
        application = get_object_or_404(selectors.applications_for_issuer(request.user), pk=pk)
        data = RejectSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        application = services.application_reject(application=application, actor=request.user, **data.validated_data)
        return Response(VoucherApplicationSerializer(application).data)


class VoucherRevokeApi(APIView):
    """The issuer revokes a voucher its program issued (fraud, a broken condition): no new holds; its unheld balance
    returns to the program's budget; parts already held are still captured or released. Revoking an ended voucher
    changes nothing. The reason is recorded in the audit log."""

    permission_classes = [IsAuthenticated, IsIssuerMember]

    @extend_schema(request=RejectSerializer, responses={200: VoucherDetailSerializer})
    def post(self, request, pk: int):
        voucher = get_object_or_404(selectors.vouchers_issued_by(request.user), pk=pk)
        data = RejectSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        voucher = services.voucher_revoke(voucher=voucher, actor=request.user, reason=data.validated_data["reason"])
        balances = selectors.voucher_balances([voucher.pk])
        return Response(VoucherDetailSerializer(voucher, context={"balances": balances}).data)


class VoucherListApi(generics.ListAPIView):
    """Vouchers your organizations hold (and, for issuers, those your programs issued), with balance/held/spent."""

    serializer_class = VoucherSerializer

    def get_queryset(self):
        return selectors.vouchers_visible(self.request.user)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["balances"] = self._balances
        return context

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        self._balances = selectors.voucher_balances(v.pk for v in (page if page is not None else queryset))
        return page


class VoucherDetailApi(generics.RetrieveAPIView):
    """One voucher: balance, held, spent, expires_at and its redemptions (newest first)."""

    serializer_class = VoucherDetailSerializer

    def get_queryset(self):
        return selectors.vouchers_visible(self.request.user).prefetch_related("redemptions")

    def retrieve(self, request, *args, **kwargs):
        voucher = self.get_object()
        balances = selectors.voucher_balances([voucher.pk])
        return Response(VoucherDetailSerializer(voucher, context={"balances": balances}).data)

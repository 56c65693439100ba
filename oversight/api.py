"""Audit API: events, spend reports (JSON and CSV), anomaly flags and their review.

Auditors read everything; issuer members read their own organization's events, their programs' spend and flags;
startups and providers get 403. Views validate the query or body with a serializer, call one selector or service,
and serialize.
"""

from __future__ import annotations

import csv

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsAuditor
from audit.models import AuditEvent
from marketplace.core.spreadsheet import safe_cell
from oversight import flags, reports, scope
from oversight.models import AnomalyFlag
from oversight.serializers import (
    AnomalyFlagSerializer,
    AuditEventSerializer,
    EventFilterSerializer,
    FlagFilterSerializer,
    FlagReviewSerializer,
    SpendQuerySerializer,
    SpendReportSerializer,
)


class CanReadAudit(BasePermission):
    message = "Only auditors and voucher issuers can read audit data."

    def has_permission(self, request, view):
        return scope.can_read_audit(request.user)


def _query(serializer_class, request) -> dict:
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data


class _ScopedListView(generics.ListAPIView):
    """A paginated list of what the user may see (``visible(user, filters)``), filtered by ``filter_serializer``."""

    permission_classes = [CanReadAudit]
    filter_serializer: type
    model: type

    def visible(self, user, filters: dict):
        raise NotImplementedError

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user to scope by
            return self.model.objects.none()
        return self.visible(self.request.user, _query(self.filter_serializer, self.request))


@extend_schema_view(get=extend_schema(parameters=[EventFilterSerializer]))
class EventListView(_ScopedListView):
    """Audit events, newest first; filters ``action``, ``object_type``, ``organization`` (exact)."""

    serializer_class = AuditEventSerializer
    filter_serializer = EventFilterSerializer
    model = AuditEvent

    def visible(self, user, filters: dict):
        return scope.events_visible(user, **filters)


class SpendView(APIView):
    """Voucher spend grouped by ``group_by`` (city | program | provider | accelerator | month) with totals."""

    permission_classes = [CanReadAudit]

    @extend_schema(parameters=[SpendQuerySerializer], responses=SpendReportSerializer)
    def get(self, request):
        group_by = _query(SpendQuerySerializer, request)["group_by"]
        rows = reports.spend_report(group_by=group_by, issuer_ids=reports.spend_scope(request.user))
        report = {"group_by": group_by, "results": rows, "totals": reports.spend_totals(rows)}
        return Response(SpendReportSerializer(report).data)


def spend_csv_response(*, group_by: str, rows: list[dict]) -> HttpResponse:
    """A CSV download of a spend report: a header row, then one row per group (amounts as plain decimals)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="voucher-spend-by-{group_by}-{stamp}.csv"'
    writer = csv.writer(response)
    writer.writerow(["group_by", *reports.COLUMNS])
    for row in rows:
        writer.writerow([group_by, *(safe_cell(row.get(name)) for name in reports.COLUMNS)])
    return response


class SpendCsvView(APIView):
    """The spend report as a CSV attachment (same query and scope as ``/audit/spend/``)."""

    permission_classes = [CanReadAudit]

    @extend_schema(parameters=[SpendQuerySerializer], responses={(200, "text/csv"): str})
    def get(self, request):
        group_by = _query(SpendQuerySerializer, request)["group_by"]
        rows = reports.spend_report(group_by=group_by, issuer_ids=reports.spend_scope(request.user))
        return spend_csv_response(group_by=group_by, rows=rows)


@extend_schema_view(get=extend_schema(parameters=[FlagFilterSerializer]))
class FlagListView(_ScopedListView):
    """Anomaly flags, newest first; filters ``status`` and ``kind``."""

    serializer_class = AnomalyFlagSerializer
    filter_serializer = FlagFilterSerializer
    model = AnomalyFlag

    def visible(self, user, filters: dict):
        return scope.flags_visible(user).filter(**filters)


class FlagReviewView(APIView):
    """``{decision: dismissed|confirmed, note}``: an auditor reviews an open flag once (then 409)."""

    permission_classes = [IsAuditor]

    @extend_schema(request=FlagReviewSerializer, responses=AnomalyFlagSerializer)
    def post(self, request, pk: int):
        body = FlagReviewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        flag = flags.flag_review(flag=pk, actor=request.user, **body.validated_data)
        return Response(AnomalyFlagSerializer(flag).data)

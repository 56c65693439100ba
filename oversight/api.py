"""Audit API: events, spend reports (JSON and CSV), anomaly flags and their review, and the signed log (tree heads,
public keys, inclusion and consistency proofs, verifiable exports).

Auditors read everything; issuer members read their own organization's events, their programs' spend and flags;
startups and providers get 403. The signed log's heads, consistency proofs and public keys concern no organization
(every signed-in user; the public keys are public); an event's inclusion proof is for auditors and for members of the
organization the event concerns (``oversight.scope.event_for_proof``). Views validate the query or body with a
serializer, call one selector or service, and serialize.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsAuditor
from audit import exports, keys, selectors, signing, tree
from audit.models import AuditEvent
from marketplace.core.exceptions import ApplicationError, Conflict, NotFound
from marketplace.core.spreadsheet import safe_cell
from orders import capacity_selectors
from oversight import flags, reports, scope
from oversight.models import AnomalyFlag
from oversight.serializers import (
    AnomalyFlagSerializer,
    AuditEventSerializer,
    ConsistencyProofSerializer,
    ConsistencyQuerySerializer,
    EventFilterSerializer,
    ExportQuerySerializer,
    FlagFilterSerializer,
    FlagReviewSerializer,
    IdleCapacityQuerySerializer,
    IdleCapacitySerializer,
    InclusionProofSerializer,
    ProofQuerySerializer,
    PublicKeyQuerySerializer,
    PublicKeySerializer,
    SpendQuerySerializer,
    SpendReportSerializer,
    TreeHeadSerializer,
)

IDLE_CAPACITY_DAYS = 14


def capacity_start() -> dt.datetime:
    """Midnight today in the reader's time zone: the idle-capacity view's first day."""
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


class CanReadAudit(BasePermission):
    message = gettext_lazy("Only auditors and voucher issuers can read audit data.")

    def has_permission(self, request, view):
        return scope.can_read_audit(request.user)


def _query(serializer_class, request) -> dict:
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data


class _ScopedListApi(generics.ListAPIView):
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
class EventListApi(_ScopedListApi):
    """Audit events, newest first; filters ``action``, ``object_type``, ``organization`` (exact)."""

    serializer_class = AuditEventSerializer
    filter_serializer = EventFilterSerializer
    model = AuditEvent

    def visible(self, user, filters: dict):
        return scope.events_visible(user, **filters)


class SpendApi(APIView):
    """Voucher spend grouped by ``group_by`` (city | program | provider | accelerator | month) with totals."""

    permission_classes = [CanReadAudit]

    @extend_schema(parameters=[SpendQuerySerializer], responses=SpendReportSerializer)
    def get(self, request):
        group_by = _query(SpendQuerySerializer, request)["group_by"]
        rows = reports.spend_report(group_by=group_by, issuer_ids=reports.spend_scope(request.user))
        report = {"group_by": group_by, "results": rows, "totals": reports.spend_totals(rows)}
        return Response(SpendReportSerializer(report).data)


def audit_export_link(query: str) -> str:
    """A ``Link`` header value naming the audit export (``export.json``, with proofs) of a CSV's lines."""
    return f'<{reverse("api-audit-export")}?{query}>; rel="alternate"; type="application/json"'


def spend_csv_response(*, group_by: str, rows: list[dict]) -> HttpResponse:
    """A CSV download of a spend report: a header row, then one row per group (amounts as plain decimals)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="voucher-spend-by-{group_by}-{stamp}.csv"'
    # The same scope's spend events with their inclusion proofs, for ``python -m audit.verify``.
    response["Link"] = audit_export_link(urlencode({"group_by": group_by}))
    writer = csv.writer(response)
    writer.writerow(["group_by", *reports.COLUMNS])
    for row in rows:
        writer.writerow([group_by, *(safe_cell(row.get(name)) for name in reports.COLUMNS)])
    return response


class SpendCsvApi(APIView):
    """The spend report as a CSV attachment (same query and scope as ``/audit/spend/``)."""

    permission_classes = [CanReadAudit]

    @extend_schema(parameters=[SpendQuerySerializer], responses={(200, "text/csv"): str})
    def get(self, request):
        group_by = _query(SpendQuerySerializer, request)["group_by"]
        rows = reports.spend_report(group_by=group_by, issuer_ids=reports.spend_scope(request.user))
        return spend_csv_response(group_by=group_by, rows=rows)


@extend_schema_view(get=extend_schema(parameters=[FlagFilterSerializer]))
class FlagListApi(_ScopedListApi):
    """Anomaly flags, newest first; filters ``status`` and ``kind``."""

    serializer_class = AnomalyFlagSerializer
    filter_serializer = FlagFilterSerializer
    model = AnomalyFlag

    def visible(self, user, filters: dict):
        return scope.flags_visible(user).filter(**filters)


class FlagReviewApi(APIView):
    """``{decision: dismissed|confirmed, note}``: an auditor reviews an open flag once (then 409)."""

    permission_classes = [IsAuditor]

    @extend_schema(request=FlagReviewSerializer, responses=AnomalyFlagSerializer)
    def post(self, request, pk: int):
        body = FlagReviewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        flag = flags.flag_review(flag=pk, actor=request.user, **body.validated_data)
        return Response(AnomalyFlagSerializer(flag).data)


# --- the signed log ------------------------------------------------------------------------------------------------


def _newest_head():
    head = tree.latest_head()
    if head is None:
        raise NotFound(_("The audit log has no signed tree head yet."))
    return head


def _hex(digests: list[bytes]) -> list[str]:
    return [digest.hex() for digest in digests]


class TreeHeadApi(APIView):
    """The newest signed tree head of the audit log."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=TreeHeadSerializer)
    def get(self, request):
        return Response(TreeHeadSerializer(_newest_head()).data)


class TreeHeadListApi(generics.ListAPIView):
    """Every signed tree head, newest first (old heads are kept: each is the log as it was at that size)."""

    permission_classes = [IsAuthenticated]
    serializer_class = TreeHeadSerializer

    def get_queryset(self):
        return selectors.tree_heads()


class PublicKeyApi(APIView):
    """The Ed25519 public key that signs tree heads, as PEM (SubjectPublicKeyInfo) in ``text/plain``, its key id in
    the ``X-Audit-Key-Id`` header: save it and run ``python -m audit.verify --public-key key.pem export.json``. With
    ``?key_id=<hex>``: the key of that id, current or previous (heads signed before a key rotation name a previous
    key); 404 for a key id this exchange never signed with. Public: no login needed."""

    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[PublicKeyQuerySerializer],
        responses={(200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="PEM public key")},
    )
    def get(self, request):
        wanted = _query(PublicKeyQuerySerializer, request).get("key_id")
        if wanted is None:  # the current key: works even while AUDIT_PREVIOUS_PUBLIC_KEYS is malformed
            pem, wanted = keys.public_key_pem(), keys.key_id()
        else:
            public_key = keys.verification_keys().get(wanted)
            if public_key is None:
                raise NotFound(_("This exchange has no audit signing key with that key id, current or previous."))
            pem = signing.public_key_pem(public_key)
        response = HttpResponse(pem, content_type="text/plain; charset=us-ascii")
        response["X-Audit-Key-Id"] = wanted
        return response


class PublicKeyListApi(APIView):
    """Every audit signing key whose tree heads verify, current first, then the previous (rotated) keys: give them
    all to ``python -m audit.verify`` (``--public-key`` once each). Public: no login needed."""

    permission_classes = [AllowAny]

    @extend_schema(responses=PublicKeySerializer(many=True))
    def get(self, request):
        current = keys.key_id()
        published = [
            {"key_id": key_id, "public_key": signing.public_key_pem(public_key), "current": key_id == current}
            for key_id, public_key in keys.verification_keys().items()
        ]
        return Response(PublicKeySerializer(published, many=True).data)


class InclusionProofApi(APIView):
    """``?tree_size=N``: the RFC 9162 inclusion proof of event ``id`` in the tree of ``N`` leaves (default: the
    newest head's size). Auditors, and members of the organization the event concerns; 409 while the event is
    not in the log yet (the sequencer appends committed events within seconds)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(parameters=[ProofQuerySerializer], responses=InclusionProofSerializer)
    def get(self, request, pk: int):
        query = _query(ProofQuerySerializer, request)
        event = scope.event_for_proof(request.user, pk)
        leaf = getattr(event, "leaf", None)
        newest = _newest_head().tree_size
        if leaf is None or leaf.leaf_index >= newest:
            raise Conflict(_("This event is not in the signed log yet; try again in a few seconds."), code="pending")
        tree_size = query.get("tree_size", newest)
        if tree_size > newest:
            raise ValidationError({"tree_size": [_("The newest signed tree has %(size)d leaves.") % {"size": newest}]})
        if tree_size <= leaf.leaf_index:
            raise ValidationError(
                {
                    "tree_size": [
                        _("The event is leaf %(index)d: a tree of %(size)d leaves does not hold it.")
                        % {"index": leaf.leaf_index, "size": tree_size}
                    ]
                }
            )
        proof = {
            "leaf_index": leaf.leaf_index,
            "leaf": tree.event_leaf(event).decode("utf-8"),
            "audit_path": _hex(tree.inclusion_proof(leaf.leaf_index, tree_size)),
        }
        return Response(InclusionProofSerializer(proof).data)


class ConsistencyProofApi(APIView):
    """``?first=M&second=N``: the RFC 9162 consistency proof that the tree of ``M`` leaves is a prefix of the tree
    of ``N`` (``N`` at most the newest head's size)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(parameters=[ConsistencyQuerySerializer], responses=ConsistencyProofSerializer)
    def get(self, request):
        query = _query(ConsistencyQuerySerializer, request)
        newest = _newest_head().tree_size
        if query["second"] > newest:
            raise ValidationError({"second": [_("The newest signed tree has %(size)d leaves.") % {"size": newest}]})
        proof = tree.consistency_proof(query["first"], query["second"])
        return Response(ConsistencyProofSerializer({"proof": _hex(proof)}).data)


class AuditExportApi(APIView):
    """A spend report with proofs, as a ``gpux-audit-export/1`` JSON download that ``python -m audit.verify``
    checks offline with the public key (format in ``audit/verify.py``).

    ``entries``: the voucher spend events (``voucher.hold``, ``voucher.release``, ``voucher.capture``) of the
    programs in the caller's scope, recorded in ``[since, until)``, each with its leaf and inclusion proof against
    the newest signed head (``tree_heads``); with ``previous_tree_size``, that older head and the consistency proof
    to the newest too. ``report``: the spend report (``group_by``) as ``GET /audit/spend/`` gives it — not itself
    signed: its amounts can be recomputed from the entries' leaves (spent = holds − releases).
    ``pending_event_ids``: events in scope that the newest head does not hold yet. With ``statement``, only the
    spend events of that reimbursement statement's lines (404 for a statement the caller may not read); the spend
    CSVs and the statement CSV link here (``Link`` header, ``rel="alternate"``).
    """

    permission_classes = [CanReadAudit]

    @extend_schema(
        parameters=[ExportQuerySerializer],
        responses={(200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="gpux-audit-export/1")},
    )
    def get(self, request):
        query = _query(ExportQuerySerializer, request)
        event_ids = scope.spend_event_ids(
            request.user, since=query.get("since"), until=query.get("until"), statement_id=query.get("statement")
        )
        limit = settings.AUDIT_EXPORT_MAX_ENTRIES
        if len(event_ids) > limit:
            raise ApplicationError(
                _("Too many events for one export; choose a shorter period."),
                errors={"since": [_("At most %(limit)d events per export.") % {"limit": limit}]},
            )
        try:
            document = exports.export_document(event_ids, previous_tree_size=query.get("previous_tree_size"))
        except exports.NoTreeHead:
            raise NotFound(_("The audit log has no signed tree head yet.")) from None
        except exports.UnknownTreeHead:
            raise ValidationError({"previous_tree_size": [_("No signed tree head has this size.")]}) from None
        rows = reports.spend_report(group_by=query["group_by"], issuer_ids=reports.spend_scope(request.user))
        report = SpendReportSerializer(
            {"group_by": query["group_by"], "results": rows, "totals": reports.spend_totals(rows)}
        ).data
        document["report"] = report
        response = HttpResponse(
            json.dumps(document, ensure_ascii=False, separators=(",", ":")), content_type="application/json"
        )
        stamp = timezone.now().strftime("%Y%m%d")
        name = f"statement-{query['statement']}-{stamp}" if query.get("statement") else stamp
        response["Content-Disposition"] = f'attachment; filename="audit-export-{name}.json"'
        return response


class IdleCapacityApi(APIView):
    """Listed vs booked node-hours of one city's clusters for the next 14 days (from midnight today in the reader's
    time zone), by accelerator and provider: where vouchers could steer demand. For platform staff and auditors
    (every city) and a city's issuer members and auditors (their issuers' and programs' cities)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(parameters=[IdleCapacityQuerySerializer], responses=IdleCapacitySerializer)
    def get(self, request):
        city = scope.idle_capacity_city(request.user, _query(IdleCapacityQuerySerializer, request)["city"])
        view = capacity_selectors.idle_capacity(city=city, first=capacity_start(), days=IDLE_CAPACITY_DAYS)
        return Response(IdleCapacitySerializer(view).data)

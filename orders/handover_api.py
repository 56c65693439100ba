"""API of a booking's delivery (issue 20).

The agent's side (``Authorization: Agent <token>``): ``GET /agent/handovers/`` (the asking node's pending installs
and removals, paginated; ``?hostname=`` names the node when a token serves several hosts) and
``POST /agent/handovers/{id}/report/``. Another cluster's handover answers 404.

The buyer's and provider's side: ``GET /bookings/{id}/access/`` (connection instructions per node, incidents and
delivered node-hours), ``GET|POST /bookings/{id}/incidents/`` (the buyer reports one) and, for platform staff,
``GET /incidents/`` (the buyers' reports, those awaiting review first) and ``POST /incidents/{id}/resolve/``.
"""

from __future__ import annotations

from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Organization
from accounts.permissions import IsPlatformStaff
from accounts.selectors import acting_organization
from listings.agent_api import AgentApi
from listings.agent_serializers import HostnameField, PrintableCharField
from marketplace.core.exceptions import NotFound
from orders import handovers, selectors
from orders.models import AccessHandover, DeliveryIncident

LOGIN_USER_PATTERN = r"^[a-z_][a-z0-9_-]{0,31}$"


class AgentHandoverSerializer(serializers.ModelSerializer):
    node = serializers.IntegerField(source="node.index", help_text="the node number in its cluster")

    class Meta:
        model = AccessHandover
        fields = ["id", "booking", "node", "action", "login_user", "ssh_keys"]


class HandoverReportSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["installed", "removed", "failed"])
    host = HostnameField(required=False, allow_null=True)
    port = serializers.IntegerField(min_value=1, max_value=65535, required=False, allow_null=True)
    user = serializers.RegexField(LOGIN_USER_PATTERN, max_length=32, required=False, allow_null=True)
    detail = PrintableCharField(max_length=2000, required=False, allow_null=True, allow_blank=True)


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class HostnameQuerySerializer(serializers.Serializer):
    hostname = HostnameField(required=False)


class AgentHandoverListApi(AgentApi, generics.ListAPIView):
    """The asking node's pending handovers: ``install`` (with the buyer's keys) once a booking of it started,
    ``remove`` once it ended. Listed until reported."""

    serializer_class = AgentHandoverSerializer
    filter_backends: list = []

    @extend_schema(
        parameters=[
            OpenApiParameter("hostname", str, required=False, description="the asking host, for a shared token")
        ],
        responses={
            200: AgentHandoverSerializer(many=True),
            409: OpenApiResponse(
                ErrorSerializer, description="the token reports for several hosts: name one with ?hostname="
            ),
        },
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AccessHandover.objects.none()
        query = HostnameQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return handovers.agent_handovers(token=self.request.auth, hostname=query.validated_data.get("hostname"))


class AgentHandoverReportApi(AgentApi):
    """The agent's outcome of one handover: ``installed`` with the endpoint buyers use (host, port, user),
    ``removed``, or ``failed`` with a detail."""

    @extend_schema(request=HandoverReportSerializer, responses={200: AgentHandoverSerializer})
    def post(self, request, pk: int):
        data = HandoverReportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        handover = handovers.handover_report(token=request.auth, handover_id=pk, **data.validated_data)
        return Response(AgentHandoverSerializer(handover).data)


# --- the buyer's (and provider's) side ------------------------------------------------------------------------------


class IncidentSerializer(serializers.ModelSerializer):
    node = serializers.IntegerField(source="node.index", default=None, read_only=True)

    class Meta:
        model = DeliveryIncident
        fields = ["id", "node", "source", "status", "started_at", "ended_at", "description", "resolution_note"]


class IncidentForReviewSerializer(IncidentSerializer):
    """An incident as platform staff review it: which booking, whose, and when it was reported."""

    buyer = serializers.CharField(source="booking.buyer.name", read_only=True, help_text="the buyer's name")
    reported_at = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta(IncidentSerializer.Meta):
        fields = ["booking", "buyer", *IncidentSerializer.Meta.fields, "reported_at"]
        read_only_fields = fields


class IncidentQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=list(handovers.REVIEW_STATUSES),
        required=False,
        help_text="reported (awaiting review), closed (accepted) or rejected",
    )


class IncidentReportSerializer(serializers.Serializer):
    node = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False, allow_null=True)
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(required=False, allow_null=True)
    description = PrintableCharField(max_length=2000)


class IncidentResolveSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=list(handovers.RESOLUTIONS))
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class NodeAccessSerializer(serializers.Serializer):
    node = serializers.IntegerField()
    state = serializers.CharField(help_text="waiting | no_keys | pending | failed | ready | removing | removed")
    host = serializers.CharField(allow_null=True)
    port = serializers.IntegerField(allow_null=True)
    user = serializers.CharField(allow_null=True)
    ssh_command = serializers.CharField(allow_null=True)
    detail = serializers.CharField()
    updated_at = serializers.DateTimeField(allow_null=True)


class BookingAccessSerializer(serializers.Serializer):
    booking = serializers.IntegerField()
    status = serializers.CharField()
    nodes = NodeAccessSerializer(many=True)
    incidents = IncidentSerializer(many=True)
    reserved_node_hours = serializers.DecimalField(max_digits=12, decimal_places=2)
    incident_node_hours = serializers.DecimalField(max_digits=12, decimal_places=2)
    delivered_node_hours = serializers.DecimalField(max_digits=12, decimal_places=2)


def booking_access_data(booking) -> dict:
    incidents = list(handovers.booking_incidents(booking))
    delivery = handovers.booking_delivery(booking, incidents=incidents)
    return {
        "booking": booking.pk,
        "status": booking.status,
        "nodes": handovers.booking_node_access(booking),
        "incidents": incidents,
        "reserved_node_hours": delivery.reserved_node_hours,
        "incident_node_hours": delivery.incident_node_hours,
        "delivered_node_hours": delivery.delivered_node_hours,
    }


class BookingAccessApi(APIView):
    """How to connect to each booked node once the provider's agent installed the buyer's keys, the booking's
    incidents and its delivered node-hours (reserved minus incident hours). Buyer and provider; others 404."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: BookingAccessSerializer})
    def get(self, request, pk: int):
        booking = selectors.booking_detail(booking_id=pk, queryset=selectors.bookings_visible_to(request.user))
        return Response(BookingAccessSerializer(booking_access_data(booking)).data)


class BookingIncidentListCreateApi(generics.ListAPIView):
    """GET a booking's incidents (buyer and provider); POST: the buyer reports one (``node`` number or none for
    every node, ``started_at``, optional ``ended_at``, ``description``): it counts once platform staff accept it."""

    permission_classes = [IsAuthenticated]
    serializer_class = IncidentSerializer
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return DeliveryIncident.objects.none()
        booking = selectors.booking_detail(
            booking_id=self.kwargs["pk"], queryset=selectors.bookings_visible_to(self.request.user)
        )
        return handovers.booking_incidents(booking)

    @extend_schema(request=IncidentReportSerializer, responses={201: IncidentSerializer})
    def post(self, request, pk: int):
        booking = selectors.bookings_bought_by(request.user).filter(pk=pk).first() if str(pk).isdigit() else None
        if booking is None:
            raise NotFound(gettext("No such booking."))
        acting_organization(
            request.user, kind=Organization.Kind.STARTUP, organization_id=booking.buyer_id, for_write=True
        )
        data = IncidentReportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        incident = handovers.incident_report(booking=booking, actor=request.user, **data.validated_data)
        return Response(IncidentSerializer(incident).data, status=status.HTTP_201_CREATED)


class IncidentListApi(generics.ListAPIView):
    """The buyers' reported incidents, those awaiting review first, the longest waiting first (their bookings are
    not settled until platform staff decide), then the decided ones, the latest first; ``?status=`` keeps one
    status. Platform staff only."""

    permission_classes = [IsAuthenticated, IsPlatformStaff]
    serializer_class = IncidentForReviewSerializer
    filter_backends: list = []

    @extend_schema(parameters=[IncidentQuerySerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = IncidentQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return handovers.incidents_for_review(status=query.validated_data.get("status"))


class IncidentResolveApi(APIView):
    """Platform staff accept (it counts) or reject (with a note) a buyer's reported incident."""

    permission_classes = [IsAuthenticated, IsPlatformStaff]

    @extend_schema(request=IncidentResolveSerializer, responses={200: IncidentSerializer})
    def post(self, request, pk: int):
        incident = DeliveryIncident.objects.filter(pk=pk).first()
        if incident is None:
            raise NotFound(gettext("No such incident."))
        data = IncidentResolveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        incident = handovers.incident_resolve(incident=incident, actor=request.user, **data.validated_data)
        return Response(IncidentSerializer(incident).data)

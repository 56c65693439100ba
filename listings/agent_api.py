"""The provider agent's API (``Authorization: Agent <token>``): inventory and heartbeats; and the provider's API for
a cluster's agent tokens and nodes (session or ``Token`` auth, provider members).

The handovers half of the agent API needs bookings, so it lives in ``orders.handover_api``.
"""

from __future__ import annotations

from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Organization
from accounts.permissions import IsProviderMember
from accounts.selectors import acting_organization
from listings import agent_selectors, agent_services
from listings.agent_auth import AgentTokenAuthentication, IsClusterAgent
from listings.agent_serializers import (
    AgentNodeSerializer,
    AgentTokenCreatedSerializer,
    AgentTokenCreateSerializer,
    AgentTokenSerializer,
    HeartbeatAnswerSerializer,
    HeartbeatSerializer,
    InventoryAnswerSerializer,
    InventorySerializer,
)
from listings.models import AgentToken, Cluster
from listings.selectors import provider_clusters
from marketplace.core.exceptions import NotFound


class AgentApi(APIView):
    """Base of the agent's endpoints: the agent token only (no session, no user token), no throttling by user."""

    authentication_classes = [AgentTokenAuthentication]
    permission_classes = [IsClusterAgent]


class InventoryApi(AgentApi):
    """POST a node's inventory: binds the hostname to a node on first sight, stores it as the node's latest and
    compares it with the cluster's declared hardware (a mismatch blocks the cluster's vouchers)."""

    @extend_schema(request=InventorySerializer, responses={200: InventoryAnswerSerializer})
    def post(self, request):
        data = InventorySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        report = agent_services.inventory_report(token=request.auth, **data.validated_data)
        return Response(
            {
                "node": report.node.index,
                "hostname": data.validated_data["hostname"],
                "matches": not report.mismatched,
                "mismatches": report.mismatches,
            }
        )


class HeartbeatApi(AgentApi):
    """POST a heartbeat; ``sequence`` must exceed the node's last accepted one (else 409, nothing written)."""

    @extend_schema(request=HeartbeatSerializer, responses={200: HeartbeatAnswerSerializer})
    def post(self, request):
        data = HeartbeatSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        agent = agent_services.heartbeat_record(
            token=request.auth, hostname=fields["hostname"], sequence=fields["sequence"], gpus=fields["gpus"]
        )
        return Response({"node": agent.node.index, "sequence": agent.last_sequence, "healthy": agent.healthy})


# --- the provider's side -------------------------------------------------------------------------------------------


def provider_cluster(request, cluster_id, *, for_write: bool = False) -> Cluster:
    """One of the clusters of the providers ``request.user`` acts for (others' → 404); to write, the user must act
    for its (verified) provider."""
    cluster = provider_clusters(request.user).filter(pk=cluster_id).first()
    if cluster is None:
        raise NotFound(gettext("No such cluster."))
    if for_write:
        acting_organization(
            request.user,
            kind=Organization.Kind.PROVIDER,
            organization_id=cluster.data_center.provider_id,
            for_write=True,
        )
    return cluster


class AgentTokenListCreateApi(generics.ListAPIView):
    """GET a cluster's agent tokens (never their text); POST {name, login_user} creates one: its ``token`` is in
    this answer only."""

    permission_classes = [IsProviderMember]
    serializer_class = AgentTokenSerializer
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AgentToken.objects.none()
        return agent_selectors.cluster_tokens(provider_cluster(self.request, self.kwargs["cluster_id"]))

    @extend_schema(request=AgentTokenCreateSerializer, responses={201: AgentTokenCreatedSerializer})
    def post(self, request, cluster_id: int):
        cluster = provider_cluster(request, cluster_id, for_write=True)
        data = AgentTokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, raw = agent_services.agent_token_create(cluster=cluster, actor=request.user, **data.validated_data)
        token.token = raw
        return Response(AgentTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)


class AgentTokenRevokeApi(APIView):
    """POST revokes one of a cluster's agent tokens (409 when already revoked)."""

    permission_classes = [IsProviderMember]

    @extend_schema(request=None, responses={200: AgentTokenSerializer})
    def post(self, request, cluster_id: int, pk: int):
        cluster = provider_cluster(request, cluster_id, for_write=True)
        token = AgentToken.objects.filter(cluster=cluster, pk=pk).first()
        if token is None:
            raise NotFound(gettext("No such agent token."))
        token = agent_services.agent_token_revoke(token=token, actor=request.user)
        return Response(AgentTokenSerializer(token).data)


class AgentNodeListApi(generics.ListAPIView):
    """GET a cluster's nodes: bound host, last heartbeat, latest inventory and how it compares, open outages."""

    permission_classes = [IsProviderMember]
    serializer_class = AgentNodeSerializer
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return agent_selectors.cluster_nodes(0)
        return agent_selectors.cluster_nodes(provider_cluster(self.request, self.kwargs["cluster_id"]))


class AgentNodeReleaseApi(APIView):
    """POST unbinds node ``index`` from its host (hardware replaced): the next new hostname may take it."""

    permission_classes = [IsProviderMember]

    @extend_schema(request=None, responses={200: AgentNodeSerializer})
    def post(self, request, cluster_id: int, index: int):
        cluster = provider_cluster(request, cluster_id, for_write=True)
        agent_services.node_release(cluster=cluster, index=index, actor=request.user)
        node = agent_selectors.cluster_nodes(cluster).get(index=index)
        return Response(AgentNodeSerializer(node).data)

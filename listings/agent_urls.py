"""URLs of the provider agent's API and of a cluster's agent page (included by ``orders.delivery_urls``)."""

from django.urls import path

from listings import agent_api, agent_views

api_urlpatterns = [
    path("agent/inventory/", agent_api.InventoryApi.as_view(), name="api-agent-inventory"),
    path("agent/heartbeats/", agent_api.HeartbeatApi.as_view(), name="api-agent-heartbeats"),
    path(
        "clusters/<int:cluster_id>/agent-tokens/",
        agent_api.AgentTokenListCreateApi.as_view(),
        name="api-cluster-agent-tokens",
    ),
    path(
        "clusters/<int:cluster_id>/agent-tokens/<int:pk>/revoke/",
        agent_api.AgentTokenRevokeApi.as_view(),
        name="api-cluster-agent-token-revoke",
    ),
    path(
        "clusters/<int:cluster_id>/agent-nodes/", agent_api.AgentNodeListApi.as_view(), name="api-cluster-agent-nodes"
    ),
    path(
        "clusters/<int:cluster_id>/agent-nodes/<int:index>/release/",
        agent_api.AgentNodeReleaseApi.as_view(),
        name="api-cluster-agent-node-release",
    ),
]

urlpatterns = [
    path("provider/clusters/<int:cluster_id>/agent/", agent_views.cluster_agent, name="cluster-agent"),
    path(
        "provider/clusters/<int:cluster_id>/agent/tokens/<int:pk>/revoke/",
        agent_views.token_revoke,
        name="cluster-agent-token-revoke",
    ),
    path(
        "provider/clusters/<int:cluster_id>/agent/nodes/<int:index>/release/",
        agent_views.node_release,
        name="cluster-agent-node-release",
    ),
]

"""Cluster agent tokens: created and revoked by the provider's members (hashed, shown once, audited), and the
``Agent <token>`` authentication of the agent API (wrong, revoked, missing → 401, nothing written)."""

import hashlib

import pytest

from audit.models import AuditEvent
from listings.models import AgentToken, NodeAgent, NodeInventoryReport
from tests import factories
from tests.delivery.helpers import agent_client, agent_token, h100_cluster, h100_inventory

pytestmark = pytest.mark.django_db


def tokens_url(cluster):
    return f"/api/v1/clusters/{cluster.pk}/agent-tokens/"


def test_a_provider_member_creates_a_token_shown_once_and_stored_hashed(provider_client, cluster):
    # when
    response = provider_client.post(tokens_url(cluster), {"name": "rack 3", "login_user": "gpux"}, format="json")

    # then
    assert response.status_code == 201, response.json()
    text = response.json()["token"]
    assert text.startswith("gpuxa_") and len(text) > 40
    stored = AgentToken.objects.get(pk=response.json()["id"])
    assert stored.token_hash == hashlib.sha256(text.encode()).hexdigest()
    assert text not in {stored.token_hash, stored.prefix, stored.name}
    assert text.startswith(stored.prefix)
    listed = provider_client.get(tokens_url(cluster)).json()
    assert listed["count"] == 1 and "token" not in listed["results"][0]
    event = AuditEvent.objects.get(action="listings.agent_token_created")
    assert event.object_id == str(stored.pk) and text not in str(event.data)


def test_revoking_a_token_refuses_it_at_once_and_twice_is_409(provider_client, cluster):
    # given
    created = provider_client.post(tokens_url(cluster), {"name": "n1"}, format="json").json()
    agent = agent_client(created["token"])
    assert agent.post("/api/v1/agent/inventory/", h100_inventory(), format="json").status_code == 200

    # when
    revoked = provider_client.post(f"{tokens_url(cluster)}{created['id']}/revoke/")
    again = provider_client.post(f"{tokens_url(cluster)}{created['id']}/revoke/")

    # then
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert again.status_code == 409
    refused = agent.post("/api/v1/agent/inventory/", h100_inventory("gpu-node-02"), format="json")
    assert refused.status_code == 401
    assert NodeAgent.objects.filter(hostname="gpu-node-02").count() == 0
    assert AuditEvent.objects.filter(action="listings.agent_token_revoked").count() == 1


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Agent",
        "Agent gpuxa_not-a-real-token",
        "Agent gpuxa_a gpuxa_b",
        "Token gpuxa_whatever",
        "agent wrong",
    ],
)
def test_a_missing_or_wrong_token_answers_401_and_writes_nothing(api, cluster, header):
    # given
    agent_token(cluster)
    if header:
        api.credentials(HTTP_AUTHORIZATION=header)

    # when
    response = api.post("/api/v1/agent/inventory/", h100_inventory(), format="json")

    # then
    assert response.status_code == 401
    assert response.json()["detail"]
    assert not NodeAgent.objects.exists() and not NodeInventoryReport.objects.exists()


def test_another_providers_cluster_is_not_found(provider_client):
    # given
    other = h100_cluster(factories.ProviderFactory())

    # when
    listed = provider_client.get(tokens_url(other))
    created = provider_client.post(tokens_url(other), {"name": "x"}, format="json")

    # then
    assert listed.status_code == 404 and created.status_code == 404
    assert not AgentToken.objects.exists()


def test_startups_cannot_manage_tokens(startup_client, cluster):
    response = startup_client.post(tokens_url(cluster), {"name": "x"}, format="json")
    assert response.status_code == 403
    assert not AgentToken.objects.exists()


def test_an_unverified_provider_cannot_create_tokens(client_for):
    # given
    pending = factories.ProviderFactory(verification_status="pending")
    cluster = h100_cluster(pending)

    # when
    response = client_for(factories.member_of(pending)).post(tokens_url(cluster), {"name": "x"}, format="json")

    # then
    assert response.status_code == 403
    assert not AgentToken.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "login_user": "root"}, "login_user"),
        ({"name": "x", "login_user": "Bad User"}, "login_user"),
        ({"name": "x", "login_user": "a" * 33}, "login_user"),
        ({"name": ""}, "name"),
        ({"name": "x" * 81}, "name"),
        ({"name": "tab\there"}, "name"),
    ],
)
def test_bad_token_input_is_a_400_with_the_field(provider_client, cluster, body, field):
    response = provider_client.post(tokens_url(cluster), body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not AgentToken.objects.exists()


def test_a_token_authenticates_for_its_own_cluster_only(provider):
    # given: two clusters of one provider, a token of the first
    first, second = h100_cluster(provider), h100_cluster(provider, serials=[])
    agent = agent_client(agent_token(first))

    # when
    response = agent.post("/api/v1/agent/inventory/", h100_inventory(), format="json")

    # then: the host is bound in the token's cluster, never in the other
    assert response.status_code == 200
    assert NodeAgent.objects.get().cluster_id == first.pk
    assert not NodeAgent.objects.filter(cluster=second).exists()


def test_agent_tokens_do_not_open_the_rest_of_the_api(cluster, token):
    client = agent_client(token)
    assert client.get("/api/v1/bookings/").status_code in (401, 403)
    assert client.get(f"/api/v1/clusters/{cluster.pk}/agent-tokens/").status_code in (401, 403)

"""Pages of delivery: a cluster's agent page (token shown once, revoke, nodes), the buyer's SSH keys page, and the
booking page's access section with the incident form."""

import pytest
from django.test import Client

from accounts import keys
from accounts.models import SshPublicKey
from listings.models import AgentToken, NodeAgent
from orders.models import DeliveryIncident
from tests import factories
from tests.agent.helpers import ed25519_key
from tests.delivery.helpers import agent_client, agent_token, booking_on, h100_cluster, h100_inventory, hour
from tests.helpers import page_input

pytestmark = pytest.mark.django_db


def browser_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_cluster_agent_page_shows_a_new_token_once(cluster, provider_member):
    browser = browser_for(provider_member)
    url = f"/provider/clusters/{cluster.pk}/agent/"

    # when
    created = browser.post(url, {"name": "rack 1", "login_user": "gpux"})

    # then
    assert created.status_code == 200
    token = AgentToken.objects.get()
    text = created.content.decode()
    raw = text.split("<code>")[1].split("</code>")[0]
    assert raw.startswith(token.prefix) and len(raw) > 40
    assert created["Cache-Control"] == "no-store"
    later = browser.get(url).content.decode()
    assert raw not in later and token.prefix in later


def test_a_bad_token_form_is_a_400_in_place(cluster, provider_member):
    response = browser_for(provider_member).post(
        f"/provider/clusters/{cluster.pk}/agent/", {"name": "x", "login_user": "root"}
    )
    assert response.status_code == 400
    assert not AgentToken.objects.exists()


def test_the_page_lists_nodes_with_their_host_and_mismatch(cluster, provider_member):
    agent_client(agent_token(cluster)).post("/api/v1/agent/inventory/", h100_inventory("gpu-a"), format="json")
    page = browser_for(provider_member).get(f"/provider/clusters/{cluster.pk}/agent/").content.decode()
    assert "gpu-a" in page and "8 × NVIDIA H100 80GB HBM3" in page
    assert 'id="inventory-mismatch"' not in page


def test_revoke_and_release_from_the_page(cluster, provider_member):
    raw = agent_token(cluster)
    agent_client(raw).post("/api/v1/agent/inventory/", h100_inventory("gpu-a"), format="json")
    browser = browser_for(provider_member)
    token = AgentToken.objects.get()
    assert browser.post(f"/provider/clusters/{cluster.pk}/agent/tokens/{token.pk}/revoke/").status_code == 302
    assert browser.post(f"/provider/clusters/{cluster.pk}/agent/nodes/1/release/").status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None and not NodeAgent.objects.exists()


def test_another_providers_cluster_page_is_404(provider_member):
    other = h100_cluster(factories.ProviderFactory())
    assert browser_for(provider_member).get(f"/provider/clusters/{other.pk}/agent/").status_code == 404
    assert browser_for(provider_member).post(f"/provider/clusters/{other.pk}/agent/", {"name": "x"}).status_code == 404


def test_the_provider_page_links_each_cluster_to_its_agent_page(cluster, provider_member):
    page = browser_for(provider_member).get("/provider/").content.decode()
    assert f"/provider/clusters/{cluster.pk}/agent/" in page


def test_the_ssh_keys_page_adds_and_deletes(startup):
    browser = browser_for(factories.member_of(startup))
    assert browser.post("/organization/ssh-keys/", {"name": "", "public_key": "ssh-rsa AAAA"}).status_code == 400
    added = browser.post("/organization/ssh-keys/", {"name": "laptop", "public_key": ed25519_key(1) + "\n"})
    assert added.status_code == 302
    key = SshPublicKey.objects.get(organization=startup)
    assert key.fingerprint in browser.get("/organization/ssh-keys/").content.decode()
    assert browser.post(f"/organization/ssh-keys/{key.pk}/delete/").status_code == 302
    assert not SshPublicKey.objects.exists()


def test_the_booking_page_shows_how_to_connect(cluster, startup):
    # given: a running booking whose install the agent reported
    keys.ssh_key_add(organization=startup, name="k", public_key=ed25519_key(1))
    agent = agent_client(agent_token(cluster))
    agent.post("/api/v1/agent/inventory/", h100_inventory("a"), format="json")
    booking = booking_on(cluster, startup, start=hour(-1), end=hour(2), nodes=(1,))
    (item,) = agent.get("/api/v1/agent/handovers/").json()["results"]
    report = {"status": "installed", "host": "n1.example.cn", "port": 22, "user": "gpux"}
    agent.post(f"/api/v1/agent/handovers/{item['id']}/report/", report, format="json")

    # when
    page = browser_for(factories.member_of(startup)).get(f"/bookings/{booking.pk}/").content.decode()

    # then
    assert 'id="access"' in page
    assert "<code>ssh gpux@n1.example.cn</code>" in page
    assert 'id="report-incident"' in page
    assert "Delivered 3.00 of 3.00 node-hours" in page


def test_the_booking_page_incident_form_reports_one(cluster, startup):
    booking = booking_on(cluster, startup, start=hour(-3), end=hour(-1), nodes=(1,), status="completed")
    browser = browser_for(factories.member_of(startup))
    response = browser.post(
        f"/bookings/{booking.pk}/incidents/report/",
        {"node": "1", "started_at": page_input(hour(-2)), "ended_at": "", "description": "no GPU"},
    )
    assert response.status_code == 302
    incident = DeliveryIncident.objects.get()
    assert (incident.status, incident.started_at, incident.node.index) == ("reported", hour(-2), 1)
    bad = browser.post(
        f"/bookings/{booking.pk}/incidents/report/", {"started_at": page_input(hour(-5)), "description": "x"}
    )
    assert bad.status_code == 302 and DeliveryIncident.objects.count() == 1

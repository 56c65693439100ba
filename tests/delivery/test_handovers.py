"""Access handovers: installs at a booking's start for the asking node only (with the buyer's keys), the agent's
reports (endpoint, failures), removals at the end, the buyer's connection instructions; another cluster's agent
gets 404."""

import pytest
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange

from accounts import keys
from audit.models import AuditEvent
from orders.models import AccessHandover
from tests import factories
from tests.agent.helpers import ed25519_key, rsa_key
from tests.delivery.helpers import agent_client, agent_token, booking_on, h100_cluster, h100_inventory, hour

pytestmark = pytest.mark.django_db
LIST = "/api/v1/agent/handovers/"


def report_url(handover_id):
    return f"{LIST}{handover_id}/report/"


INSTALLED = {"status": "installed", "host": "n1.dc.example.cn", "port": 2222, "user": "gpux", "detail": None}


@pytest.fixture
def setup(cluster, startup):
    """Node 1 on host a (token a), node 2 on host b (token b); a running booking of node 1 by ``startup``."""
    a, b = agent_client(agent_token(cluster, "a")), agent_client(agent_token(cluster, "b"))
    assert a.post("/api/v1/agent/inventory/", h100_inventory("a"), format="json").json()["node"] == 1
    assert b.post("/api/v1/agent/inventory/", h100_inventory("b"), format="json").json()["node"] == 2
    keys.ssh_key_add(organization=startup, name="k", public_key=ed25519_key(1))
    booking = booking_on(cluster, startup, start=hour(-1), end=hour(2), nodes=(1,))
    return a, b, booking


def test_the_booked_nodes_agent_gets_an_install_with_the_buyers_keys(setup, startup):
    a, b, booking = setup

    # when
    page = a.get(LIST).json()
    other_node = b.get(LIST).json()

    # then: a page the agent's client reads, with the one install of node 1
    assert page["count"] == 1 and other_node["count"] == 0
    (item,) = page["results"]
    assert item == {
        "id": item["id"],
        "booking": booking.pk,
        "node": 1,
        "action": "install",
        "login_user": "gpux",
        "ssh_keys": keys.organization_public_keys(startup.pk),
    }
    assert a.get(LIST).json()["count"] == 1  # listed again until reported, never twice
    assert AccessHandover.objects.count() == 1


def test_the_agents_own_client_parses_the_answer(setup, live_server):
    from gpux_agent.client import PlatformClient

    raw = agent_token(setup[2].listing.cluster, "c")
    agent_client(raw).post("/api/v1/agent/inventory/", h100_inventory("a"), format="json")  # host a now uses c
    client = PlatformClient(live_server.url, raw, timeout=10)
    (handover,) = client.handovers()
    assert (handover.booking, handover.node, handover.action) == (setup[2].pk, 1, "install")
    assert client.report_handover(handover.id, "installed", "n1.example.cn", 22, "gpux")["id"] == handover.id


def test_an_installed_report_gives_the_buyer_connection_instructions(setup, startup_client, client_for):
    a, _, booking = setup
    (item,) = a.get(LIST).json()["results"]

    # when
    response = a.post(report_url(item["id"]), INSTALLED, format="json")

    # then
    assert response.status_code == 200, response.json()
    assert a.get(LIST).json()["count"] == 0
    access = startup_client.get(f"/api/v1/bookings/{booking.pk}/access/").json()
    (node,) = access["nodes"]
    assert node["state"] == "ready"
    assert node["ssh_command"] == "ssh -p 2222 gpux@n1.dc.example.cn"
    assert (node["host"], node["port"], node["user"]) == ("n1.dc.example.cn", 2222, "gpux")
    stranger = client_for(factories.member_of(factories.ProviderFactory()))
    assert stranger.get(f"/api/v1/bookings/{booking.pk}/access/").status_code == 404
    event = AuditEvent.objects.get(action="orders.access_installed")
    assert event.data["booking"] == booking.pk and event.data["host"] == "n1.dc.example.cn"


def test_the_providers_members_see_the_access_of_bookings_on_their_cluster(setup, provider, client_for):
    a, _, booking = setup
    (item,) = a.get(LIST).json()["results"]
    a.post(report_url(item["id"]), INSTALLED, format="json")
    response = client_for(factories.member_of(provider)).get(f"/api/v1/bookings/{booking.pk}/access/")
    assert response.status_code == 200 and response.json()["nodes"][0]["state"] == "ready"


def test_an_ended_booking_gets_a_removal_and_installs_no_more(setup):
    a, _, booking = setup
    (item,) = a.get(LIST).json()["results"]
    a.post(report_url(item["id"]), INSTALLED, format="json")
    type(booking).objects.filter(pk=booking.pk).update(start=hour(-3), end=hour(-1), status="completed")
    booking.reservations.update(period=(hour(-3), hour(-1)))

    # when
    (removal,) = a.get(LIST).json()["results"]
    done = a.post(report_url(removal["id"]), {"status": "removed", "host": None, "port": None, "user": None})

    # then
    assert (removal["action"], removal["booking"], removal["ssh_keys"]) == ("remove", booking.pk, [])
    assert done.status_code == 200
    assert a.get(LIST).json()["count"] == 0
    assert AccessHandover.objects.filter(action="remove").count() == 1


def test_a_pending_install_is_superseded_when_the_booking_ends(setup):
    a, _, booking = setup
    a.get(LIST)
    type(booking).objects.filter(pk=booking.pk).update(end=hour(0))
    (item,) = a.get(LIST).json()["results"]
    assert item["action"] == "remove"
    assert AccessHandover.objects.get(action="install").status == "superseded"


def test_a_node_whose_rest_was_resold_gets_its_access_removed_before_the_booking_ends(setup):
    # given an installed booking whose node's reservation now ends (its rest resold) while the booking runs on
    a, _, booking = setup
    a.get(LIST)
    reservation = booking.reservations.get()
    type(reservation).objects.filter(pk=reservation.pk).update(
        period=DateTimeTZRange(reservation.period.lower, hour(0))
    )
    # when the agent asks again / then it is told to remove the booking's access from the node
    (item,) = a.get(LIST).json()["results"]
    assert item["action"] == "remove" and booking.end > hour(0)


def test_a_buyer_without_keys_gets_no_install_until_adding_one(cluster, startup, startup_client):
    a = agent_client(agent_token(cluster))
    a.post("/api/v1/agent/inventory/", h100_inventory("a"), format="json")
    booking = booking_on(cluster, startup, start=hour(-1), end=hour(2), nodes=(1,))
    assert a.get(LIST).json()["count"] == 0
    access = startup_client.get(f"/api/v1/bookings/{booking.pk}/access/").json()
    assert access["nodes"][0]["state"] == "no_keys" and access["nodes"][0]["ssh_command"] is None
    keys.ssh_key_add(organization=startup, name="k", public_key=rsa_key(3072))
    assert a.get(LIST).json()["count"] == 1


def test_keys_changed_during_a_booking_are_installed_again(setup, startup):
    a, _, _ = setup
    (first,) = a.get(LIST).json()["results"]
    a.post(report_url(first["id"]), INSTALLED, format="json")
    keys.ssh_key_add(organization=startup, name="second", public_key=ed25519_key(2))
    (second,) = a.get(LIST).json()["results"]
    assert second["action"] == "install" and len(second["ssh_keys"]) == 2
    a.post(report_url(second["id"]), INSTALLED, format="json")
    statuses = dict(AccessHandover.objects.values_list("pk", "status"))
    assert statuses == {first["id"]: "superseded", second["id"]: "installed"}


def test_a_future_or_held_booking_gets_nothing(cluster, startup):
    a = agent_client(agent_token(cluster))
    a.post("/api/v1/agent/inventory/", h100_inventory("a"), format="json")
    keys.ssh_key_add(organization=startup, name="k", public_key=ed25519_key(1))
    booking_on(cluster, startup, start=hour(1), end=hour(3), nodes=(1,), status="confirmed")
    booking_on(cluster, startup, start=hour(-1), end=hour(1), nodes=(2,), status="held")
    assert a.get(LIST).json()["count"] == 0


def test_another_clusters_agent_cannot_see_or_report_the_handover(setup, provider):
    a, _, _ = setup
    (item,) = a.get(LIST).json()["results"]
    stranger = agent_client(agent_token(h100_cluster(provider, serials=[])))
    stranger.post("/api/v1/agent/inventory/", h100_inventory("a"), format="json")  # even with the same hostname

    assert stranger.get(LIST).json()["count"] == 0
    response = stranger.post(report_url(item["id"]), INSTALLED, format="json")
    assert response.status_code == 404
    assert AccessHandover.objects.get().status == "pending"


def test_another_nodes_agent_of_the_same_cluster_cannot_report_it(setup):
    a, b, _ = setup
    (item,) = a.get(LIST).json()["results"]
    assert b.post(report_url(item["id"]), INSTALLED, format="json").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**INSTALLED, "host": None}, "host"),
        ({**INSTALLED, "port": None}, "port"),
        ({**INSTALLED, "port": 70000}, "port"),
        ({**INSTALLED, "user": "root; rm"}, "user"),
        ({**INSTALLED, "user": "someone"}, "user"),
        ({**INSTALLED, "host": "bad host"}, "host"),
        ({**INSTALLED, "status": "removed"}, "status"),
        ({**INSTALLED, "status": "done"}, "status"),
        ({**INSTALLED, "detail": "x" * 2001}, "detail"),
    ],
)
def test_bad_reports_are_400_and_change_nothing(setup, body, field):
    a, _, _ = setup
    (item,) = a.get(LIST).json()["results"]
    response = a.post(report_url(item["id"]), body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]
    assert AccessHandover.objects.get().status == "pending"


def test_a_failed_install_is_listed_again_and_shown_to_the_buyer(setup):
    a, _, booking = setup
    (item,) = a.get(LIST).json()["results"]
    failed = {"status": "failed", "host": "h", "port": 22, "user": "gpux", "detail": "no such user"}
    assert a.post(report_url(item["id"]), failed, format="json").status_code == 200
    assert a.get(LIST).json()["results"][0]["id"] == item["id"]
    from orders.handovers import booking_node_access

    access = booking_node_access(booking)[0]
    assert (access.state, access.detail) == ("failed", "no such user")


def test_reporting_again_is_idempotent_and_contradicting_is_409(setup):
    a, _, _ = setup
    (item,) = a.get(LIST).json()["results"]
    assert a.post(report_url(item["id"]), INSTALLED, format="json").status_code == 200
    assert a.post(report_url(item["id"]), INSTALLED, format="json").status_code == 200
    assert a.post(report_url(item["id"]), {**INSTALLED, "status": "failed"}, format="json").status_code == 409
    assert AuditEvent.objects.filter(action="orders.access_installed").count() == 1


def test_a_token_shared_by_two_hosts_must_name_its_host(cluster, startup):
    shared = agent_client(agent_token(cluster))
    shared.post("/api/v1/agent/inventory/", h100_inventory("a"), format="json")
    shared.post("/api/v1/agent/inventory/", h100_inventory("b"), format="json")
    keys.ssh_key_add(organization=startup, name="k", public_key=ed25519_key(1))
    booking_on(cluster, startup, start=hour(-1), end=hour(2), nodes=(2,))

    refused = shared.get(LIST)
    named = shared.get(LIST + "?hostname=b").json()
    other = shared.get(LIST + "?hostname=a").json()

    assert refused.status_code == 409 and "hostname" in refused.json()["errors"]
    assert named["count"] == 1 and named["results"][0]["node"] == 2
    assert other["count"] == 0
    assert shared.get(LIST + "?hostname=nobody").status_code == 404

"""End to end: a provider enrolls an agent (``python -m gpux_agent once`` as a subprocess, a fake ``nvidia-smi`` on
PATH printing a recorded output) against the live test server; a buyer books with an SSH key; the agent installs
it and the buyer reads how to connect; two hours without heartbeats become an incident that lowers the delivered
node-hours; at the end the agent removes the key."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.utils import timezone
from gpux_agent.inventory import NVIDIA_SMI_ARGS

from listings.models import NodeAgent, NodeInventoryReport
from orders import handovers
from orders import services as order_services
from orders.delivery_tasks import delivery_sweep
from orders.models import AccessHandover, Booking, DeliveryIncident
from tests import factories
from tests.agent.helpers import ed25519_key
from tests.agent.test_cli import agent_env, fake_tool, run_agent
from tests.delivery.helpers import h100_cluster
from tests.orders.factories import booking_kwargs, fund


def _shift(booking: Booking, start: dt.datetime, end: dt.datetime, status: str) -> None:
    """Time passes: the booking's window (and its reservations) moved so it has started or ended."""
    Booking.objects.filter(pk=booking.pk).update(start=start, end=end, status=status)
    booking.reservations.update(period=DateTimeTZRange(start, end, "[)"))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_agent_delivers_a_booking_end_to_end(live_server, tmp_path, client_for, provider):
    # given: an H100 cluster whose provider creates an agent token on the platform
    cluster = h100_cluster(provider, node_count=2)
    listing = factories.ListingFactory(cluster=cluster)
    provider_api = client_for(factories.member_of(provider))
    created = provider_api.post(f"/api/v1/clusters/{cluster.pk}/agent-tokens/", {"name": "node 1"}, format="json")
    assert created.status_code == 201, created.json()

    # and: a buyer with an SSH key and a confirmed booking of one node
    buyer = factories.StartupFactory()
    fund(buyer, "1000000.00")
    buyer_api = client_for(factories.member_of(buyer))
    key = ed25519_key(7, "alice@startup")
    assert buyer_api.post("/api/v1/ssh-keys/", {"public_key": key}, format="json").status_code == 201
    booking = order_services.booking_create(buyer=buyer, confirm=True, **booking_kwargs(listing, hours=3))

    # and: the agent's node, with a fake nvidia-smi and an authorized_keys file
    bin_dir, ssh_dir = tmp_path / "bin", tmp_path / "ssh"
    bin_dir.mkdir()
    ssh_dir.mkdir()
    keys_file = ssh_dir / "authorized_keys"
    fake_tool(bin_dir, "nvidia-smi", {NVIDIA_SMI_ARGS: "nvidia_smi_8x_h100_80gb_hbm3.csv"})
    env = agent_env(
        bin_dir,
        GPUX_URL=live_server.url,
        GPUX_AGENT_TOKEN=created.json()["token"],
        GPUX_LOGIN_USER="gpux",
        GPUX_AUTHORIZED_KEYS=str(keys_file),
        GPUX_HOSTNAME="gpu-node-01",
        GPUX_SSH_HOST="gpu-node-01.dc.example.cn",
        GPUX_SSH_PORT="2222",
    )

    # when: the agent runs before the booking starts
    before = run_agent(["once"], env)

    # then: inventory and heartbeat accepted, nothing handed over yet
    assert before.returncode == 0, before.stderr
    report = NodeInventoryReport.objects.get()
    assert (report.node.index, report.gpu_count, report.mismatched) == (1, 8, False)
    assert NodeAgent.objects.get().last_sequence > 0
    assert not keys_file.exists()

    # when: the booking has started (time passes) and the agent runs again
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    _shift(booking, now - dt.timedelta(hours=3), now + dt.timedelta(hours=1), Booking.Status.ACTIVE)
    started = run_agent(["once"], env)

    # then: the buyer's key is installed and the buyer reads how to connect
    assert started.returncode == 0, started.stderr
    assert keys_file.read_text() == f"{' '.join(key.split()[:2])} gpux-booking-{booking.pk}\n"
    access = buyer_api.get(f"/api/v1/bookings/{booking.pk}/access/").json()
    assert [(n["node"], n["state"], n["ssh_command"]) for n in access["nodes"]] == [
        (1, "ready", "ssh -p 2222 gpux@gpu-node-01.dc.example.cn")
    ]

    # when: the node was silent for two hours of the booking, then came back
    silent_since = timezone.now() - dt.timedelta(hours=2)
    NodeAgent.objects.update(last_heartbeat_at=silent_since)
    assert delivery_sweep.run() == {"silent_outages": 1, "incidents": 1}
    assert DeliveryIncident.objects.get().status == "open"
    back = run_agent(["once"], env)
    delivery_sweep.run()

    # then: one closed incident of about two hours; delivered = reserved − incident hours
    assert back.returncode == 0, back.stderr
    incident = DeliveryIncident.objects.get()
    assert (incident.status, incident.source, incident.started_at) == ("closed", "silent", silent_since)
    delivered = handovers.booking_delivery(Booking.objects.get(pk=booking.pk))
    assert delivered.reserved_node_hours == Decimal("4.00")
    assert Decimal("2.00") <= delivered.incident_node_hours <= Decimal("2.02")
    assert delivered.delivered_node_hours == delivered.reserved_node_hours - delivered.incident_node_hours
    access = buyer_api.get(f"/api/v1/bookings/{booking.pk}/access/").json()
    assert Decimal(access["delivered_node_hours"]) == delivered.delivered_node_hours

    # when: the booking has ended and the agent runs once more
    _shift(booking, now - dt.timedelta(hours=4), now, Booking.Status.COMPLETED)
    ended = run_agent(["once"], env)

    # then: the key is gone and the removal is recorded
    assert ended.returncode == 0, ended.stderr
    assert keys_file.read_text() == ""
    assert AccessHandover.objects.get(action="remove").status == "removed"
    access = buyer_api.get(f"/api/v1/bookings/{booking.pk}/access/").json()
    assert access["nodes"][0]["state"] == "removed"

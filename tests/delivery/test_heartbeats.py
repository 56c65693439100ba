"""Heartbeats: strictly increasing sequences (replays → 409, nothing written; of two racing with one sequence
exactly one is accepted), and the compact history: silences and unhealthy runs as ``NodeOutage`` rows."""

import datetime as dt

import pytest
from django.utils import timezone

from listings import agent_services
from listings.models import AgentToken, NodeAgent, NodeOutage
from marketplace.core.exceptions import Conflict
from tests.delivery.helpers import agent_client, agent_token, h100_cluster, h100_inventory, heartbeat
from tests.helpers import run_concurrently

URL = "/api/v1/agent/heartbeats/"


@pytest.fixture
def bound(agent, cluster):
    assert agent.post("/api/v1/agent/inventory/", h100_inventory(), format="json").status_code == 200
    return NodeAgent.objects.get()


@pytest.mark.django_db
def test_a_heartbeat_is_accepted_and_a_replay_is_409_writing_nothing(agent, bound):
    # when
    first = agent.post(URL, heartbeat(sequence=10), format="json")
    replay = agent.post(URL, heartbeat(sequence=10), format="json")
    older = agent.post(URL, heartbeat(sequence=9, health="critical"), format="json")

    # then
    assert first.status_code == 200 and first.json() == {"node": 1, "sequence": 10, "healthy": True}
    assert replay.status_code == 409 and "sequence" in replay.json()["errors"]
    assert older.status_code == 409
    state = NodeAgent.objects.get()
    assert (state.last_sequence, state.healthy) == (10, True)
    assert not NodeOutage.objects.exists()


@pytest.mark.django_db
def test_a_host_that_never_reported_inventory_is_refused(agent, cluster):
    response = agent.post(URL, heartbeat(hostname="stranger"), format="json")
    assert response.status_code == 409
    assert not NodeAgent.objects.exists()


@pytest.mark.django_db
def test_a_host_of_another_cluster_is_unknown_here(agent, bound, provider):
    other = agent_client(agent_token(h100_cluster(provider, serials=[])))
    response = other.post(URL, heartbeat(), format="json")
    assert response.status_code == 409
    assert NodeAgent.objects.get().last_sequence == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        {"sequence": 0},
        {"sequence": -5},
        {"sequence": 2**63},
        {"sequence": "ten"},
        {"sent_at": "yesterday"},
        {"gpus": [{"index": 0, "health": "fine"}]},
        {"gpus": [{"index": 0, "health": "ok"}] * 2},
        {"gpus": [{"index": 0, "health": "ok", "utilisation_pct": 500}]},
        {"hostname": "x y"},
    ],
)
def test_malformed_heartbeats_are_400_and_write_nothing(agent, bound, change):
    response = agent.post(URL, {**heartbeat(sequence=5), **change}, format="json")
    assert response.status_code == 400, response.json()
    assert NodeAgent.objects.get().last_sequence == 0


@pytest.mark.django_db
def test_unhealthy_heartbeats_open_an_outage_that_a_healthy_one_closes(agent, bound):
    agent.post(URL, heartbeat(sequence=1), format="json")
    unhealthy = agent.post(URL, heartbeat(sequence=2, health="critical"), format="json")
    agent.post(URL, heartbeat(sequence=3, health="alarm"), format="json")
    outage = NodeOutage.objects.get()
    assert unhealthy.json()["healthy"] is False
    assert (outage.kind, outage.ended_at) == ("unhealthy", None)
    assert outage.detail["unhealthy_gpus"] == list(range(8))

    agent.post(URL, heartbeat(sequence=4), format="json")
    outage.refresh_from_db()
    assert outage.ended_at is not None and NodeOutage.objects.count() == 1


@pytest.mark.django_db
def test_a_node_reporting_fewer_gpus_than_declared_is_unhealthy(agent, bound):
    assert agent.post(URL, heartbeat(sequence=1, gpus=7), format="json").json()["healthy"] is False
    assert NodeOutage.objects.get().detail["missing_gpus"] == 1


@pytest.mark.django_db
def test_silence_is_recorded_between_heartbeats_and_opened_by_the_sweep(cluster, bound):
    token = AgentToken.objects.get()
    start = timezone.now() - dt.timedelta(hours=1)

    def beat(sequence, minutes):
        return agent_services.heartbeat_record(
            token=token, hostname="gpu-node-01", sequence=sequence, gpus=heartbeat()["gpus"],
            now=start + dt.timedelta(minutes=minutes),
        )  # fmt: skip

    # a gap of 2 minutes is no outage; one of 10 minutes is, recorded when the next heartbeat comes
    beat(1, 0)
    beat(2, 2)
    beat(3, 12)
    (gap,) = NodeOutage.objects.all()
    assert (gap.kind, gap.started_at, gap.ended_at) == (
        "silent",
        start + dt.timedelta(minutes=2),
        start + dt.timedelta(minutes=12),
    )

    # the sweep opens an outage for a node silent for more than 3 minutes, once
    assert agent_services.outages_open_silent(now=start + dt.timedelta(minutes=14)) == 0
    assert agent_services.outages_open_silent(now=start + dt.timedelta(minutes=16)) == 1
    assert agent_services.outages_open_silent(now=start + dt.timedelta(minutes=17)) == 0
    opened = NodeOutage.objects.get(ended_at__isnull=True)
    assert opened.started_at == start + dt.timedelta(minutes=12)

    # the next heartbeat closes it
    beat(4, 30)
    opened.refresh_from_db()
    assert opened.ended_at == start + dt.timedelta(minutes=30)
    assert NodeOutage.objects.filter(kind="silent").count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_heartbeats_with_one_sequence_exactly_one_is_accepted(provider):
    # given
    cluster = h100_cluster(provider)
    raw = agent_token(cluster)
    assert agent_client(raw).post("/api/v1/agent/inventory/", h100_inventory(), format="json").status_code == 200
    token = AgentToken.objects.get()
    gpus = heartbeat()["gpus"]

    # when: eight heartbeats with sequence 7 at once
    def send():
        return agent_services.heartbeat_record(token=token, hostname="gpu-node-01", sequence=7, gpus=gpus)

    results = run_concurrently(send, [()] * 8)

    # then
    accepted = [r for r in results if isinstance(r, NodeAgent)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(accepted) == 1, results
    assert len(refused) == 7
    assert NodeAgent.objects.get().last_sequence == 7


@pytest.mark.django_db(transaction=True)
def test_concurrent_heartbeats_over_http_exactly_one_is_accepted(provider):
    cluster = h100_cluster(provider)
    raw = agent_token(cluster)
    assert agent_client(raw).post("/api/v1/agent/inventory/", h100_inventory(), format="json").status_code == 200

    def send():
        return agent_client(raw).post(URL, heartbeat(sequence=42), format="json").status_code

    codes = run_concurrently(send, [()] * 6)
    assert sorted(codes) == [200, 409, 409, 409, 409, 409]

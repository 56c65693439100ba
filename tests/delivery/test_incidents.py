"""Incidents: node outages during a booking become incidents (clipped to its window, open while the outage lasts,
audited once each way), buyers report incidents that count once staff accept them, and delivered node-hours are
reserved minus incident hours (per node, overlaps counted once)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from listings.models import AgentToken, Node, NodeAgent, NodeOutage
from orders import handovers
from orders.delivery_tasks import delivery_sweep
from orders.models import DeliveryIncident
from tests import factories
from tests.delivery.helpers import booking_on, h100_inventory, heartbeat, hour

pytestmark = pytest.mark.django_db


def outage(cluster, index, start, end=None, kind="silent"):
    return NodeOutage.objects.create(
        node=Node.objects.get(cluster=cluster, index=index), kind=kind, started_at=start, ended_at=end
    )


def test_an_outage_during_a_booking_is_an_incident_clipped_to_its_window(cluster, startup):
    # given: a booking of both nodes for [-4h, -1h) and an outage of node 2 from -5h to -3h
    booking = booking_on(cluster, startup, start=hour(-4), end=hour(-1), nodes=(1, 2), status="completed")
    outage(cluster, 2, hour(-5), hour(-3))

    # when
    changed = handovers.incidents_sync()
    again = handovers.incidents_sync()

    # then
    assert (changed, again) == (1, 0)
    incident = DeliveryIncident.objects.get()
    assert (incident.node.index, incident.status, incident.source) == (2, "closed", "silent")
    assert (incident.started_at, incident.ended_at) == (hour(-4), hour(-3))
    delivery = handovers.booking_delivery(booking)
    assert (delivery.reserved_node_hours, delivery.incident_node_hours) == (Decimal("6.00"), Decimal("1.00"))
    assert delivery.delivered_node_hours == Decimal("5.00")
    assert AuditEvent.objects.filter(action="orders.incident_opened").count() == 1


def test_an_ongoing_outage_keeps_the_incident_open_until_it_ends(cluster, startup):
    booking = booking_on(cluster, startup, start=hour(-2), end=hour(2), nodes=(1,))
    ongoing = outage(cluster, 1, hour(-1))
    handovers.incidents_sync()
    incident = DeliveryIncident.objects.get()
    assert (incident.status, incident.ended_at) == ("open", None)
    lost = handovers.booking_delivery(booking).incident_node_hours
    assert Decimal("1.00") <= lost < Decimal("2.00")  # since -1h, up to now

    NodeOutage.objects.filter(pk=ongoing.pk).update(ended_at=hour(-1) + dt.timedelta(minutes=30))
    assert handovers.incidents_sync() == 1
    incident.refresh_from_db()
    assert (incident.status, incident.ended_at) == ("closed", hour(-1) + dt.timedelta(minutes=30))
    assert handovers.booking_delivery(booking).incident_node_hours == Decimal("0.50")
    assert AuditEvent.objects.filter(action="orders.incident_closed").count() == 1


def test_outages_outside_bookings_or_of_other_nodes_are_no_incident(cluster, startup):
    booking_on(cluster, startup, start=hour(-4), end=hour(-2), nodes=(1,), status="completed")
    outage(cluster, 1, hour(-6), hour(-4))  # ends as the booking starts
    outage(cluster, 2, hour(-4), hour(-2))  # another node
    outage(cluster, 1, hour(-2), hour(-1))  # after the end
    assert handovers.incidents_sync() == 0
    assert not DeliveryIncident.objects.exists()


def test_an_outage_across_two_bookings_is_one_incident_each(cluster, startup):
    first = booking_on(cluster, startup, start=hour(-6), end=hour(-4), nodes=(1,), status="completed")
    second = booking_on(cluster, startup, start=hour(-4), end=hour(-2), nodes=(1,), status="completed")
    outage(cluster, 1, hour(-5), hour(-3))
    handovers.incidents_sync()
    assert handovers.booking_delivery(first).incident_node_hours == Decimal("1.00")
    assert handovers.booking_delivery(second).incident_node_hours == Decimal("1.00")


def test_overlapping_outages_of_one_node_are_counted_once(cluster, startup):
    booking = booking_on(cluster, startup, start=hour(-4), end=hour(-1), nodes=(1,), status="completed")
    outage(cluster, 1, hour(-4), hour(-2), kind="silent")
    outage(cluster, 1, hour(-3), hour(-2) + dt.timedelta(minutes=30), kind="unhealthy")
    handovers.incidents_sync()
    assert DeliveryIncident.objects.count() == 2
    assert handovers.booking_delivery(booking).incident_node_hours == Decimal("2.50")


def test_cancelled_and_settled_bookings_get_no_incident(cluster, startup):
    booking_on(cluster, startup, start=hour(-4), end=hour(-2), nodes=(1,), status="settled")
    outage(cluster, 1, hour(-4), hour(-3))
    assert handovers.incidents_sync() == 0


def test_the_sweep_task_opens_silences_and_incidents(agent, cluster, startup):
    # given: node 1 sent its last heartbeat ten minutes ago, during a running booking
    agent.post("/api/v1/agent/inventory/", h100_inventory(), format="json")
    agent.post("/api/v1/agent/heartbeats/", heartbeat(sequence=1), format="json")
    NodeAgent.objects.update(last_heartbeat_at=timezone.now() - dt.timedelta(minutes=10))
    booking_on(cluster, startup, start=hour(-1), end=hour(2), nodes=(1,))

    # when
    result = delivery_sweep.run()

    # then
    assert result == {"silent_outages": 1, "incidents": 1}
    incident = DeliveryIncident.objects.get()
    assert (incident.status, incident.source) == ("open", "silent")
    assert delivery_sweep.run() == {"silent_outages": 0, "incidents": 0}
    assert AgentToken.objects.count() == 1


# --- the buyer's reports -----------------------------------------------------------------------------------------


def report_url(booking):
    return f"/api/v1/bookings/{booking.pk}/incidents/"


def test_a_buyer_reports_an_incident_that_counts_once_accepted(cluster, startup, startup_client, staff_client):
    booking = booking_on(cluster, startup, start=hour(-4), end=hour(-1), nodes=(1, 2), status="completed")
    body = {"node": 2, "started_at": hour(-3).isoformat(), "ended_at": hour(-2).isoformat(), "description": "down"}

    # when
    response = startup_client.post(report_url(booking), body, format="json")

    # then: reported, not counted yet
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "reported" and response.json()["node"] == 2
    assert handovers.booking_delivery(booking).incident_node_hours == Decimal("0.00")
    assert AuditEvent.objects.filter(action="orders.incident_reported").count() == 1

    # when: staff accept it
    resolved = staff_client.post(
        f"/api/v1/incidents/{response.json()['id']}/resolve/", {"decision": "accept"}, format="json"
    )

    # then
    assert resolved.status_code == 200 and resolved.json()["status"] == "closed"
    assert handovers.booking_delivery(booking).incident_node_hours == Decimal("1.00")
    listed = startup_client.get(report_url(booking)).json()
    assert [i["status"] for i in listed["results"]] == ["closed"]


def test_rejecting_a_report_needs_a_note_and_it_never_counts(cluster, startup, startup_client, staff_client):
    booking = booking_on(cluster, startup, start=hour(-4), end=hour(-1), nodes=(1,), status="completed")
    body = {"started_at": hour(-3).isoformat(), "description": "slow"}
    incident = startup_client.post(report_url(booking), body, format="json").json()
    url = f"/api/v1/incidents/{incident['id']}/resolve/"
    assert staff_client.post(url, {"decision": "reject"}, format="json").status_code == 400
    assert staff_client.post(url, {"decision": "reject", "note": "no"}, format="json").json()["status"] == "rejected"
    assert staff_client.post(url, {"decision": "accept"}, format="json").status_code == 409
    assert handovers.booking_delivery(booking).incident_node_hours == Decimal("0.00")


def test_only_staff_resolve(cluster, startup, startup_client):
    booking = booking_on(cluster, startup, start=hour(-4), end=hour(-1), nodes=(1,), status="completed")
    body = {"started_at": hour(-3).isoformat(), "description": "slow"}
    incident = startup_client.post(report_url(booking), body, format="json").json()
    response = startup_client.post(f"/api/v1/incidents/{incident['id']}/resolve/", {"decision": "accept"})
    assert response.status_code == 403


def _at(offset):
    return lambda: hour(offset).isoformat()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"started_at": _at(-5)}, "started_at"),
        ({"started_at": _at(1)}, "started_at"),
        ({"ended_at": _at(-4)}, "ended_at"),
        ({"ended_at": _at(0)}, "ended_at"),
        ({"node": 3}, "node"),
        ({"description": ""}, "description"),
        ({"description": "x" * 2001}, "description"),
        ({"started_at": "not a time"}, "started_at"),
    ],
)
def test_bad_reports_are_400_and_write_nothing(cluster, startup, startup_client, change, field):
    booking = booking_on(cluster, startup, start=hour(-4), end=hour(-1), nodes=(1,), status="completed")
    body = {"started_at": hour(-3).isoformat(), "description": "down"}
    body.update({name: value() if callable(value) else value for name, value in change.items()})
    response = startup_client.post(report_url(booking), body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]
    assert not DeliveryIncident.objects.exists()


def test_only_the_buyer_reports_and_only_on_running_or_completed_bookings(cluster, startup, startup_client, client_for):
    held = booking_on(cluster, startup, start=hour(-4), end=hour(-1), nodes=(1,), status="held")
    mine = booking_on(cluster, startup, start=hour(-4), end=hour(-1), nodes=(2,), status="completed")
    body = {"started_at": hour(-3).isoformat(), "description": "down"}
    assert startup_client.post(report_url(held), body, format="json").status_code == 409
    other_startup = client_for(factories.member_of(factories.StartupFactory()))
    assert other_startup.post(report_url(mine), body, format="json").status_code == 404
    assert other_startup.get(report_url(mine)).status_code == 404
    assert not DeliveryIncident.objects.exists()

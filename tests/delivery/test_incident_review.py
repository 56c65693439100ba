"""Platform staff's review of the buyers' reported incidents: ``orders.handovers.incidents_for_review``, the list
API ``GET /api/v1/incidents/`` and the staff page ``/staff/incidents/`` that accepts or rejects them. Settlement
waits for the decision (``settlement.services.booking_settle`` refuses with ``incident_under_review`` until then)."""

import datetime as dt
import zoneinfo

import pytest
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from marketplace.core.exceptions import Conflict
from orders import handovers
from orders.models import Booking, DeliveryIncident, NodeReservation
from settlement import services
from settlement.models import ServiceCredit
from tests import factories
from tests.delivery.helpers import booking_on, hour
from tests.settlement.factories import completed_booking

pytestmark = pytest.mark.django_db

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def browser_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def reported(booking, *, description="the node never answered", node=None, started_at=None, ended_at=None):
    """The booking's buyer reports an incident through the service (as the booking page and API do)."""
    return handovers.incident_report(
        booking=booking,
        actor=factories.member_of(booking.buyer),
        started_at=started_at or booking.start,
        ended_at=ended_at,
        node=node,
        description=description,
    )


def stamp(incident, *, created_at=None, updated_at=None) -> None:
    """Set when ``incident`` was reported (and decided): the order staff see depends on it."""
    fields = {"created_at": created_at, "updated_at": updated_at}
    DeliveryIncident.objects.filter(pk=incident.pk).update(**{k: v for k, v in fields.items() if v is not None})


@pytest.fixture
def queue(cluster, startup):
    """Four buyer reports on completed bookings of ``cluster`` (two waiting, one accepted, one rejected, reported
    and decided at known times) and an outage's incident, which is never in the review queue."""
    now = timezone.now()
    bookings = [  # one after another on node 1: [-3 h, -2 h), [-5 h, -4 h), ...
        booking_on(cluster, startup, start=hour(-3 - 2 * n), end=hour(-2 - 2 * n), nodes=(1,), status="completed")
        for n in range(4)
    ]
    waiting_new, waiting_old, accepted, rejected = (
        reported(b, description=f"report {n}") for n, b in enumerate(bookings)
    )
    handovers.incident_resolve(incident=accepted, actor=None, decision="accept")
    handovers.incident_resolve(incident=rejected, actor=None, decision="reject", note="the heartbeats show it ran")
    stamp(waiting_old, created_at=now - dt.timedelta(hours=3))
    stamp(waiting_new, created_at=now - dt.timedelta(hours=1))
    stamp(accepted, created_at=now - dt.timedelta(hours=5), updated_at=now - dt.timedelta(hours=2))
    stamp(rejected, created_at=now - dt.timedelta(hours=6), updated_at=now - dt.timedelta(minutes=30))
    outage = DeliveryIncident.objects.create(
        booking=bookings[0], source="silent", status="closed", started_at=hour(-3), ended_at=hour(-2)
    )
    return {
        "waiting_old": waiting_old,
        "waiting_new": waiting_new,
        "accepted": accepted,
        "rejected": rejected,
        "outage": outage,
    }


# --- the queue --------------------------------------------------------------------------------------------------


def test_the_queue_lists_waiting_reports_oldest_first_then_the_latest_decisions(queue):
    # when
    listed = [i.pk for i in handovers.incidents_for_review()]
    # then: the longest waiting first, then the decided ones by their decision, the latest first; no outage
    assert listed == [queue[k].pk for k in ("waiting_old", "waiting_new", "rejected", "accepted")]
    assert [i.pk for i in handovers.incidents_for_review(status="closed")] == [queue["accepted"].pk]


def test_the_queue_loads_what_the_page_shows_in_one_query(queue, django_assert_num_queries):
    with django_assert_num_queries(1):
        shown = [
            (i.booking.buyer.name, i.booking.listing.cluster.data_center.provider.name, i.node, i.reported_by)
            for i in handovers.incidents_for_review()
        ]
    assert len(shown) == 4 and all(reporter is not None for *_, reporter in shown)


# --- the API ----------------------------------------------------------------------------------------------------


def test_staff_list_the_reports_waiting_ones_first(queue, startup, staff_client):
    # when
    response = staff_client.get("/api/v1/incidents/")
    # then: paginated, waiting reports first, each with its booking and buyer
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["count"] == 4
    assert [i["id"] for i in body["results"]] == [
        queue[k].pk for k in ("waiting_old", "waiting_new", "rejected", "accepted")
    ]
    first = body["results"][0]
    assert (first["booking"], first["buyer"], first["status"], first["source"]) == (
        queue["waiting_old"].booking_id,
        startup.name,
        "reported",
        "buyer",
    )
    assert first["description"] == "report 1" and first["reported_at"]
    assert body["results"][2]["resolution_note"] == "the heartbeats show it ran"


@pytest.mark.parametrize(
    ("status", "expected"),
    [("reported", ["waiting_old", "waiting_new"]), ("closed", ["accepted"]), ("rejected", ["rejected"])],
)
def test_staff_filter_the_reports_by_status(queue, staff_client, status, expected):
    response = staff_client.get("/api/v1/incidents/", {"status": status})
    assert response.status_code == 200, response.json()
    assert [i["id"] for i in response.json()["results"]] == [queue[k].pk for k in expected]


@pytest.mark.parametrize("status", ["open", "accepted", "REPORTED", "reported,closed"])
def test_a_bad_status_filter_is_a_400_naming_the_field(queue, staff_client, status):
    response = staff_client.get("/api/v1/incidents/", {"status": status})
    assert response.status_code == 400
    assert "status" in response.json()["errors"]


@pytest.mark.parametrize("member", ["startup_client", "provider_client", "issuer_client"])
def test_only_platform_staff_list_the_reports(queue, request, member):
    assert request.getfixturevalue(member).get("/api/v1/incidents/").status_code == 403


def test_the_schema_documents_the_list_and_its_status_filter(staff_client):
    schema = staff_client.get("/api/v1/schema/?format=json").json()
    get = schema["paths"]["/api/v1/incidents/"]["get"]
    status = next(p for p in get["parameters"] if p["name"] == "status")
    assert status["in"] == "query" and set(status["schema"]["enum"]) == {"reported", "closed", "rejected"}
    assert "200" in get["responses"]


# --- the staff page ---------------------------------------------------------------------------------------------


def test_the_page_shows_a_waiting_report_with_its_forms_to_staff_only(cluster, startup, provider, platform_org):
    # given a buyer's report of node 1 from -3 h to -2 h, and an outage's incident
    booking = booking_on(cluster, startup, start=hour(-4), end=hour(-1), nodes=(1,), status="completed")
    incident = reported(booking, description="ssh timed out", node=1, started_at=hour(-3), ended_at=hour(-2))
    DeliveryIncident.objects.create(booking=booking, source="silent", status="closed", started_at=hour(-4))
    # when staff open the page
    page = browser_for(factories.member_of(platform_org)).get("/staff/incidents/")
    # then it shows the report: booking, buyer, provider and cluster, period in Beijing time, forms to decide
    assert page.status_code == 200
    text = page.content.decode()
    assert f'id="incident-{incident.pk}"' in text and text.count('id="incident-') == 1
    assert f'href="/bookings/{booking.pk}/"' in text
    assert startup.name in text and provider.name in text and cluster.name in text
    assert f"{hour(-3).astimezone(SHANGHAI):%Y-%m-%d %H:%M} → {hour(-2).astimezone(SHANGHAI):%Y-%m-%d %H:%M}" in text
    assert "ssh timed out" in text and incident.reported_by.username in text
    assert text.count(f'action="/staff/incidents/{incident.pk}/resolve/"') == 1
    assert 'name="decision" value="accept"' in text and 'name="decision" value="reject"' in text
    # and the navigation links the staff pages
    assert 'href="/staff/disputes/"' in text and 'href="/staff/incidents/"' in text
    # and others are refused
    for org in (startup, provider, factories.IssuerFactory()):
        assert browser_for(factories.member_of(org)).get("/staff/incidents/").status_code == 403


def test_a_decided_report_shows_its_note_and_no_form(queue, platform_org):
    text = browser_for(factories.member_of(platform_org)).get("/staff/incidents/").content.decode()
    rejected = text.split(f'id="incident-{queue["rejected"].pk}"')[1].split("</article>")[0]
    assert "the heartbeats show it ran" in rejected and "<form" not in rejected
    assert text.index(f'id="incident-{queue["waiting_old"].pk}"') < text.index(f'id="incident-{queue["rejected"].pk}"')


def test_the_page_reads_in_chinese(queue, platform_org):
    browser = browser_for(factories.member_of(platform_org))
    text = browser.get("/staff/incidents/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert 'lang="zh-hans"' in text or 'lang="zh-Hans"' in text
    assert "驳回" in text and "原因（驳回时必填）" in text and "已报告，待审核" in text


def reported_on_a_due_booking():
    """A completed booking whose dispute window has closed (settled now but for the report) and its buyer's report
    that its one node did not deliver for its whole hour."""
    booking = completed_booking(subtotal="1000.00")
    node = booking.listing.cluster.nodes.get(index=1)
    NodeReservation.objects.create(booking=booking, node=node, period=DateTimeTZRange(booking.start, booking.end, "[)"))
    incident = reported(booking, ended_at=booking.end)
    with pytest.raises(Conflict) as refused:
        services.booking_settle(booking_id=booking.pk)
    assert refused.value.code == "incident_under_review"
    return booking, incident


def test_accepting_on_the_page_closes_the_report_and_the_booking_settles(platform_org):
    # given a report holding a due booking's settlement
    booking, incident = reported_on_a_due_booking()
    staff = browser_for(factories.member_of(platform_org))
    # when staff accept it on the page
    response = staff.post(f"/staff/incidents/{incident.pk}/resolve/", {"decision": "accept"}, follow=True)
    # then it is closed (it counts), staff are told so, and the booking settles with the lost hour credited
    assert response.redirect_chain == [("/staff/incidents/", 302)]
    assert [m.level_tag for m in response.context["messages"]] == ["success"]
    incident.refresh_from_db()
    assert incident.status == DeliveryIncident.Status.CLOSED
    assert AuditEvent.objects.filter(action="orders.incident_accepted").count() == 1
    assert services.booking_settle(booking_id=booking.pk).status == Booking.Status.SETTLED
    assert ServiceCredit.objects.get(booking=booking).amount > 0


def test_rejecting_without_a_note_shows_the_error_and_changes_nothing(platform_org):
    booking, incident = reported_on_a_due_booking()
    staff = browser_for(factories.member_of(platform_org))
    # when staff reject it with a blank note
    response = staff.post(f"/staff/incidents/{incident.pk}/resolve/", {"decision": "reject", "note": "  "}, follow=True)
    # then they are told why, and the report still waits (and holds settlement)
    assert response.redirect_chain == [("/staff/incidents/", 302)]
    errors = [str(m) for m in response.context["messages"] if m.level_tag == "error"]
    assert errors == ["Say why the report is rejected."]
    incident.refresh_from_db()
    assert (incident.status, incident.resolution_note) == (DeliveryIncident.Status.REPORTED, "")
    assert not AuditEvent.objects.filter(action__in=["orders.incident_accepted", "orders.incident_rejected"]).exists()
    with pytest.raises(Conflict):
        services.booking_settle(booking_id=booking.pk)
    # when they reject it with a note, then it is rejected and the booking settles in full
    staff.post(f"/staff/incidents/{incident.pk}/resolve/", {"decision": "reject", "note": "it ran"})
    incident.refresh_from_db()
    assert (incident.status, incident.resolution_note) == (DeliveryIncident.Status.REJECTED, "it ran")
    assert services.booking_settle(booking_id=booking.pk).status == Booking.Status.SETTLED
    assert not ServiceCredit.objects.filter(booking=booking).exists()


def test_deciding_twice_or_an_unknown_report_is_refused(platform_org, startup):
    _, incident = reported_on_a_due_booking()
    staff = browser_for(factories.member_of(platform_org))
    staff.post(f"/staff/incidents/{incident.pk}/resolve/", {"decision": "accept"}, follow=True)
    again = staff.post(f"/staff/incidents/{incident.pk}/resolve/", {"decision": "reject", "note": "x"}, follow=True)
    assert [m.level_tag for m in again.context["messages"]] == ["error"]
    assert DeliveryIncident.objects.get(pk=incident.pk).status == DeliveryIncident.Status.CLOSED
    assert staff.post("/staff/incidents/999999/resolve/", {"decision": "accept"}).status_code == 404
    member = browser_for(factories.member_of(startup))
    assert member.post(f"/staff/incidents/{incident.pk}/resolve/", {"decision": "accept"}).status_code == 403

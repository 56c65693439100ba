"""The auditor's event log page: organizations by name (and a filter by them), actions and objects in plain words in
the reader's language, the event's data whole, and a date range in the reader's time zone."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from audit.models import AuditEvent
from audit.services import audit_record
from tests import factories

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN"}


@pytest.fixture
def auditor(platform_org):
    client = Client()
    client.force_login(factories.member_of(platform_org, role="auditor"))
    return client


def _event(*, action="booking.confirmed", organization=None, data=None) -> AuditEvent:
    return audit_record(
        action=action,
        object_type="orders.booking",
        object_id="7",
        organization_id=organization.pk if organization else None,
        data=data or {"to": "confirmed", "nodes": 2},
    )


def test_events_show_organization_names_and_plain_words(auditor, startup):
    _event(organization=startup, data={"to": "confirmed", "note": "x" * 200})
    html = auditor.get("/audit/events/").content.decode()
    table = html[html.index('id="event-table"') :]
    assert startup.name in table and f'href="?organization={startup.pk}"' in table
    assert "Booking confirmed" in table and "Booking 7" in table
    assert "x" * 200 in table  # the whole data, not a truncated dict
    # and in Chinese
    zh = auditor.get("/audit/events/", **ZH).content.decode()
    assert "预订已确认" in zh and "预订 7" in zh


def test_events_filter_by_organization_name(auditor, startup):
    other = factories.StartupFactory()
    _event(organization=startup, action="booking.confirmed")
    _event(organization=other, action="booking.cancelled")
    html = auditor.get(f"/audit/events/?organization={startup.pk}").content.decode()
    assert f'<option value="{startup.pk}" selected>{startup.name}</option>' in html
    table = html[html.index('id="event-table"') :]
    assert "Booking confirmed" in table and "Booking cancelled" not in table


def test_events_filter_by_date_range_in_the_readers_zone(auditor, startup):
    _event(organization=startup)
    today = dt.datetime.now(SHANGHAI).date()
    inside = auditor.get(f"/audit/events/?since={today}&until={today}").content.decode()
    assert 'id="event-table"' in inside
    tomorrow = today + dt.timedelta(days=1)
    after = auditor.get(f"/audit/events/?since={tomorrow}").content.decode()
    assert 'id="event-table"' not in after and "No events match" in after
    yesterday = today - dt.timedelta(days=1)
    before = auditor.get(f"/audit/events/?until={yesterday}").content.decode()
    assert 'id="event-table"' not in before


def test_bad_dates_say_so(auditor):
    html = auditor.get("/audit/events/?since=yesterday").content.decode()
    assert "enter a date such as 2026-03-01" in html
    today = dt.datetime.now(SHANGHAI).date()
    html = auditor.get(f"/audit/events/?since={today}&until={today - dt.timedelta(days=2)}").content.decode()
    assert "The end of the date range is before its start." in html

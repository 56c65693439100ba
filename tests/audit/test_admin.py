"""Admin: read-only audit event views with a CSV export."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from audit.models import AuditEvent
from audit.services import audit_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_():
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.cn", "x"))
    return client


def test_events_export_as_csv_and_cannot_be_changed(admin_client_):
    # given
    audit_record(action="test.export", object_type="x.y", object_id="7", data={"amount": "1.00"})
    event = AuditEvent.objects.get(action="test.export")
    # when
    response = admin_client_.post(
        "/admin/audit/auditevent/", {"action": "_export_events_csv", "_selected_action": [event.pk]}
    )
    # then
    lines = response.content.decode().splitlines()
    assert response["Content-Disposition"] == 'attachment; filename="audit-events.csv"'
    assert lines[0].startswith("id,leaf_index,created_at,actor_id") and '"{""amount"": ""1.00""}"' in lines[1]
    assert admin_client_.get(f"/admin/audit/auditevent/{event.pk}/delete/").status_code == 403

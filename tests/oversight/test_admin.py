"""Admin: the anomaly flag list, browse only, with filters."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_():
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.cn", "x"))
    return client


def test_flag_admin_lists_with_filters(admin_client_):
    response = admin_client_.get("/admin/oversight/anomalyflag/?status__exact=open")
    html = response.content.decode()
    assert response.status_code == 200 and "Select anomaly flag to view" in html and "By kind" in html

"""A node's inventory that differs from its cluster's declaration raises a hardware-mismatch anomaly flag for staff
(issue 20): listings signals it after the report commits; oversight flags the cluster's live voucher bookings."""

from decimal import Decimal

import pytest

from oversight.models import AnomalyFlag
from tests.delivery.helpers import agent_client, agent_token, booking_on, h100_cluster, h100_inventory, hour

pytestmark = pytest.mark.django_db

URL = "/api/v1/agent/inventory/"


def voucher_booking(cluster, buyer, *, status="active", nodes=(1,)):
    booking = booking_on(cluster, buyer, start=hour(-1), end=hour(3), nodes=nodes, status=status)
    booking.voucher_amount = Decimal("100.00")
    booking.cash_amount = booking.subtotal - booking.voucher_amount
    booking.save(update_fields=["voucher_amount", "cash_amount"])
    return booking


def test_a_mismatched_inventory_flags_the_clusters_voucher_bookings_once(
    provider, startup, django_capture_on_commit_callbacks
):
    # given a cluster declaring other serials, a voucher booking on it and a cash-only one
    cluster = h100_cluster(provider, serials=["OTHER-1"])
    paid_with_voucher = voucher_booking(cluster, startup)
    booking_on(cluster, startup, start=hour(-1), end=hour(3), nodes=(2,))
    agent = agent_client(agent_token(cluster))
    # when its node reports its (mismatched) inventory, twice
    with django_capture_on_commit_callbacks(execute=True):
        answer = agent.post(URL, h100_inventory(), format="json").json()
    with django_capture_on_commit_callbacks(execute=True):
        agent.post(URL, h100_inventory(), format="json")
    # then the voucher booking is flagged once, with what did not match
    assert answer["matches"] is False
    flag = AnomalyFlag.objects.get()
    assert (flag.kind, flag.booking_id, flag.organization_id) == (
        AnomalyFlag.Kind.HARDWARE_MISMATCH,
        paid_with_voucher.pk,
        startup.pk,
    )
    assert flag.details["cluster"] == cluster.pk and {m["field"] for m in flag.details["mismatches"]} == {"serials"}


def test_a_matching_inventory_flags_nothing(cluster, startup, agent, django_capture_on_commit_callbacks):
    voucher_booking(cluster, startup)
    with django_capture_on_commit_callbacks(execute=True):
        assert agent.post(URL, h100_inventory(), format="json").json()["matches"] is True
    assert not AnomalyFlag.objects.exists()

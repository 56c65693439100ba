"""NodeReservation.cluster: the node's cluster, copied by PostgreSQL triggers (orders migration 0006) for listing
search's per-cluster count of busy nodes."""

import datetime as dt

import pytest
from django.utils import timezone

from listings.models import Node
from orders.models import NodeReservation
from tests import factories
from tests.listings.factories import reserve

pytestmark = pytest.mark.django_db


def _window():
    start = timezone.now().replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=2)
    return start, start + dt.timedelta(hours=4)


def test_a_reservation_carries_its_nodes_cluster_whatever_python_writes():
    # given two clusters
    listing, other = factories.ListingFactory(), factories.ClusterFactory()
    start, end = _window()
    # when a booking reserves nodes of the first, and one reservation is then pointed at the other cluster
    booking = reserve(listing, [1, 2], start, end)
    first = booking.reservations.first()
    NodeReservation.objects.filter(pk=first.pk).update(cluster_id=other.pk)
    # then every reservation names the cluster of its node
    assert set(booking.reservations.values_list("cluster_id", flat=True)) == {listing.cluster_id}


def test_moving_a_node_to_another_cluster_moves_its_reservations():
    # given a reservation of node 1 of a listing's cluster
    listing, other = factories.ListingFactory(), factories.ClusterFactory()
    start, end = _window()
    booking = reserve(listing, [1], start, end)
    node = booking.reservations.get().node
    # when the node is moved to the other cluster (as a new last node)
    Node.objects.filter(pk=node.pk).update(cluster=other, index=other.nodes.count() + 1)
    # then its reservation follows it
    assert booking.reservations.get().cluster_id == other.pk

"""Races on real PostgreSQL: many bookings at once for the same nodes and one wallet. Threads, committed data."""

import itertools
import random
import threading
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Sum
from psycopg.types.range import Range

from ledger.selectors import ledger_breaches, wallet_summary
from orders import services
from orders.models import Booking, NodeReservation
from tests.factories import ClusterFactory, ListingFactory, StartupFactory, member_of, next_hour
from tests.helpers import backend_pid, iso, run_concurrently, wait_until_blocked
from tests.orders.factories import fund, funded_startup

BOOKINGS = "/api/v1/bookings/"
OPEN = ("held", "confirmed")


def _body(listing, *, nodes=1, start=2, end=3) -> dict:
    return {"listing": listing.pk, "nodes": nodes, "start": iso(next_hour(start)), "end": iso(next_hour(end))}


def _post_booking(client, body):
    response = client.post(BOOKINGS, body, format="json")
    return response.status_code, response.data


def _assert_no_double_booking(cluster):
    reservations = list(
        NodeReservation.objects.filter(node__cluster=cluster, active=True).values_list("node_id", "period")
    )
    by_node: dict[int, list] = {}
    for node_id, period in reservations:
        by_node.setdefault(node_id, []).append((period.lower, period.upper))
    for periods in by_node.values():
        periods.sort()
        for (_, end_a), (start_b, _) in itertools.pairwise(periods):
            assert end_a <= start_b, "two active reservations of one node overlap"
    return reservations


@pytest.mark.django_db(transaction=True)
def test_fifty_parallel_bookings_never_exceed_capacity_and_losers_get_409(client_for):
    # given a 4-node cluster, 10 funded startups, 50 requests for 1-3 nodes in windows that all overlap hour 3
    cluster = ClusterFactory(node_count=4, gpus_per_node=8)
    listing = ListingFactory(cluster=cluster, price_per_gpu_hour=Decimal("2.5000"))
    startups = [StartupFactory() for _ in range(10)]
    for startup in startups:
        fund(startup, "100000.00")
    clients = [client_for(member_of(startup)) for startup in startups]
    rng = random.Random(7)
    args = []
    for i in range(50):
        start = rng.randint(1, 3)
        args.append(
            (clients[i % 10], _body(listing, nodes=rng.randint(1, 3), start=start, end=start + rng.randint(1, 3)))
        )
    # when
    results = run_concurrently(_post_booking, args)
    # then every request either booked or lost with a 409 Conflict
    codes = [r[0] if isinstance(r, tuple) else r for r in results]
    assert all(code in (201, 409) for code in codes), codes
    winners = [data for code, data in results if code == 201]
    losers = [data for code, data in results if code == 409]
    assert winners and losers
    assert all(data["detail"].startswith("Not enough free nodes") for data in losers)
    # capacity: no node is reserved twice at once, and every hour has at most 4 nodes booked
    reservations = _assert_no_double_booking(cluster)
    assert len(reservations) == sum(w["nodes"] for w in winners)
    for hour in range(1, 7):
        moment = next_hour(hour)
        assert sum(1 for _, p in reservations if p.lower <= moment < p.upper) <= cluster.node_count
    assert NodeReservation.objects.filter(node__cluster=cluster, active=True).count() == len(reservations)
    # money: each wallet's hold is exactly its open bookings' cash, and the ledger is consistent
    for startup in startups:
        summary = wallet_summary(startup.pk)
        held = Booking.objects.filter(buyer=startup, status__in=OPEN).aggregate(s=Sum("cash_amount"))["s"]
        assert summary["held"] == (held or Decimal("0.00"))
        assert summary["balance"] + summary["held"] == Decimal("100000.00")
    assert Booking.objects.count() == len(winners)
    assert ledger_breaches() == []


@pytest.mark.django_db(transaction=True)
def test_parallel_spends_of_one_wallet_never_overdraw_it(client_for):
    # given one wallet that covers exactly 3 bookings of 80.00, and 12 separate clusters (no capacity contention)
    startup = funded_startup("240.00")
    client = client_for(member_of(startup))
    listings = [ListingFactory(cluster=ClusterFactory(node_count=1, gpus_per_node=8)) for _ in range(12)]
    bodies = [(client, _body(listing)) for listing in listings]
    # when
    results = run_concurrently(_post_booking, bodies)
    # then exactly three succeed, the rest are refused for funds
    codes = sorted(r[0] for r in results)
    assert codes == [201] * 3 + [409] * 9
    assert all("Insufficient funds" in data["detail"] for code, data in results if code == 409)
    assert wallet_summary(startup.pk) == {"balance": Decimal("0.00"), "held": Decimal("240.00")}
    assert NodeReservation.objects.filter(active=True).count() == 3
    assert ledger_breaches() == []


@pytest.mark.django_db(transaction=True)
def test_parallel_cancels_release_once(client_for):
    # given a held booking and 8 simultaneous cancels of it
    startup = funded_startup("1000.00")
    client = client_for(member_of(startup))
    booking = client.post(BOOKINGS, _body(ListingFactory(), end=4), format="json").data
    # when
    results = run_concurrently(lambda: client.post(f"{BOOKINGS}{booking['id']}/cancel/").status_code, [()] * 8)
    # then one cancel wins, the others see the cancelled booking and get 409; the hold came back once
    assert sorted(results) == [200] + [409] * 7
    assert wallet_summary(startup.pk) == {"balance": Decimal("1000.00"), "held": Decimal("0.00")}
    assert ledger_breaches() == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("node_count", "nodes", "sneaked", "expected"),
    [
        (2, 1, 1, [2]),  # the only node chosen is lost
        (3, 2, 2, [1, 3]),  # one of two is lost: node 1, already reserved, is given up and chosen again
    ],
)
def test_booking_that_loses_at_the_exclusion_constraint_retries_on_other_nodes(node_count, nodes, sneaked, expected):
    # given a writer that reserves a node without the capacity lock and commits only after the booking chose it
    cluster = ClusterFactory(node_count=node_count)
    listing = ListingFactory(cluster=cluster)
    startup = funded_startup("1000.00")
    start, end = next_hour(2), next_hour(4)
    inserted, booker_connected = threading.Event(), threading.Event()
    booker_pid: list[int] = []

    def sneaky_writer():
        with transaction.atomic():
            other = Booking.objects.create(
                buyer=startup,
                listing=listing,
                nodes=1,
                start=start,
                end=end,
                gpu_hours=16,
                price_per_gpu_hour=Decimal("10"),
                subtotal=Decimal("0"),
                cash_amount=Decimal("0"),
                status="confirmed",
            )
            NodeReservation.objects.create(
                booking=other, node=cluster.nodes.get(index=sneaked), period=Range(start, end)
            )
            inserted.set()
            # the booking now picks that node (uncommitted here) and waits on this transaction: commit once it does
            assert booker_connected.wait(30), "the booker never connected"
            wait_until_blocked(booker_pid[0], by=backend_pid())
        return "committed"

    def booker():
        booker_pid.append(backend_pid())
        booker_connected.set()
        assert inserted.wait(30), "the writer never inserted"
        booking = services.booking_create(buyer=startup, listing_id=listing.pk, nodes=nodes, start=start, end=end)
        return sorted(booking.reservations.values_list("node__index", flat=True))

    # when
    writer_result, booked_nodes = run_concurrently(lambda fn: fn(), [(sneaky_writer,), (booker,)])
    # then the booking lost the node at the constraint, chose again and got the others
    assert writer_result == "committed"
    assert booked_nodes == expected
    assert NodeReservation.objects.filter(booking__nodes=nodes, booking__status="held").count() == nodes
    _assert_no_double_booking(cluster)
    assert ledger_breaches() == []

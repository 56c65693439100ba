"""Random deposits, bookings, confirms and cancels; after every step the ledger and the capacity still add up."""

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from django.db.models import Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from ledger.selectors import ledger_breaches, wallet_summary
from marketplace.core.exceptions import ApplicationError
from orders import services
from orders.models import Booking, NodeReservation
from tests.factories import ClusterFactory, ListingFactory, StartupFactory, next_hour
from tests.orders.factories import fund

OPEN = ("held", "confirmed")
ZERO = Decimal("0.00")


class BookingMachine(RuleBasedStateMachine):
    booked = 0  # across examples: the run must have exercised successful bookings, not only refusals

    def __init__(self):
        super().__init__()
        self.cluster = ClusterFactory(node_count=3, gpus_per_node=4)
        self.listing = ListingFactory(cluster=self.cluster, price_per_gpu_hour=Decimal("1.2345"))
        self.startups = [StartupFactory(), StartupFactory()]
        self.deposited = {startup.pk: ZERO for startup in self.startups}
        self.booking_ids: list[int] = []

    @rule(who=st.integers(0, 1), amount=st.decimals(min_value=0, max_value=500, places=2))
    def deposit(self, who, amount):
        startup = self.startups[who]
        fund(startup, amount)
        self.deposited[startup.pk] += amount

    @rule(
        who=st.integers(0, 1),
        nodes=st.integers(0, 4),
        start=st.integers(-1, 6),
        hours=st.integers(0, 4),
        confirm=st.booleans(),
    )
    def book(self, who, nodes, start, hours, confirm):
        before = Booking.objects.filter(listing=self.listing).count()
        try:
            booking = services.booking_create(
                buyer=self.startups[who],
                listing_id=self.listing.pk,
                nodes=nodes,
                start=next_hour(start),
                end=next_hour(start) + dt.timedelta(hours=hours),
                confirm=confirm,
            )
        except ApplicationError as exc:
            # bad input is 400, short nodes or funds 409 — and nothing is written either way
            assert exc.status in (400, 409), exc.message
            assert Booking.objects.filter(listing=self.listing).count() == before
        else:
            assert booking.status == ("confirmed" if confirm else "held")
            self.booking_ids.append(booking.pk)
            BookingMachine.booked += 1

    def _act(self, data, action, *, from_statuses, to_status):
        booking = Booking.objects.get(pk=data.draw(st.sampled_from(self.booking_ids)))
        try:
            action(booking=booking)
        except ApplicationError as exc:
            # refused only from a status the action does not start from, and then with 409
            assert exc.status == 409
            assert booking.status not in from_statuses
        else:
            assert booking.status == to_status

    @precondition(lambda self: self.booking_ids)
    @rule(data=st.data())
    def confirm(self, data):
        self._act(data, services.booking_confirm, from_statuses=("held",), to_status="confirmed")

    @precondition(lambda self: self.booking_ids)
    @rule(data=st.data())
    def cancel(self, data):
        self._act(data, services.booking_cancel, from_statuses=OPEN, to_status="cancelled")

    @invariant()
    def ledger_is_consistent(self):
        assert ledger_breaches() == []

    @invariant()
    def wallets_reconcile_with_open_bookings(self):
        for startup in self.startups:
            summary = wallet_summary(startup.pk)
            held = Booking.objects.filter(buyer=startup, status__in=OPEN).aggregate(s=Sum("cash_amount"))["s"]
            assert summary["held"] == (held or ZERO)
            assert summary["balance"] >= ZERO
            assert summary["balance"] + summary["held"] == self.deposited[startup.pk]

    @invariant()
    def capacity_is_never_exceeded(self):
        active = list(
            NodeReservation.objects.filter(node__cluster=self.cluster, active=True).values_list("node_id", "period")
        )
        open_nodes = Booking.objects.filter(listing=self.listing, status__in=OPEN).aggregate(s=Sum("nodes"))["s"]
        assert len(active) == (open_nodes or 0)
        for (node_a, a), (node_b, b) in itertools.combinations(active, 2):
            assert node_a != node_b or a.upper <= b.lower or b.upper <= a.lower


@pytest.mark.django_db
def test_booking_state_machine():
    BookingMachine.booked = 0
    run_state_machine_as_test(
        BookingMachine,
        settings=settings(
            max_examples=15,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    assert BookingMachine.booked > 0

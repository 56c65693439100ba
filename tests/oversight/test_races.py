"""Races on PostgreSQL: concurrent flag computations store each flag once; concurrent reviews decide once."""

import pytest

from audit.models import AuditEvent
from marketplace.core.exceptions import ApplicationError
from oversight import flags
from oversight.models import AnomalyFlag
from tests import factories
from tests.helpers import run_concurrently
from tests.oversight import factories as af

pytestmark = pytest.mark.django_db(transaction=True)


def _flaggable_bookings(n: int) -> list[int]:
    startup = factories.StartupFactory()
    listing = factories.ListingFactory(cluster__accelerator__export_controlled=True)
    return [
        af.booking(
            buyer=startup,
            listing=listing,
            start=factories.next_hour(2 + 2 * i),
            voucher_part="16.00",
            vouchers=[af.voucher(holder=startup)],
        ).pk
        for i in range(n)
    ]


def test_concurrent_computations_store_each_flag_once():
    # given three flaggable bookings
    bookings = _flaggable_bookings(3)
    # when four computations race (two full, two per booking)
    results = run_concurrently(
        lambda call: call(),
        [
            (flags.flags_compute,),
            (flags.flags_compute,),
            (lambda: flags.flags_for_booking(bookings[0]),),
            (lambda: flags.flags_for_booking(bookings[1]),),
        ],
    )
    # then no error, and one flag per booking
    assert not [r for r in results if isinstance(r, BaseException)]
    assert sorted(AnomalyFlag.objects.values_list("booking_id", flat=True)) == sorted(bookings)


def test_concurrent_reviews_decide_once():
    # given an open flag and two auditors
    _flaggable_bookings(1)
    flags.flags_compute()
    flag = AnomalyFlag.objects.get()
    platform = factories.PlatformFactory()
    auditors = [factories.member_of(platform, role="auditor") for _ in range(2)]
    # when they review at the same moment, with opposite decisions
    results = run_concurrently(
        lambda actor, decision: flags.flag_review(flag=flag.pk, actor=actor, decision=decision),
        [(auditors[0], "confirmed"), (auditors[1], "dismissed")],
    )
    # then exactly one wins, the other gets 409, and one review event is written
    winners = [r for r in results if isinstance(r, AnomalyFlag)]
    losers = [r for r in results if isinstance(r, ApplicationError)]
    assert len(winners) == 1 and [e.status for e in losers] == [409]
    flag.refresh_from_db()
    assert flag.status == winners[0].status
    assert AuditEvent.objects.filter(action="audit.flag_reviewed").count() == 1

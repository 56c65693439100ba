"""Anomaly flag rules (one case that flags, one that does not, each), idempotent recomputation and reviews."""

import datetime as dt

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from marketplace.core.exceptions import ApplicationError
from oversight import flags
from oversight.models import AnomalyFlag
from tests import factories
from tests.oversight import factories as af
from tests.vouchers.factories import VoucherProgramFactory

pytestmark = pytest.mark.django_db


def kinds() -> list[tuple[str, int | None, int | None]]:
    return sorted(AnomalyFlag.objects.values_list("kind", "booking_id", "voucher_id"))


@pytest.mark.parametrize(("provider_rep", "flagged"), [("  ZHANG   wei ", True), ("Li Na", False)])
def test_related_party_booking(startup, provider_rep, flagged):
    # given a buyer owned by Zhang Wei and a provider whose legal representative is (or is not) him
    startup.owners = ["Zhang Wei"]
    startup.save()
    provider = factories.ProviderFactory(legal_representative=provider_rep, owners=["Someone Else"])
    listing = factories.ListingFactory(cluster__data_center__provider=provider)
    v = af.voucher(holder=startup)
    booking = af.booking(buyer=startup, listing=listing, voucher_part="16.00", vouchers=[v])
    # when
    flags.flags_compute()
    # then
    found = AnomalyFlag.objects.filter(kind="related_party")
    assert [(f.booking_id, f.organization_id, f.program_id) for f in found] == (
        [(booking.pk, startup.pk, v.program_id)] if flagged else []
    )
    if flagged:
        assert found[0].details["shared_names"] == ["zhang wei"]


def test_related_party_without_voucher_is_not_flagged(startup):
    # given a related-party booking paid in cash only
    startup.owners = ["Zhang Wei"]
    startup.save()
    provider = factories.ProviderFactory(legal_representative="Zhang Wei")
    af.booking(buyer=startup, listing=factories.ListingFactory(cluster__data_center__provider=provider))
    # when / then
    assert flags.flags_compute() == 0 and kinds() == []


@pytest.mark.parametrize(("price", "flagged"), [("15.0001", True), ("15.0000", False)])
def test_price_above_one_and_a_half_times_the_market_median(startup, price, flagged):
    # given three market bookings at 10/GPU-hour of one accelerator in one month (median 10)
    listing = factories.ListingFactory()
    start = factories.next_hour(2)
    for _ in range(3):
        af.booking(buyer=factories.StartupFactory(), listing=listing, start=start)
    other_chip = factories.ListingFactory(price_per_gpu_hour="40.0000")  # another accelerator: another market
    af.booking(
        buyer=startup, listing=other_chip, start=start, voucher_part="10.00", vouchers=[af.voucher(holder=startup)]
    )
    # when a voucher-paid booking at ``price`` joins them
    booking = af.booking(
        buyer=startup,
        listing=listing,
        start=start,
        price=price,
        voucher_part="16.00",
        vouchers=[af.voucher(holder=startup)],
    )
    flags.flags_compute()
    # then
    found = list(AnomalyFlag.objects.filter(kind="price_above_median"))
    assert [f.booking_id for f in found] == ([booking.pk] if flagged else [])
    if flagged:
        assert found[0].details["market_median"] == "10.0000" and found[0].details["market_bookings"] == 4


def test_price_median_is_per_month(startup):
    # given cheap bookings last month and one booking at twice the price this month, alone in its month
    listing = factories.ListingFactory()
    start = factories.next_hour(2)
    for _ in range(3):
        af.booking(buyer=factories.StartupFactory(), listing=listing, start=start - dt.timedelta(days=40))
    af.booking(
        buyer=startup,
        listing=listing,
        start=start,
        price="20",
        voucher_part="16.00",
        vouchers=[af.voucher(holder=startup)],
    )
    # when / then
    flags.flags_compute()
    assert kinds() == []


@pytest.mark.parametrize(("issued_days_ago", "flagged"), [(0, True), (3, False)])
def test_spend_velocity(startup, issued_days_ago, flagged):
    # given a ¥1 000 voucher, 95 % of it spent now
    v = af.voucher(holder=startup, face_value="1000.00", issued_at=timezone.now() - dt.timedelta(days=issued_days_ago))
    listing = factories.ListingFactory(price_per_gpu_hour="200.0000")
    af.booking(buyer=startup, listing=listing, voucher_part="950.00", vouchers=[v])
    # when
    flags.flags_compute()
    # then
    expected = [("spend_velocity", None, v.pk)] if flagged else []
    assert kinds() == expected


def test_spend_velocity_below_the_share_is_not_flagged(startup):
    # given 89.99 % spent right after issue
    v = af.voucher(holder=startup, face_value="1000.00")
    af.booking(
        buyer=startup,
        listing=factories.ListingFactory(price_per_gpu_hour="200.0000"),
        voucher_part="899.90",
        vouchers=[v],
    )
    # when / then
    flags.flags_compute()
    assert kinds() == []


@pytest.mark.parametrize(("gap_hours", "flagged"), [(0, True), (1, False)])
def test_split_bookings_dodging_the_per_booking_cap(startup, gap_hours, flagged):
    # given a program capping each booking's voucher part at 20, and two bookings of one cluster by one buyer
    program = VoucherProgramFactory(per_booking_cap="20.00")
    v = af.voucher(holder=startup, program=program)
    listing = factories.ListingFactory()
    start = factories.next_hour(2)
    first = af.booking(buyer=startup, listing=listing, start=start, voucher_part="16.00", vouchers=[v])
    second = af.booking(
        buyer=startup,
        listing=listing,
        start=first.end + dt.timedelta(hours=gap_hours),
        voucher_part="16.00",
        vouchers=[v],
    )
    # when
    flags.flags_compute()
    # then both halves are flagged when adjacent (16 + 16 > 20)
    found = list(AnomalyFlag.objects.filter(kind="split_booking").order_by("booking_id"))
    assert [f.booking_id for f in found] == ([first.pk, second.pk] if flagged else [])
    if flagged:
        assert found[0].details["adjacent"] == [second.pk] and found[0].program_id == program.pk


def test_adjacent_bookings_within_the_cap_are_not_split_flags(startup):
    # given adjacent bookings whose parts add up to exactly the cap
    program = VoucherProgramFactory(per_booking_cap="32.00")
    v = af.voucher(holder=startup, program=program)
    listing = factories.ListingFactory()
    first = af.booking(buyer=startup, listing=listing, voucher_part="16.00", vouchers=[v])
    af.booking(buyer=startup, listing=listing, start=first.end, voucher_part="16.00", vouchers=[v])
    # when / then
    flags.flags_compute()
    assert kinds() == []


@pytest.mark.parametrize(("export_controlled", "flagged"), [(True, True), (False, False)])
def test_voucher_spend_on_export_controlled_hardware(startup, export_controlled, flagged):
    # given
    listing = factories.ListingFactory(cluster__accelerator__export_controlled=export_controlled)
    booking = af.booking(buyer=startup, listing=listing, voucher_part="16.00", vouchers=[af.voucher(holder=startup)])
    # when
    flags.flags_compute()
    # then
    found = list(AnomalyFlag.objects.filter(kind="export_controlled"))
    assert [f.booking_id for f in found] == ([booking.pk] if flagged else [])
    if flagged:
        assert found[0].details["provenance_status"] == "missing"


def test_cancelled_bookings_are_ignored(startup):
    # given an export-controlled voucher booking that was cancelled
    listing = factories.ListingFactory(cluster__accelerator__export_controlled=True)
    af.booking(
        buyer=startup, listing=listing, voucher_part="16.00", vouchers=[af.voucher(holder=startup)], status="cancelled"
    )
    # when / then
    assert flags.flags_compute() == 0


def test_recomputation_is_idempotent_and_keeps_reviews(startup, platform_org):
    # given a flagged booking, computed and reviewed
    listing = factories.ListingFactory(cluster__accelerator__export_controlled=True)
    af.booking(buyer=startup, listing=listing, voucher_part="16.00", vouchers=[af.voucher(holder=startup)])
    assert flags.flags_compute() == 1
    flag = AnomalyFlag.objects.get()
    auditor = factories.member_of(platform_org, role="auditor")
    flags.flag_review(flag=flag, actor=auditor, decision="dismissed", note="reviewed provenance offline")
    # when computed again, in full and for the booking
    again = flags.flags_compute()
    for_booking = flags.flags_for_booking(flag.booking_id)
    # then
    assert (again, for_booking) == (0, 0)
    assert list(AnomalyFlag.objects.values_list("status", flat=True)) == ["dismissed"]


def test_flags_for_booking_looks_at_that_booking_only(startup):
    # given two export-controlled voucher bookings
    listing = factories.ListingFactory(cluster__accelerator__export_controlled=True)
    one = af.booking(buyer=startup, listing=listing, voucher_part="16.00", vouchers=[af.voucher(holder=startup)])
    af.booking(
        buyer=startup,
        listing=listing,
        start=one.end + dt.timedelta(hours=3),
        voucher_part="16.00",
        vouchers=[af.voucher(holder=startup)],
    )
    # when
    created = flags.flags_for_booking(one.pk)
    # then
    assert created == 1 and kinds() == [("export_controlled", one.pk, None)]
    assert flags.flags_for_booking(10**9) == 0


def test_flags_since_skips_older_bookings(startup):
    # given a flaggable booking created before ``since``
    listing = factories.ListingFactory(cluster__accelerator__export_controlled=True)
    af.booking(buyer=startup, listing=listing, voucher_part="16.00", vouchers=[af.voucher(holder=startup)])
    # when / then
    assert flags.flags_compute(since=timezone.now() + dt.timedelta(seconds=1)) == 0
    assert flags.flags_compute(since=timezone.now() - dt.timedelta(minutes=5)) == 1


def test_auditor_confirms_a_flag_once(open_flag, platform_org):
    # given
    auditor = factories.member_of(platform_org, role="auditor")
    # when
    reviewed = flags.flag_review(flag=open_flag, actor=auditor, decision="confirmed", note=" refer to the city ")
    # then
    assert (reviewed.status, reviewed.reviewer_id, reviewed.review_note) == (
        "confirmed",
        auditor.pk,
        "refer to the city",
    )
    assert reviewed.reviewed_at is not None
    event = AuditEvent.objects.get(action="audit.flag_reviewed")
    assert event.object_id == str(open_flag.pk) and event.data["decision"] == "confirmed"
    with pytest.raises(ApplicationError) as excinfo:
        flags.flag_review(flag=open_flag.pk, actor=auditor, decision="dismissed", note="")
    assert excinfo.value.status == 409


@pytest.mark.parametrize(
    ("role", "decision", "status", "field"), [("owner", "confirmed", 403, None), ("auditor", "maybe", 400, "decision")]
)
def test_bad_reviews_write_nothing(open_flag, platform_org, role, decision, status, field):
    # given
    user = factories.member_of(platform_org, role=role)
    # when
    with pytest.raises(ApplicationError) as excinfo:
        flags.flag_review(flag=open_flag, actor=user, decision=decision, note="x")
    # then
    assert excinfo.value.status == status and (field is None or field in excinfo.value.errors)
    open_flag.refresh_from_db()
    assert open_flag.status == "open" and not AuditEvent.objects.filter(action="audit.flag_reviewed").exists()

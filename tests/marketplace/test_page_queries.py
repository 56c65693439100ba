"""No main page makes more queries as its data grows: each page is requested with 2 and then with 20 of what it lists
(listings, bookings, bids, vouchers, ...) and must send exactly the same number of queries both times. A page whose
count grows with the rows has an N+1 query; the failure names the statements that grew."""

import datetime as dt
import re
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests import factories
from tests.helpers import page_input
from tests.orders.factories import fund

SMALL, LARGE = 2, 20  # 20: a full page of the paginated lists


class Market:
    """The people who read the pages and a provider's open listing; ``grow(kinds, n)`` adds rows of each kind until
    there are ``n`` (every kind one page lists: ``grow`` is called with 2, then with 20)."""

    def __init__(self):
        from listings.catalog import load_catalog
        from listings.models import Accelerator

        load_catalog(Accelerator)  # present after the migrations, unless a transactional test flushed it
        self.chips = list(Accelerator.objects.filter(export_controlled=False).order_by("slug"))
        self.controlled = Accelerator.objects.filter(export_controlled=True).order_by("slug").first()
        self.provider = factories.ProviderFactory(city="Shanghai")
        self.startup = factories.StartupFactory(city="Beijing")
        fund(self.startup, "100000000.00")
        self.platform = factories.PlatformFactory()
        self.users = {
            "startup": factories.member_of(self.startup),
            "provider": factories.member_of(self.provider),
            "staff": factories.member_of(self.platform),
            "auditor": factories.member_of(factories.PlatformFactory(), role="auditor"),
        }
        # The listing the detail and booking pages show: the first chip, so the market page's order book is its.
        self.listing = self._listing(self.chips[0], price="10.0000", node_count=4)
        self.made: Counter = Counter()
        self._hour = 3

    def _listing(self, chip, *, price, node_count=2, status=None):
        data_center = factories.DataCenterFactory(provider=self.provider, city="Shanghai")
        cluster = factories.ClusterFactory(data_center=data_center, accelerator=chip, node_count=node_count)
        extra = {"status": status} if status else {}
        return factories.ListingFactory(cluster=cluster, price_per_gpu_hour=Decimal(price), **extra)

    def _window(self, hours: int = 1) -> tuple[dt.datetime, dt.datetime]:
        """The next window of the shown listing: half a day after the last, so more bookings reach more of the
        days its page shows."""
        start = factories.next_hour(self._hour)
        self._hour += 12
        return start, start + dt.timedelta(hours=hours)

    def grow(self, kinds, n: int) -> None:
        for kind in kinds:
            for i in range(self.made[kind], n):
                getattr(self, f"_add_{kind}")(i)
            self.made[kind] = max(self.made[kind], n)

    # --- one row of each kind -------------------------------------------------------------------------------------

    def _add_listings(self, i):
        """An active listing of the provider in Shanghai, each on its own data centre and cluster."""
        self._listing(self.chips[i % len(self.chips)], price=f"{11 + i}.0000")

    def _add_vouchers(self, i):
        from tests.vouchers.factories import issued_voucher

        issued_voucher(holder=self.startup, face_value="50000.00")

    def _add_bookings(self, i):
        """A booking of the shown listing (held or confirmed), every other one paid partly with a new voucher."""
        from orders.services import booking_create
        from tests.vouchers.factories import issued_voucher

        vouchers = [issued_voucher(holder=self.startup, face_value="50000.00").pk] if i % 2 else []
        start, end = self._window()
        booking_create(
            buyer=self.startup,
            listing_id=self.listing.pk,
            nodes=1 + i % 2,
            start=start,
            end=end,
            vouchers=vouchers,
            confirm=i % 3 != 0,
        )

    def _add_bids(self, i):
        """An open bid for the first chip and one other."""
        from orders.bid_services import bid_place

        start = factories.next_hour(24 * 10)
        bid_place(
            buyer=self.startup,
            accelerators=[self.chips[0].slug, self.chips[1 + i % 3].slug],
            nodes=1,
            duration_hours=2,
            earliest_start=start,
            latest_end=start + dt.timedelta(hours=48),
            max_price_per_gpu_hour=Decimal(5 + i),
        )

    def _add_fills(self, i):
        """A bid filled by a booking of the shown listing (the market page's latest fills)."""
        from orders.bid_services import bid_match, bid_place

        start, end = self._window(hours=2)
        bid = bid_place(
            buyer=self.startup,
            accelerators=[self.chips[0].slug],
            nodes=1,
            duration_hours=2,
            earliest_start=start,
            latest_end=end,
            max_price_per_gpu_hour=Decimal("12.0000"),
        )
        bid_match(bid=bid, listing_id=self.listing.pk, start=start, end=end)

    def _add_programs(self, i):
        from tests.vouchers.factories import VoucherProgramFactory

        VoucherProgramFactory(city=("Shanghai", "Beijing")[i % 2])

    def _add_entries(self, i):
        """A movement of the startup's wallet (a deposit)."""
        fund(self.startup, f"{100 + i}.00")

    def _add_deposits(self, i):
        """A bank transfer recorded by staff, each from its own startup."""
        from ledger.deposits import deposit_record

        deposit_record(
            organization_id=factories.StartupFactory().pk,
            amount=Decimal(f"{1000 + i}.00"),
            reference=f"TRANSFER-{i}",
            actor=self.users["staff"],
        )

    def _add_payouts(self, i):
        """A settled booking of the provider, paid out in a payout of its own."""
        from settlement import payout_services, services
        from tests.settlement.factories import completed_booking

        booking = completed_booking(buyer=self.startup, listing=self.listing, subtotal=f"{200 + i}.00")
        services.booking_settle(booking_id=booking.pk)
        assert len(payout_services.payout_batch_create(provider_id=self.provider.pk)) == 1

    def _add_reviews(self, i):
        """A listing waiting for review, on export-controlled hardware with its provenance declaration."""
        from listings.models import Listing, ProvenanceDeclaration

        listing = self._listing(self.controlled, price="20.0000", status=Listing.Status.PENDING_REVIEW)
        ProvenanceDeclaration.objects.create(
            cluster=listing.cluster,
            invoice_number=f"INV-{i}",
            supplier="Supplier",
            serial_numbers=[f"SN-{i}"],
            import_documents=f"customs {i}",
        )

    def _add_spend(self, i):
        """A booking paid partly with a voucher of a program of its own (the spend report's rows)."""
        from tests.oversight import factories as audit_factories

        chip = self.chips[i % len(self.chips)]
        voucher = audit_factories.voucher(holder=self.startup, city=("Shanghai", "Beijing")[i % 2])
        audit_factories.booking(
            buyer=self.startup,
            listing=self._listing(chip, price=f"{10 + i}.0000"),
            voucher_part="40.00",
            vouchers=[voucher],
        )

    def _add_flags(self, i):
        """An open anomaly flag on a voucher-paid booking."""
        from oversight.models import AnomalyFlag
        from tests.oversight import factories as audit_factories

        voucher = audit_factories.voucher(holder=self.startup)
        booking = audit_factories.booking(
            buyer=self.startup, listing=self.listing, voucher_part="40.00", vouchers=[voucher]
        )
        AnomalyFlag.objects.create(
            kind=AnomalyFlag.Kind.SPEND_VELOCITY,
            booking=booking,
            voucher=voucher,
            program=voucher.program,
            organization=self.startup,
            details={"row": i},
        )

    def _add_events(self, i):
        """An audit event by a user of its own."""
        from audit.services import audit_record

        audit_record(
            action="test.page_queries",
            actor=factories.UserFactory(),
            organization_id=self.startup.pk,
            object_type="test",
            object_id=str(i),
            data={"row": i},
        )


def window_query() -> str:
    start = factories.next_hour(4)
    return f"start={page_input(start)}&end={page_input(start + dt.timedelta(hours=3))}"


# Who reads the page, its URL, and what it lists (``Market._add_<kind>``).
PAGES = [
    ("startup", "/", ("vouchers", "bookings", "bids")),
    ("startup", "/listings/", ("listings", "vouchers")),
    ("startup", "/listings/?city=Shanghai&{window}", ("listings", "vouchers")),
    ("startup", "/listings/{listing}/", ("bookings",)),
    ("startup", "/listings/{listing}/book/", ("vouchers",)),
    ("startup", "/bookings/", ("bookings",)),
    ("startup", "/bids/", ("bids", "fills", "vouchers")),
    ("startup", "/market/?accelerator={chip}", ("listings", "bids", "fills")),
    ("startup", "/wallet/", ("entries",)),
    ("startup", "/vouchers/", ("vouchers",)),
    ("startup", "/vouchers/programs/", ("programs",)),
    ("provider", "/", ("bookings",)),
    ("provider", "/provider/", ("listings",)),
    ("provider", "/payouts/", ("payouts",)),
    ("staff", "/", ("reviews", "payouts")),
    ("staff", "/review/", ("reviews",)),
    ("staff", "/deposits/", ("deposits",)),
    ("staff", "/payouts/", ("payouts",)),
    ("auditor", "/audit/", ("spend", "flags")),
    ("auditor", "/audit/events/?action=test.page_queries", ("events",)),
    ("auditor", "/audit/flags/", ("flags",)),
]
# Pages that show a summary of fixed size, not a row per object: what in their context must change with the rows.
SUMMARIES = {"/listings/{listing}/": "timeline"}  # the listing's free nodes per day for 14 days


def _shape(sql: str) -> str:
    """A statement with its literals and id lists blanked, so the same query for another row compares equal."""
    return re.sub(r"\b\d+\b", "N", re.sub(r"'[^']*'", "S", re.sub(r"\((?:\s*\d+\s*,)+\s*\d+\s*\)", "(N…)", sql)))


def _grown(small, large) -> list[str]:
    """The statements sent more often with many rows than with few (the N+1 queries), with how often."""
    few, many = Counter(_shape(q["sql"]) for q in small), Counter(_shape(q["sql"]) for q in large)
    return [f"{many[sql]} × (was {few[sql]}): {sql}" for sql in many if many[sql] > few[sql]]


@pytest.mark.django_db
@pytest.mark.parametrize(("who", "path", "kinds"), PAGES, ids=[f"{who} {path}" for who, path, _ in PAGES])
def test_a_page_sends_as_many_queries_for_20_rows_as_for_2(who, path, kinds):
    # given a market with 2 of everything the page lists, and a reader who has opened it once (caches warm)
    market = Market()
    client = Client()
    client.force_login(market.users[who])
    url = path.format(listing=market.listing.pk, chip=market.chips[0].slug, window=window_query())
    market.grow(kinds, SMALL)
    assert client.get(url).status_code == 200
    queries, pages = {}, {}
    for n in (SMALL, LARGE):
        # when the page is read with n of each
        market.grow(kinds, n)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, (url, n, response.status_code)
        queries[n] = captured.captured_queries
        pages[n] = response.context[SUMMARIES[path]] if path in SUMMARIES else response.content
    # then it showed more (or, for a summary, something else), with exactly as many queries
    if path in SUMMARIES:
        assert pages[LARGE] != pages[SMALL], f"{url} shows the same with {LARGE} rows as with {SMALL}"
    else:
        assert len(pages[LARGE]) > len(pages[SMALL]), f"{url} shows no more with {LARGE} rows than with {SMALL}"
    few, many = len(queries[SMALL]), len(queries[LARGE])
    assert many == few, f"{url}: {few} queries with {SMALL} rows, {many} with {LARGE}; grown:\n" + "\n".join(
        _grown(queries[SMALL], queries[LARGE])
    )

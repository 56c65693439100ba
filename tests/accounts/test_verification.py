"""Verification by platform staff: the queue, verify / reject (audited, owners told), and the write check — a pending
or rejected organization browses but gets 403 with the reason on every write (book, bid, list, apply)."""

import datetime as dt
import importlib
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps as django_apps
from django.core import mail
from django.test import Client

from accounts.models import Organization, VerificationStatus
from audit.models import AuditEvent
from listings.models import DataCenter, Listing
from orders.models import Bid, Booking
from tests import factories
from tests.orders.factories import booking_body, fund
from tests.vouchers.factories import funded_program
from vouchers.models import VoucherApplication

pytestmark = pytest.mark.django_db

PENDING_REASON = "pending verification by platform staff"


@pytest.fixture
def pending_startup():
    org = factories.StartupFactory(verification_status=VerificationStatus.PENDING)
    fund(org, "100000.00")
    return org


@pytest.fixture
def pending_provider():
    return factories.ProviderFactory(verification_status=VerificationStatus.PENDING)


def _decisions() -> int:
    return AuditEvent.objects.filter(action__startswith="accounts.organization_").count()


# --- verify and reject ---------------------------------------------------------------------------------------------


def test_staff_verify_a_pending_organization(staff_client, pending_startup, django_capture_on_commit_callbacks):
    owner = factories.member_of(pending_startup, email="owner@example.cn")
    # when staff verify it
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(f"/api/v1/organizations/{pending_startup.pk}/verify/", {}, format="json")
    # then it is verified, with who and when, an audit event, and its owners are told
    assert response.status_code == 200, response.content
    assert response.json()["verification_status"] == "verified"
    pending_startup.refresh_from_db()
    assert pending_startup.verification_status == "verified"
    assert pending_startup.verification_decided_by == staff_client.user
    event = AuditEvent.objects.get(action="accounts.organization_verified")
    assert (event.organization_id, event.actor_id, event.data["from"]) == (
        pending_startup.pk,
        staff_client.user.pk,
        "pending",
    )
    assert [m.to for m in mail.outbox] == [[owner.email]]
    assert "is verified" in mail.outbox[0].subject


def test_reject_needs_a_reason_and_then_records_it(staff_client, pending_startup, django_capture_on_commit_callbacks):
    factories.member_of(pending_startup)
    url = f"/api/v1/organizations/{pending_startup.pk}/reject/"
    # when staff reject without a reason / then 400 on ``reason`` and nothing changes
    for bad in ({}, {"reason": "   "}):
        response = staff_client.post(url, bad, format="json")
        assert response.status_code == 400 and "reason" in response.json()["errors"]
    pending_startup.refresh_from_db()
    assert pending_startup.verification_status == "pending" and _decisions() == 0
    # when with a reason / then rejected, audited with the reason, owners told why
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url, {"reason": "The credit code belongs to another company."}, format="json")
    assert response.status_code == 200
    assert response.json()["verification_reason"] == "The credit code belongs to another company."
    assert (
        AuditEvent.objects.get(action="accounts.organization_rejected").data["reason"]
        == "The credit code belongs to another company."
    )
    assert "belongs to another company" in mail.outbox[0].body


def test_a_decision_is_made_once(staff_client, pending_startup):
    staff_client.post(f"/api/v1/organizations/{pending_startup.pk}/verify/", {}, format="json")
    again = staff_client.post(f"/api/v1/organizations/{pending_startup.pk}/reject/", {"reason": "x"}, format="json")
    assert again.status_code == 409
    assert _decisions() == 1
    assert staff_client.post("/api/v1/organizations/999999/verify/", {}, format="json").status_code == 404


@pytest.mark.parametrize("role", ["anonymous", "startup", "provider", "issuer", "auditor"])
def test_only_platform_staff_decide_or_see_the_queue(
    role, pending_startup, api, startup_client, provider_client, issuer_client, auditor_client
):
    client = {
        "anonymous": api,
        "startup": startup_client,
        "provider": provider_client,
        "issuer": issuer_client,
        "auditor": auditor_client,
    }[role]
    expected = {401} if role == "anonymous" else {403}
    assert client.post(f"/api/v1/organizations/{pending_startup.pk}/verify/", {}, format="json").status_code in expected
    assert (
        client.post(f"/api/v1/organizations/{pending_startup.pk}/reject/", {"reason": "no"}, format="json").status_code
        in expected
    )
    assert client.get("/api/v1/organizations/").status_code in expected
    pending_startup.refresh_from_db()
    assert pending_startup.verification_status == "pending" and _decisions() == 0


def test_the_review_list_puts_pending_first_and_filters(staff_client, pending_startup):
    factories.StartupFactory()  # verified
    rows = staff_client.get("/api/v1/organizations/").json()["results"]
    assert rows[0]["id"] == pending_startup.pk
    pending = staff_client.get("/api/v1/organizations/?verification_status=pending").json()["results"]
    assert [row["id"] for row in pending] == [pending_startup.pk]
    assert {"credit_code", "owners", "legal_representative"} <= set(pending[0])


def test_the_queue_page_for_staff_only(platform_org, pending_startup):
    staff = Client()
    staff.force_login(factories.member_of(platform_org))
    page = staff.get("/staff/organizations/")
    assert page.status_code == 200 and pending_startup.name in page.content.decode()
    # reject without a reason: a message, nothing decided
    staff.post(f"/staff/organizations/{pending_startup.pk}/reject/", {"reason": ""})
    pending_startup.refresh_from_db()
    assert pending_startup.verification_status == "pending"
    # verify from the page
    response = staff.post(f"/staff/organizations/{pending_startup.pk}/verify/")
    assert response.status_code == 302
    pending_startup.refresh_from_db()
    assert pending_startup.verification_status == "verified"
    # others: 403 on the page and on the decision
    other = Client()
    other.force_login(factories.member_of(factories.StartupFactory()))
    assert other.get("/staff/organizations/").status_code == 403
    assert other.post(f"/staff/organizations/{pending_startup.pk}/verify/").status_code == 403
    assert Client().get("/staff/organizations/").status_code == 302  # to the login page


def test_existing_organizations_are_verified_by_the_migration():
    # given organizations as they were before verification existed (the column's default: pending)
    org = factories.StartupFactory(verification_status=VerificationStatus.PENDING)
    migration = importlib.import_module("accounts.migrations.0003_organization_verification_invitations")
    # when the data migration runs
    migration.verify_existing(django_apps, None)
    # then they are verified
    org.refresh_from_db()
    assert org.verification_status == "verified"


def test_me_shows_each_organizations_verification(client_for, pending_startup):
    user = factories.member_of(pending_startup)
    body = client_for(user).get("/api/v1/me/").json()
    assert body["memberships"][0]["organization"]["verification_status"] == "pending"


# --- the write check: one test per write route ---------------------------------------------------------------------


def _assert_refused(response, reason=PENDING_REASON):
    assert response.status_code == 403, response.content
    assert reason in response.json()["detail"]


def test_pending_startup_cannot_book_but_can_quote(client_for, pending_startup):
    client = client_for(factories.member_of(pending_startup))
    listing = factories.ListingFactory()
    # browsing and pricing are reads: allowed
    assert client.get("/api/v1/listings/").status_code == 200
    assert client.post("/api/v1/quotes/", booking_body(listing), format="json").status_code == 200
    # booking is a write: 403 with the reason, nothing written
    _assert_refused(client.post("/api/v1/bookings/", booking_body(listing), format="json"))
    assert not Booking.objects.exists()


def test_pending_startup_cannot_bid(client_for, pending_startup):
    client = client_for(factories.member_of(pending_startup))
    listing = factories.ListingFactory()
    start = factories.next_hour(2)
    body = {
        "accelerators": [listing.cluster.accelerator.slug],
        "nodes": 1,
        "duration_hours": 2,
        "earliest_start": start.isoformat(),
        "latest_end": (start + dt.timedelta(hours=10)).isoformat(),
        "max_price_per_gpu_hour": "20.0000",
    }
    _assert_refused(client.post("/api/v1/bids/", body, format="json"))
    assert not Bid.objects.exists()


def test_pending_provider_cannot_list(client_for, pending_provider):
    client = client_for(factories.member_of(pending_provider))
    cluster = factories.ClusterFactory(data_center__provider=pending_provider)
    start = factories.next_hour(2)
    body = {
        "cluster": cluster.pk,
        "price_per_gpu_hour": "12.5",
        "available_from": start.isoformat(),
        "available_until": (start + dt.timedelta(days=7)).isoformat(),
        "min_hours": 2,
    }
    _assert_refused(client.post("/api/v1/listings/", body, format="json"))
    _assert_refused(
        client.post(
            "/api/v1/data-centers/",
            {"name": "DC", "city": "Shanghai", "operator": "private", "region": "East"},
            format="json",
        )
    )
    assert not Listing.objects.exists()
    assert DataCenter.objects.filter(provider=pending_provider).count() == 1  # the cluster's, made by the factory


def test_pending_startup_cannot_apply_for_vouchers(client_for, pending_startup):
    client = client_for(factories.member_of(pending_startup))
    program = funded_program()
    _assert_refused(
        client.post(
            f"/api/v1/voucher-programs/{program.pk}/applications/",
            {"requested_amount": "5000.00", "purpose": "training"},
            format="json",
        )
    )
    assert not VoucherApplication.objects.exists()


def test_a_rejected_organization_is_told_the_reason(client_for, pending_startup):
    pending_startup.verification_status = VerificationStatus.REJECTED
    pending_startup.verification_reason = "The licence has expired."
    pending_startup.save()
    client = client_for(factories.member_of(pending_startup))
    _assert_refused(
        client.post("/api/v1/bookings/", booking_body(factories.ListingFactory()), format="json"),
        reason="The licence has expired",
    )


def test_after_verification_the_startup_books(client_for, staff_client, pending_startup):
    client = client_for(factories.member_of(pending_startup))
    listing = factories.ListingFactory()
    assert client.post("/api/v1/bookings/", booking_body(listing), format="json").status_code == 403
    staff_client.post(f"/api/v1/organizations/{pending_startup.pk}/verify/", {}, format="json")
    response = client.post("/api/v1/bookings/", booking_body(listing), format="json")
    assert response.status_code == 201, response.content


def _page_client(org) -> Client:
    client = Client()
    client.force_login(factories.member_of(org))
    return client


def _local(hours: int) -> str:
    return factories.next_hour(hours).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%dT%H:%M")


def test_pages_refuse_a_pending_organizations_writes_with_the_reason(pending_startup, pending_provider):
    listing = factories.ListingFactory()
    startup = _page_client(pending_startup)
    # the pages themselves can be browsed
    assert startup.get(f"/listings/{listing.pk}/book/").status_code == 200
    # book
    booked = startup.post(f"/listings/{listing.pk}/book/", {"nodes": 1, "start": _local(24), "end": _local(26)})
    assert booked.status_code == 403 and PENDING_REASON in booked.content.decode()
    # bid
    bid = startup.post(
        "/bids/",
        {
            "accelerators": [listing.cluster.accelerator.slug],
            "nodes": 1,
            "duration_hours": 2,
            "start": _local(24),
            "end": _local(40),
            "max_price_per_gpu_hour": "20",
        },
    )
    assert bid.status_code == 403 and PENDING_REASON in bid.content.decode()
    # apply
    program = funded_program()
    applied = startup.post(
        f"/vouchers/programs/{program.pk}/apply/", {"requested_amount": "5000.00", "purpose": "training"}
    )
    assert applied.status_code == 403 and PENDING_REASON in applied.content.decode()
    # list (the provider's page opens; its writes are refused)
    provider = _page_client(pending_provider)
    assert provider.get("/provider/").status_code == 200
    refused = provider.post(
        "/provider/data-centers/", {"name": "DC", "city": "Shanghai", "operator": "private", "region": "East"}
    )
    assert refused.status_code == 403 and PENDING_REASON in refused.content.decode()
    assert not (
        Booking.objects.exists()
        or Bid.objects.exists()
        or VoucherApplication.objects.exists()
        or DataCenter.objects.filter(provider=pending_provider).exists()
    )


def test_new_organizations_default_to_pending():
    org = Organization.objects.create(
        kind="startup", name="Fresh", city="Shanghai", credit_code=factories.credit_code(880_001)
    )
    assert org.verification_status == VerificationStatus.PENDING


def test_the_admin_shows_verification_read_only(pending_startup):
    admin = Client()
    admin.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    assert admin.get("/admin/accounts/organization/?verification_status__exact=pending").status_code == 200
    page = admin.get(f"/admin/accounts/organization/{pending_startup.pk}/change/")
    assert page.status_code == 200 and 'name="verification_status"' not in page.content.decode()
    assert admin.get("/admin/accounts/invitation/").status_code == 200

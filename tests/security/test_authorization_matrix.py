"""Authorization matrix: every API route × every role, against the objects of another organization (B).

Roles are members of organizations "A" (startup, provider, issuer), an auditor, platform staff and anonymous, and
"auditor" memberships outside auditor organizations (of a startup, of a provider), which grant nothing.
Requests for B's objects answer 401/403/404 unless the route grants that role access to every organization's
objects (listed per route); lists never contain B's rows. ``test_every_api_route_is_in_the_matrix`` fails when a
route is added without a row here, so new routes cannot be forgotten.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import keys as ssh_keys
from accounts import tokens as api_tokens
from audit.models import AuditEvent
from listings import agent_services
from listings.models import Listing
from orders import bid_services, resale_services
from orders import services as order_services
from orders.models import BookingDispute, DeliveryIncident
from settlement import payout_services
from settlement import services as settlement_services
from settlement.models import Payout, ReimbursementClaim
from tests import factories
from tests.agent.helpers import ed25519_key
from tests.orders.factories import booking_body, booking_kwargs, fund
from tests.settlement.factories import completed_booking
from tests.vouchers.factories import funded_program, issued_voucher
from vouchers.models import VoucherApplication

ROLES = ["anonymous", "startup", "provider", "issuer", "auditor", "staff", "startup_auditor", "provider_auditor"]
DENIED = {401, 403, 404}


def api_route_names() -> set[str]:
    """Names of every route under /api/v1/ as the URL resolver has them."""
    names: set[str] = set()

    def walk(patterns, prefix: str) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern) and (prefix + str(entry.pattern)).startswith("api/v1/"):
                names.add(entry.name)

    walk(get_resolver().url_patterns, "")
    return names


@dataclass
class World:
    """Organizations A (whose members ask) and B (whose objects are asked for), and B's objects."""

    clients: dict[str, APIClient]
    users: dict
    b: dict = field(default_factory=dict)


def build_world() -> World:
    a_startup, a_provider, a_issuer = (
        factories.StartupFactory(),
        factories.ProviderFactory(),
        factories.IssuerFactory(),
    )
    platform = factories.PlatformFactory()
    users = {
        "startup": factories.member_of(a_startup),
        "provider": factories.member_of(a_provider),
        "issuer": factories.member_of(a_issuer),
        "auditor": factories.member_of(platform, role="auditor"),
        "staff": factories.member_of(platform),
        "anonymous": None,
        # auditor rights come from an auditor organization (platform or issuer), not from the role alone
        "startup_auditor": factories.member_of(factories.StartupFactory(), role="auditor"),
        "provider_auditor": factories.member_of(factories.ProviderFactory(), role="auditor"),
    }
    clients = {}
    for role, user in users.items():
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        clients[role] = client

    # B: a startup with a voucher from B's issuer, a provider with listings (active, draft, pending review), a
    # held booking, an open bid, a settled booking with its reimbursement claim, and a payout.
    b_startup, b_provider, b_issuer = (
        factories.StartupFactory(),
        factories.ProviderFactory(),
        factories.IssuerFactory(),
    )
    listing = factories.ListingFactory(cluster__data_center__provider=b_provider)
    draft = factories.ListingFactory(cluster=listing.cluster, status=Listing.Status.DRAFT)
    pending = factories.ListingFactory(cluster=listing.cluster, status=Listing.Status.PENDING_REVIEW)
    program = funded_program(issuer=b_issuer)
    voucher = issued_voucher(holder=b_startup, program=program)
    application = VoucherApplication.objects.create(
        program=program,
        applicant=factories.StartupFactory(),
        requested_amount=Decimal("5000.00"),
        purpose="fine-tuning",
    )
    fund(b_startup, "1000000.00")
    booking = order_services.booking_create(buyer=b_startup, **booking_kwargs(listing))
    bid = bid_services.bid_place(
        buyer=b_startup,
        accelerators=[listing.cluster.accelerator.slug],
        nodes=1,
        duration_hours=2,
        earliest_start=factories.next_hour(48),
        latest_end=factories.next_hour(60),
        max_price_per_gpu_hour=Decimal("1.0000"),
    )
    settled = completed_booking(buyer=b_startup, listing=listing, vouchers=[voucher], subtotal="10000.00")
    settlement_services.booking_settle(booking_id=settled.pk)
    payout_services.payout_batch_create(provider_id=b_provider.pk)
    statement = payout_services.statements_issue(until=timezone.now(), program_id=program.pk)[0]
    world = World(clients=clients, users=users)
    world.b = {
        "startup": b_startup,
        "provider": b_provider,
        "issuer": b_issuer,
        "listing": listing,
        "draft": draft,
        "pending": pending,
        "cluster": listing.cluster,
        "data_center": listing.cluster.data_center,
        "program": program,
        "voucher": voucher,
        "application": application,
        "booking": booking,
        "bid": bid,
        "settled": settled,
        "claim": ReimbursementClaim.objects.get(booking=settled),
        "payout": Payout.objects.get(provider=b_provider),
        "statement": statement,
        "model_filing": factories.ModelFilingFactory(organization=b_startup, status="pending"),
    }
    # delivery (issue 20): B's cluster agent token, B's SSH key, an incident B reported on its booking
    world.b["agent_token"] = agent_services.agent_token_create(cluster=listing.cluster, name="b")[0]
    world.b["ssh_key"] = ssh_keys.ssh_key_add(organization=b_startup, name="b", public_key=ed25519_key(1))
    # B's business licence (issue 19)
    b_startup.business_licence.save("b.pdf", ContentFile(b"%PDF-1.4 b"), save=False)
    b_startup.business_licence_type = "application/pdf"
    b_startup.save(update_fields=["business_licence", "business_licence_type"])
    # named API tokens (issue 19): a token of a member of B
    world.b["api_token"] = api_tokens.api_token_create(user=factories.member_of(b_startup), name="b")[0]
    world.b["booking_event"] = AuditEvent.objects.get(object_type="orders.booking", object_id=str(booking.pk))
    world.b["incident"] = DeliveryIncident.objects.create(
        booking=booking, source="buyer", status="reported", started_at=booking.start, description="down"
    )
    # resale (issue 21): B's confirmed booking with an open resale ask and a withdrawn one
    confirmed = order_services.booking_create(
        buyer=b_startup, **booking_kwargs(listing, start_in_hours=30), confirm=True
    )
    resale = {
        "booking_id": confirmed.pk,
        "seller": b_startup,
        "nodes": 1,
        "start": confirmed.start,
        "end": confirmed.end,
        "price_per_gpu_hour": Decimal("9.0000"),
    }
    world.b["confirmed"] = confirmed
    world.b["withdrawn_ask"] = resale_services.resale_ask_withdraw(
        ask=resale_services.resale_ask_create(**resale), seller=b_startup
    )
    world.b["resale_ask"] = resale_services.resale_ask_create(**resale)
    world.b["dispute"] = BookingDispute.objects.create(booking=booking, reason="down")
    return world


def later(hours: int) -> str:
    return factories.next_hour(hours).isoformat().replace("+00:00", "Z")


# --- the matrix ----------------------------------------------------------------------------------------------
# Each row: requests that reach one of B's objects (method, path, body) and the roles allowed to reach every
# organization's objects there. Public routes (no organization's private object) are listed in PUBLIC with why.
PUBLIC = {
    "api-schema": "the OpenAPI document",
    "api-docs": "the Swagger page",
    "api-token": "login (tests/security/test_login_throttle.py)",
    "api-me": "the caller's own user and memberships only",
    "api-accelerators": "the public chip catalog",
    "api-market-depth": "aggregated public asks and bids, no organizations",
    "api-market-index": "daily price index fixings per accelerator and city: aggregates, no organizations "
    "(tests/market/test_api.py: every signed-in role reads it, anonymous callers are refused)",
    "api-signup": "anonymous sign-up: creates only its own user and organization (tests/accounts/test_signup.py)",
    "api-signup-confirm": "a signed, one-use e-mail token is the credential",
    "api-signup-resend": "anonymous: the same answer whether an account exists (tests/accounts/test_onboarding.py)",
    "api-invitation-accept": "the e-mailed invitation token is the credential (tests/accounts/test_teams.py)",
    # the signed audit log (issue 24): sizes, hashes and signatures of the whole log, no organization's event data
    "api-audit-public-key": "the public key that signs the audit log's tree heads",
    "api-audit-public-keys": "the current and previous public keys that sign the audit log's tree heads",
    "api-audit-tree-head": "the newest signed tree head (tests/oversight/test_audit_log_api.py)",
    "api-audit-tree-heads": "every signed tree head",
    "api-audit-consistency": "consistency proofs between tree sizes: hashes only",
}


# Every signed-in role reads another organization's public profile (name, kind, city, verified); only its members and
# staff get the private fields.
PUBLIC_PROFILE = {"startup", "provider", "issuer", "auditor", "staff", "startup_auditor", "provider_auditor"}


def object_requests(b: dict) -> dict[str, tuple[list[tuple], set[str]]]:
    return {
        "api-listing": (
            [
                ("get", f"/api/v1/listings/{b['draft'].pk}/", None),
                ("patch", f"/api/v1/listings/{b['listing'].pk}/", {"price_per_gpu_hour": "0.0100"}),
            ],
            {"staff"},
        ),  # platform staff review every listing, drafts included
        "api-listing-submit": ([("post", f"/api/v1/listings/{b['draft'].pk}/submit/", {})], set()),
        "api-listing-pause": ([("post", f"/api/v1/listings/{b['listing'].pk}/pause/", {})], set()),
        "api-listing-resume": ([("post", f"/api/v1/listings/{b['listing'].pk}/resume/", {})], set()),
        "api-listing-review": (
            [("post", f"/api/v1/listings/{b['pending'].pk}/review/", {"decision": "approve", "note": "ok"})],
            {"staff"},
        ),
        "api-clusters": (
            [
                (
                    "post",
                    "/api/v1/clusters/",
                    {
                        "data_center": b["data_center"].pk,
                        "name": "stolen",
                        "accelerator": b["cluster"].accelerator.slug,
                        "gpus_per_node": 8,
                        "node_count": 1,
                        "interconnect": "IB",
                    },
                )
            ],
            set(),
        ),
        "api-listings": (
            [
                (
                    "post",
                    "/api/v1/listings/",
                    {
                        "cluster": b["cluster"].pk,
                        "price_per_gpu_hour": "1.0000",
                        "available_from": later(1),
                        "available_until": later(100),
                        "min_hours": 1,
                    },
                )
            ],
            set(),
        ),
        "api-quote": ([("post", "/api/v1/quotes/", booking_body(b["listing"], vouchers=[b["voucher"].pk]))], set()),
        "api-bookings": (
            [("post", "/api/v1/bookings/", booking_body(b["listing"], start_in_hours=200, vouchers=[b["voucher"].pk]))],
            set(),
        ),
        "api-booking": ([("get", f"/api/v1/bookings/{b['booking'].pk}/", None)], set()),
        "api-booking-confirm": ([("post", f"/api/v1/bookings/{b['booking'].pk}/confirm/", {})], set()),
        "api-booking-cancel": ([("post", f"/api/v1/bookings/{b['booking'].pk}/cancel/", {})], set()),
        "api-bids": (
            [
                (
                    "post",
                    "/api/v1/bids/",
                    {
                        "accelerators": [b["cluster"].accelerator.slug],
                        "nodes": 1,
                        "duration_hours": 2,
                        "earliest_start": later(50),
                        "latest_end": later(60),
                        "max_price_per_gpu_hour": "1.0000",
                        "vouchers": [b["voucher"].pk],
                    },
                )
            ],
            set(),
        ),
        "api-bid": ([("get", f"/api/v1/bids/{b['bid'].pk}/", None)], set()),
        "api-bid-cancel": ([("post", f"/api/v1/bids/{b['bid'].pk}/cancel/", {})], set()),
        "api-data-centers": ([("get", "/api/v1/data-centers/", None)], set()),
        "api-voucher-programs": (
            [("get", "/api/v1/voucher-programs/", None)],
            {"startup", "auditor", "staff", "provider", "issuer", "startup_auditor", "provider_auditor"},
        ),
        "api-voucher-program": (
            [("patch", f"/api/v1/voucher-programs/{b['program'].pk}/", {"name": "taken over"})],
            set(),
        ),
        "api-voucher-program-apply": (
            [
                (
                    "post",
                    f"/api/v1/voucher-programs/{b['program'].pk}/applications/",
                    {"requested_amount": "5000.00", "purpose": "training"},
                )
            ],
            {"startup"},
        ),
        "api-voucher-applications": ([("get", "/api/v1/voucher-applications/", None)], set()),
        "api-voucher-application-approve": (
            [("post", f"/api/v1/voucher-applications/{b['application'].pk}/approve/", {"face_value": "5000.00"})],
            set(),
        ),
        "api-voucher-application-reject": (
            [("post", f"/api/v1/voucher-applications/{b['application'].pk}/reject/", {"reason": "no"})],
            set(),
        ),
        "api-vouchers": ([("get", "/api/v1/vouchers/", None)], set()),
        "api-voucher": ([("get", f"/api/v1/vouchers/{b['voucher'].pk}/", None)], set()),
        # the private fields (credit code, owners) of another organization never show: tests/accounts/test_profiles.py
        "api-organization": ([("get", f"/api/v1/organizations/{b['startup'].pk}/", None)], set(PUBLIC_PROFILE)),
        # platform staff and every city issuer check model filings against the public registry
        "api-model-filings": ([("get", "/api/v1/model-filings/", None)], {"issuer", "staff"}),
        "api-model-filing-verify": (
            [("post", f"/api/v1/model-filings/{b['model_filing'].pk}/verify/", {})],
            {"issuer", "staff"},
        ),
        "api-model-filing-reject": (
            [("post", f"/api/v1/model-filings/{b['model_filing'].pk}/reject/", {"note": "not in the registry"})],
            {"issuer", "staff"},
        ),
        "api-voucher-revoke": ([("post", f"/api/v1/vouchers/{b['voucher'].pk}/revoke/", {"reason": "fraud"})], set()),
        "api-wallet": ([("get", "/api/v1/wallet/", None, {"HTTP_X_ORGANIZATION": str(b["startup"].pk)})], set()),
        "api-wallet-entries": (
            [("get", "/api/v1/wallet/entries/", None, {"HTTP_X_ORGANIZATION": str(b["startup"].pk)})],
            set(),
        ),
        "api-wallet-deposits": (
            [
                (
                    "post",
                    "/api/v1/wallet/deposits/",
                    {"organization": b["startup"].pk, "amount": "100.00", "reference": "x"},
                )
            ],
            {"staff"},
        ),
        "api-audit-events": ([("get", "/api/v1/audit/events/", None)], {"auditor", "issuer"}),
        "api-audit-spend": ([("get", "/api/v1/audit/spend/?group_by=city", None)], {"auditor", "issuer"}),
        "api-audit-spend-csv": ([("get", "/api/v1/audit/spend.csv", None)], {"auditor", "issuer"}),
        "api-audit-flags": ([("get", "/api/v1/audit/flags/", None)], {"auditor", "issuer"}),
        "api-audit-flag-review": ([("post", "/api/v1/audit/flags/999999/review/", {})], {"auditor"}),
        # a city's idle capacity: platform staff and auditors, and that city's issuers (A's issuer is not in Hefei)
        "api-market-idle-capacity": ([("get", "/api/v1/market/idle-capacity/?city=Hefei", None)], {"auditor", "staff"}),
        # an event's inclusion proof (its leaf is the event): auditors, and the organization the event concerns
        "api-audit-event-proof": ([("get", f"/api/v1/audit/events/{b['booking_event'].pk}/proof/", None)], {"auditor"}),
        "api-audit-export": ([("get", "/api/v1/audit/export.json", None)], {"auditor", "issuer"}),
        "api-booking-movements": ([("get", f"/api/v1/settlement/bookings/{b['settled'].pk}/movements/", None)], set()),
        "api-payout-list": ([("get", "/api/v1/payouts/", None)], {"staff"}),
        "api-payout-detail": ([("get", f"/api/v1/payouts/{b['payout'].pk}/", None)], {"staff"}),
        "api-payout-mark-paid": ([("post", f"/api/v1/payouts/{b['payout'].pk}/mark-paid/", {})], {"staff"}),
        "api-claim-list": ([("get", "/api/v1/reimbursement-claims/", None)], {"staff"}),
        "api-claim-mark-paid": ([("post", f"/api/v1/reimbursement-claims/{b['claim'].pk}/mark-paid/", {})], {"staff"}),
        # platform staff and auditors read every city's statements; staff may also record a payment
        "api-statement-list": ([("get", "/api/v1/statements/", None)], {"staff", "auditor"}),
        "api-statement-detail": ([("get", f"/api/v1/statements/{b['statement'].pk}/", None)], {"staff", "auditor"}),
        "api-statement-pay": ([("post", f"/api/v1/statements/{b['statement'].pk}/pay/", {})], {"staff"}),
        "api-organizations": (
            [
                ("get", "/api/v1/organizations/", None),
                # only platform staff create issuer and platform organizations (tests/accounts/test_onboarding.py)
                ("post", "/api/v1/organizations/", {"kind": "issuer", "name": "Fake Office", "city": "Shanghai"}),
            ],
            {"staff"},
        ),
        "api-organization-verify": ([("post", f"/api/v1/organizations/{b['startup'].pk}/verify/", {})], {"staff"}),
        "api-organization-reject": (
            [("post", f"/api/v1/organizations/{b['startup'].pk}/reject/", {"reason": "x"})],
            {"staff"},
        ),
        "api-organization-invitations": (
            [
                (
                    "post",
                    f"/api/v1/organizations/{b['startup'].pk}/invitations/",
                    {"email": "x@example.cn", "role": "member"},
                )
            ],
            set(),
        ),
        "api-organization-members": ([("get", f"/api/v1/organizations/{b['startup'].pk}/members/", None)], set()),
        "api-organization-member": ([("delete", f"/api/v1/organizations/{b['startup'].pk}/members/1/", None)], set()),
        # delivery (issue 20): the agent API takes only ``Authorization: Agent <token>`` (every role here: 401)
        "api-agent-inventory": ([("post", "/api/v1/agent/inventory/", {"hostname": "x"})], set()),
        "api-agent-heartbeats": ([("post", "/api/v1/agent/heartbeats/", {"hostname": "x"})], set()),
        "api-agent-handovers": ([("get", "/api/v1/agent/handovers/", None)], set()),
        "api-agent-handover-report": ([("post", "/api/v1/agent/handovers/1/report/", {"status": "failed"})], set()),
        "api-cluster-agent-tokens": (
            [
                ("get", f"/api/v1/clusters/{b['cluster'].pk}/agent-tokens/", None),
                ("post", f"/api/v1/clusters/{b['cluster'].pk}/agent-tokens/", {"name": "stolen"}),
            ],
            set(),
        ),
        "api-cluster-agent-token-revoke": (
            [("post", f"/api/v1/clusters/{b['cluster'].pk}/agent-tokens/{b['agent_token'].pk}/revoke/", {})],
            set(),
        ),
        "api-cluster-agent-nodes": ([("get", f"/api/v1/clusters/{b['cluster'].pk}/agent-nodes/", None)], set()),
        "api-cluster-agent-node-release": (
            [("post", f"/api/v1/clusters/{b['cluster'].pk}/agent-nodes/1/release/", {})],
            set(),
        ),
        "api-ssh-keys": (
            [
                ("get", "/api/v1/ssh-keys/", None),
                ("get", "/api/v1/ssh-keys/", None, {"HTTP_X_ORGANIZATION": str(b["startup"].pk)}),
            ],
            set(),
        ),
        "api-ssh-key": ([("delete", f"/api/v1/ssh-keys/{b['ssh_key'].pk}/", None)], set()),
        # platform staff read every organization's business licence (verification); only members upload
        "api-organization-licence": (
            [
                ("get", f"/api/v1/organizations/{b['startup'].pk}/licence/", None),
                ("post", f"/api/v1/organizations/{b['startup'].pk}/licence/", {}),
            ],
            {"staff"},
        ),
        # a user's named API tokens: nobody else lists or revokes them, staff included
        "api-tokens": ([("get", "/api/v1/tokens/", None)], set()),
        "api-token-detail": ([("delete", f"/api/v1/tokens/{b['api_token'].pk}/", None)], set()),
        "api-booking-access": ([("get", f"/api/v1/bookings/{b['booking'].pk}/access/", None)], set()),
        "api-booking-incidents": (
            [
                ("get", f"/api/v1/bookings/{b['booking'].pk}/incidents/", None),
                ("post", f"/api/v1/bookings/{b['booking'].pk}/incidents/", {"description": "x"}),
            ],
            set(),
        ),
        # resale (issue 21): only the booking's buyer resells it and withdraws its asks; an open ask is public and
        # any startup may buy it (A's unfunded startup is refused with a 409), a withdrawn one is not
        "api-booking-resell": (
            [
                (
                    "post",
                    f"/api/v1/bookings/{b['confirmed'].pk}/resell/",
                    {
                        "nodes": 1,
                        "start": b["confirmed"].start.isoformat(),
                        "end": b["confirmed"].end.isoformat(),
                        "price_per_gpu_hour": "9.0000",
                    },
                )
            ],
            set(),
        ),
        "api-resale-asks": ([("get", "/api/v1/resale-asks/?mine=true", None)], set()),
        "api-resale-ask": ([("get", f"/api/v1/resale-asks/{b['withdrawn_ask'].pk}/", None)], set()),
        "api-resale-ask-withdraw": ([("post", f"/api/v1/resale-asks/{b['resale_ask'].pk}/withdraw/", {})], set()),
        "api-resale-ask-buy": (
            [
                (
                    "post",
                    f"/api/v1/resale-asks/{b['resale_ask'].pk}/buy/",
                    {"nodes": 1, "start": b["confirmed"].start.isoformat(), "end": b["confirmed"].end.isoformat()},
                )
            ],
            set(),
        ),
        # platform staff list and decide every buyer's reported incident
        "api-incidents": ([("get", "/api/v1/incidents/", None)], {"staff"}),
        "api-incident-resolve": (
            [("post", f"/api/v1/incidents/{b['incident'].pk}/resolve/", {"decision": "reject", "note": "no"})],
            {"staff"},
        ),
        # disputes (issue 20): only the buyer disputes its booking; platform staff list and resolve every one
        "api-booking-dispute": ([("post", f"/api/v1/bookings/{b['booking'].pk}/dispute/", {"reason": "x"})], set()),
        "api-disputes": ([("get", "/api/v1/disputes/", None)], {"staff"}),
        "api-dispute-resolve": (
            [("post", f"/api/v1/disputes/{b['dispute'].pk}/resolve/", {"decision": "reject", "note": "no"})],
            {"staff"},
        ),
    }


# List routes and the B objects that must never appear in their results (for the roles not exempted above).
def list_rows(b: dict) -> dict[str, tuple[str, set[int]]]:
    return {
        "api-bookings": ("/api/v1/bookings/", {b["booking"].pk, b["settled"].pk}),
        "api-bids": ("/api/v1/bids/", {b["bid"].pk}),
        "api-data-centers": ("/api/v1/data-centers/", {b["data_center"].pk}),
        "api-clusters": ("/api/v1/clusters/", {b["cluster"].pk}),
        "api-listings": ("/api/v1/listings/?status=draft", {b["draft"].pk}),
        "api-voucher-applications": ("/api/v1/voucher-applications/", {b["application"].pk}),
        "api-vouchers": ("/api/v1/vouchers/", {b["voucher"].pk}),
        "api-payout-list": ("/api/v1/payouts/", {b["payout"].pk}),
        "api-claim-list": ("/api/v1/reimbursement-claims/", {b["claim"].pk}),
        "api-statement-list": ("/api/v1/statements/", {b["statement"].pk}),
        "api-model-filings": ("/api/v1/model-filings/", {b["model_filing"].pk}),
        "api-ssh-keys": ("/api/v1/ssh-keys/", {b["ssh_key"].pk}),
        "api-tokens": ("/api/v1/tokens/", {b["api_token"].pk}),
        "api-resale-asks": ("/api/v1/resale-asks/?mine=true", {b["resale_ask"].pk, b["withdrawn_ask"].pk}),
    }


def test_every_api_route_is_in_the_matrix():
    # given the routes the resolver serves under /api/v1/ / then each is public (with a reason) or in the matrix
    covered = set(PUBLIC) | object_requests_names()
    missing = api_route_names() - covered
    assert not missing, f"API routes missing from the authorization matrix: {sorted(missing)}"


def object_requests_names() -> set[str]:
    """The route names that ``object_requests`` has rows for (read from its source: no objects needed)."""
    source = inspect.getsource(object_requests)
    return {name for name in api_route_names() if f'"{name}":' in source}


@pytest.fixture
def world(db) -> World:
    return build_world()


def test_no_role_reaches_another_organizations_objects(world):
    # given B's objects and members of A in every role
    failures = []
    for name, (requests, allowed) in object_requests(world.b).items():
        for role in ROLES:
            if role in allowed:
                continue
            for method, path, body, *headers in requests:
                # when the role asks for B's object
                response = getattr(world.clients[role], method)(path, body, format="json", **(headers or [{}])[0])
                # then it is refused as unknown or forbidden (a list GET is checked for B's rows below)
                if name in list_rows(world.b) and method == "get":
                    continue
                # a refused body (400/409) writes nothing; a foreign X-Organization is a 400 field error
                refused = DENIED | ({400, 409} if (method == "post" and body) or headers else set())
                if response.status_code not in refused:
                    failures.append(f"{role:9} {method.upper()} {path} → {response.status_code}")
                elif response.status_code < 300:
                    failures.append(f"{role:9} {method.upper()} {path} → {response.status_code} (applied)")
    assert not failures, "\n".join(failures)


def test_lists_never_contain_another_organizations_rows(world):
    failures = []
    exempt = {name: allowed for name, (_, allowed) in object_requests(world.b).items()}
    exempt["api-listings"] = {"staff"}  # reviewers list drafts and pending listings of every provider
    for name, (path, b_ids) in list_rows(world.b).items():
        for role in ROLES:
            if role in exempt.get(name, set()):
                continue
            # when the role lists / then it is refused or B's rows are absent
            response = world.clients[role].get(path)
            if response.status_code in DENIED:
                continue
            if response.status_code != 200:
                failures.append(f"{role:9} GET {path} → {response.status_code}")
                continue
            ids = {row["id"] for row in response.json()["results"]}
            if ids & b_ids:
                failures.append(f"{role:9} GET {path} shows B's rows {sorted(ids & b_ids)}")
    assert not failures, "\n".join(failures)


def page_requests(b: dict) -> list[tuple[str, str, set[str]]]:
    return [
        ("get", f"/bookings/{b['booking'].pk}/", set()),
        ("post", f"/bookings/{b['booking'].pk}/cancel/", set()),
        ("post", f"/bookings/{b['booking'].pk}/confirm/", set()),
        # resale (issue 21): B's booking and asks; a withdrawn ask's buy page is no one else's either
        ("post", f"/bookings/{b['confirmed'].pk}/resell/", set()),
        ("post", f"/resale/{b['resale_ask'].pk}/withdraw/", set()),
        ("get", f"/resale/{b['withdrawn_ask'].pk}/buy/", set()),
        ("post", f"/bids/{b['bid'].pk}/cancel/", set()),
        ("get", f"/vouchers/{b['voucher'].pk}/", set()),
        ("post", f"/vouchers/applications/{b['application'].pk}/approve/", set()),
        ("post", f"/vouchers/applications/{b['application'].pk}/reject/", set()),
        ("get", f"/settlement/bookings/{b['settled'].pk}/", set()),
        ("post", f"/claims/{b['claim'].pk}/mark-paid/", {"staff"}),
        ("post", f"/payouts/{b['payout'].pk}/mark-paid/", {"staff"}),
        ("get", f"/statements/{b['statement'].pk}/", {"staff", "auditor"}),
        ("get", f"/statements/{b['statement'].pk}/lines.csv", {"staff", "auditor"}),
        ("post", f"/statements/{b['statement'].pk}/pay/", {"staff"}),
        ("post", f"/provider/listings/{b['listing'].pk}/pause/", set()),
        ("get", f"/provider/clusters/{b['cluster'].pk}/agent/", set()),
        ("post", f"/provider/clusters/{b['cluster'].pk}/agent/", set()),
        ("post", f"/provider/clusters/{b['cluster'].pk}/agent/tokens/{b['agent_token'].pk}/revoke/", set()),
        ("post", f"/provider/clusters/{b['cluster'].pk}/agent/nodes/1/release/", set()),
        ("post", f"/bookings/{b['booking'].pk}/incidents/report/", set()),
        ("post", f"/bookings/{b['booking'].pk}/dispute/", set()),
        ("post", f"/staff/disputes/{b['dispute'].pk}/resolve/", {"staff"}),
        ("post", f"/staff/incidents/{b['incident'].pk}/resolve/", {"staff"}),
        ("post", f"/organization/ssh-keys/{b['ssh_key'].pk}/delete/", set()),
        ("get", f"/organization/{b['startup'].pk}/licence/", {"staff"}),
        ("post", f"/organization/{b['startup'].pk}/licence/", set()),
        ("post", f"/account/tokens/{b['api_token'].pk}/revoke/", set()),
    ]


def test_pages_of_another_organizations_objects_answer_404(world):
    failures = []
    for role, user in world.users.items():
        if user is None:
            continue
        client = Client()
        client.force_login(user)
        for method, path, allowed in page_requests(world.b):
            if role in allowed:
                continue
            response = getattr(client, method)(path)
            if response.status_code not in {403, 404}:
                failures.append(f"{role:9} {method.upper()} {path} → {response.status_code}")
    assert not failures, "\n".join(failures)


# --- mass assignment ---------------------------------------------------------------------------------------------
def test_booking_create_ignores_status_amounts_and_buyer(world):
    # given startup A's money and B's active listing
    a_startup = world.users["startup"].memberships.get().organization
    fund(a_startup, "1000000.00")
    body = booking_body(
        world.b["listing"],
        start_in_hours=300,
        status="settled",
        buyer=world.b["startup"].pk,
        subtotal="0.01",
        cash_amount="0.00",
        voucher_amount="99999.00",
        gpu_hours=1,
        price_per_gpu_hour="0.0001",
    )
    # when startup A posts it
    response = world.clients["startup"].post("/api/v1/bookings/", body, format="json")
    # then either refused, or created as A's held booking at the listing's price
    assert response.status_code in {201, 400}, response.content
    if response.status_code == 201:
        data = response.json()
        assert data["status"] == "held" and data["buyer"] == a_startup.pk
        assert Decimal(data["subtotal"]) == Decimal(data["cash_amount"]) == Decimal("240.00")
        assert Decimal(data["voucher_amount"]) == 0


def test_listing_patch_cannot_change_status_or_cluster(world):
    # given provider A's draft listing
    a_provider = world.users["provider"].memberships.get().organization
    listing = factories.ListingFactory(cluster__data_center__provider=a_provider, status=Listing.Status.DRAFT)
    # when it patches the status to active and the cluster to B's
    response = world.clients["provider"].patch(
        f"/api/v1/listings/{listing.pk}/", {"status": "active", "cluster": world.b["cluster"].pk}, format="json"
    )
    # then the listing keeps its status and cluster
    listing.refresh_from_db()
    assert response.status_code in {200, 400, 404}, response.content
    assert listing.status == Listing.Status.DRAFT and listing.cluster.data_center.provider_id == a_provider.pk


def test_application_cannot_be_submitted_approved_or_for_another_applicant(world):
    # when startup A applies with status, face value and B as applicant
    response = world.clients["startup"].post(
        f"/api/v1/voucher-programs/{world.b['program'].pk}/applications/",
        {
            "requested_amount": "5000.00",
            "purpose": "training",
            "status": "approved",
            "approved_face_value": "2000000.00",
            "applicant": world.b["startup"].pk,
        },
        format="json",
    )
    # then the application is A's and only submitted
    assert response.status_code in {201, 400}, response.content
    if response.status_code == 201:
        application = VoucherApplication.objects.get(pk=response.json()["id"])
        assert application.status == VoucherApplication.Status.SUBMITTED
        assert application.applicant_id != world.b["startup"].pk and application.approved_face_value is None


def test_bid_create_ignores_status_buyer_and_held_amount(world):
    a_startup = world.users["startup"].memberships.get().organization
    fund(a_startup, "1000000.00")
    response = world.clients["startup"].post(
        "/api/v1/bids/",
        {
            "accelerators": [world.b["cluster"].accelerator.slug],
            "nodes": 1,
            "duration_hours": 2,
            "earliest_start": later(70),
            "latest_end": later(80),
            "max_price_per_gpu_hour": "1.0000",
            "status": "matched",
            "buyer": world.b["startup"].pk,
            "held_amount": "0.00",
        },
        format="json",
    )
    assert response.status_code in {201, 400}, response.content
    if response.status_code == 201:
        data = response.json()
        assert data["buyer"] == a_startup.pk and data["status"] in {"open", "matched"}
        assert Decimal(data["held_amount"]) == Decimal("1.0000") * 8 * 2


def test_wallet_deposit_by_a_startup_is_refused_and_nothing_is_written(world):
    from ledger.models import JournalTransaction

    before = JournalTransaction.objects.count()
    response = world.clients["startup"].post(
        "/api/v1/wallet/deposits/",
        {
            "organization": world.users["startup"].memberships.get().organization.pk,
            "amount": "1000000.00",
            "reference": "self-service",
        },
        format="json",
    )
    assert response.status_code == 403
    assert JournalTransaction.objects.count() == before


def test_b_members_do_see_their_own_rows_so_the_list_checks_can_fail(world):
    # given members of B's startup, provider and issuer
    owner_of = {
        "api-bookings": "startup",
        "api-bids": "startup",
        "api-vouchers": "startup",
        "api-data-centers": "provider",
        "api-clusters": "provider",
        "api-voucher-applications": "issuer",
        "api-statement-list": "issuer",
    }
    rows = list_rows(world.b)
    for name, kind in owner_of.items():
        client = APIClient()
        client.force_authenticate(factories.member_of(world.b[kind]))
        path, b_ids = rows[name]
        # when they list / then their rows are there (same ids, same response shape as the checks above)
        ids = {row["id"] for row in client.get(path).json()["results"]}
        assert ids & b_ids, name


# --- auditor memberships outside auditor organizations ------------------------------------------------------------
AUDIT_API = [
    ("get", "/api/v1/audit/events/"),
    ("get", "/api/v1/audit/spend/?group_by=city"),
    ("get", "/api/v1/audit/spend.csv?group_by=city"),
    ("get", "/api/v1/audit/flags/"),
    ("post", "/api/v1/audit/flags/{flag}/review/"),
]
AUDIT_PAGES = [
    ("get", "/audit/"),
    ("get", "/audit/events/"),
    ("get", "/audit/flags/"),
    ("get", "/audit/spend.csv?group_by=city"),
    ("post", "/audit/flags/{flag}/review/"),
]


@pytest.fixture
def open_flag(db):
    from oversight import flags
    from oversight.models import AnomalyFlag
    from tests.oversight import factories as audit_factories

    buyer = factories.StartupFactory()
    listing = factories.ListingFactory(cluster__accelerator__export_controlled=True)
    audit_factories.booking(
        buyer=buyer, listing=listing, voucher_part="16.00", vouchers=[audit_factories.voucher(holder=buyer)]
    )
    flags.flags_compute()
    return AnomalyFlag.objects.get()


@pytest.mark.parametrize("kind", ["startup", "provider"])
def test_an_auditor_membership_outside_an_auditor_organization_is_refused_with_403(open_flag, kind):
    # given a member of a startup who is "auditor" of another startup or of a provider (no platform, no issuer)
    organization = {"startup": factories.StartupFactory, "provider": factories.ProviderFactory}[kind]()
    user = factories.member_of(factories.StartupFactory())
    factories.MembershipFactory(user=user, organization=organization, role="auditor")
    api, page = APIClient(), Client()
    api.force_authenticate(user)
    page.force_login(user)
    failures = []
    # when it calls every audit route and page / then each answers 403, and the flag stays open
    for client, routes in ((api, AUDIT_API), (page, AUDIT_PAGES)):
        for method, path in routes:
            url = path.format(flag=open_flag.pk)
            body = {"decision": "dismissed", "note": "x"} if method == "post" else None
            response = getattr(client, method)(url, body) if body else getattr(client, method)(url)
            if response.status_code != 403:
                failures.append(f"{method.upper()} {url} → {response.status_code}")
    assert not failures, "\n".join(failures)
    open_flag.refresh_from_db()
    assert open_flag.status == "open"


# --- X-Forwarded-For ----------------------------------------------------------------------------------------------
def test_a_made_up_x_forwarded_for_does_not_reset_the_token_endpoint_throttle(api, db, monkeypatch):
    # given the token endpoint's rate limit at 3 a minute, and one client address
    from accounts.throttling import ResilientScopedRateThrottle

    monkeypatch.setattr(ResilientScopedRateThrottle, "THROTTLE_RATES", {"auth": "3/min"})
    address = "10.66.0.1"

    def attempt(forwarded: str):
        return api.post(
            "/api/v1/auth/token/",
            {"username": "nobody", "password": "x"},
            format="json",
            REMOTE_ADDR=address,
            HTTP_X_FORWARDED_FOR=forwarded,
        )

    # when it sends each request claiming another forwarded address
    statuses = [attempt(f"203.0.113.{n}").status_code for n in range(1, 6)]
    # then the limit holds for the real address: the fourth and later are throttled
    assert statuses[:3] == [400, 400, 400] and statuses[3:] == [429, 429]
    assert set(attempt("198.51.100.7").json()) == {"detail", "errors"}


def test_a_made_up_x_forwarded_for_does_not_reset_the_failed_login_limit(api, db, settings):
    # given a user and a per-(username, address) failure limit of 3
    settings.LOGIN_FAILURE_LIMIT = 3
    user = factories.UserFactory()

    def attempt(password: str, forwarded: str):
        return api.post(
            "/api/v1/auth/token/",
            {"username": user.username, "password": password},
            format="json",
            REMOTE_ADDR="10.66.0.2",
            HTTP_X_FORWARDED_FOR=forwarded,
        ).status_code

    # when three failures each claim another forwarded address
    assert [attempt("wrong", f"203.0.113.{n}") for n in range(3)] == [400, 400, 400]
    # then the right password from the same peer is refused, whatever address it claims
    assert attempt(factories.PASSWORD, "192.0.2.99") == 429

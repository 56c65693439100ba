"""Input probes over the whole API, driven by the OpenAPI schema (issue 23), so no input answers 500 again.

For every operation the schema documents, as a startup member and a provider member (plus the issuer, platform
staff and auditor where the route is theirs), each query, path and header parameter is sent once with each of
``VALUES`` (a NUL, 1e30, -1, 10 kB, a right-to-left-override unicode string and 2**63; the other parameters keep
valid values); each field of a valid body of every POST/PATCH is sent with each of them too (and numeric fields
with ``NUMBERS``), by the role the body is valid for; and every POST/PATCH is sent a 5,000-deep nested JSON body
and one over ``API_MAX_BODY_BYTES``. One request per parameter or field × value, no combinations.

Checked: never 5xx; every 4xx answers ``{"detail": str, "errors": {field: [str]}}``; a refused write changed no
row of the application's tables (a checksum of every table before and after). Each request runs in a savepoint that
is rolled back afterwards, so every probe meets the same data.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from urllib.parse import quote, urlencode

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from listings.models import Listing
from orders import bid_services
from orders import services as order_services
from oversight import tasks as oversight_tasks
from oversight.models import AnomalyFlag
from settlement import payout_services
from settlement import services as settlement_services
from settlement.models import Payout, ReimbursementClaim
from tests import factories
from tests.orders.factories import booking_body, fund
from tests.oversight import factories as audit_factories
from tests.settlement.factories import completed_booking
from tests.vouchers.factories import funded_program, issued_voucher
from vouchers.models import VoucherApplication

VALUES = {
    "NUL": "a\x00b",
    "1e30": "1e30",
    "-1": "-1",
    "10 kB": "x" * 10_000,
    "unicode": "北京\u202e",
    "2**63": str(2**63),
}  # one past the largest bigint: an id or count the database cannot hold
NUMBERS = {"1e30 (number)": 1e30, "-1 (number)": -1, "2**63 (number)": 2**63, "0.5 (number)": 0.5}
NESTED = "[" * 5000 + "]" * 5000
APPS = ("accounts", "audit", "authtoken", "auth", "core", "ledger", "listings", "orders", "settlement", "vouchers")
# Roles beyond the startup and provider member that probe a route (its own users), by path prefix.
EXTRA_ROLES = {
    "/api/v1/audit/": ("issuer", "auditor"),
    "/api/v1/voucher-programs/": ("issuer",),
    "/api/v1/voucher-applications/": ("issuer",),
    "/api/v1/vouchers/": ("issuer",),
    "/api/v1/statements/": ("issuer", "staff", "auditor"),
    "/api/v1/reimbursement-claims/": ("staff",),
    "/api/v1/payouts/": ("staff",),
    "/api/v1/wallet/deposits/": ("staff",),
    "/api/v1/listings/{id}/review/": ("staff",),
    "/api/v1/organizations/": ("staff",),
}


def later(hours: int) -> str:
    return factories.next_hour(hours).isoformat().replace("+00:00", "Z")


def build_world() -> dict:
    """Organizations of every kind whose members probe, and objects of theirs for the path parameters."""
    startup, provider, issuer, platform = (
        factories.StartupFactory(),
        factories.ProviderFactory(),
        factories.IssuerFactory(),
        factories.PlatformFactory(),
    )
    users = {
        "startup": factories.member_of(startup),
        "provider": factories.member_of(provider),
        "issuer": factories.member_of(issuer),
        "staff": factories.member_of(platform),
        "auditor": factories.member_of(platform, role="auditor"),
    }
    fund(startup, "1000000.00")
    listing = factories.ListingFactory(cluster__data_center__provider=provider)
    draft = factories.ListingFactory(cluster=listing.cluster, status=Listing.Status.DRAFT)  # editable
    pending = factories.ListingFactory(cluster=listing.cluster, status=Listing.Status.PENDING_REVIEW)
    program = funded_program(issuer=issuer)
    voucher = issued_voucher(holder=startup, program=program)
    application = VoucherApplication.objects.create(
        program=program,
        applicant=factories.StartupFactory(),
        requested_amount=Decimal("5000.00"),
        purpose="fine-tuning",
    )
    booking = order_services.booking_create(
        buyer=startup, listing_id=listing.pk, nodes=1, start=factories.next_hour(2), end=factories.next_hour(5)
    )
    bid = bid_services.bid_place(
        buyer=startup,
        accelerators=[listing.cluster.accelerator.slug],
        nodes=1,
        duration_hours=2,
        earliest_start=factories.next_hour(48),
        latest_end=factories.next_hour(60),
        max_price_per_gpu_hour=Decimal("1.0000"),
    )
    settled = completed_booking(buyer=startup, listing=listing, vouchers=[voucher], subtotal="10000.00")
    settlement_services.booking_settle(booking_id=settled.pk)
    payout_services.payout_batch_create(provider_id=provider.pk)
    statement = payout_services.statements_issue(until=timezone.now(), program_id=program.pk)[0]
    flagged = factories.ListingFactory(cluster__accelerator__export_controlled=True)
    audit_factories.booking(
        buyer=startup, listing=flagged, voucher_part="16.00", vouchers=[audit_factories.voucher(holder=startup)]
    )
    oversight_tasks.compute_flags.apply(kwargs={"full": True}).get()
    ids = {
        "listings": draft.pk,
        "bookings": booking.pk,
        "bids": bid.pk,
        "voucher-programs": program.pk,
        "voucher-applications": application.pk,
        "vouchers": voucher.pk,
        "payouts": Payout.objects.get().pk,
        "reimbursement-claims": ReimbursementClaim.objects.get(booking=settled).pk,
        "statements": statement.pk,
        "flags": AnomalyFlag.objects.first().pk,
        "settlement/bookings": settled.pk,
        "/api/v1/listings/{id}/review/": pending.pk,
        "active-listing": listing.pk,
    }
    accelerator = listing.cluster.accelerator.slug
    # A valid body of each write and the role it is valid for; its fields are probed one at a time by that role.
    bodies = {
        ("post", "/api/v1/auth/token/"): ("startup", {"username": users["startup"].username, "password": "wrong"}),
        ("post", "/api/v1/bookings/"): ("startup", booking_body(listing, start_in_hours=100, vouchers=[voucher.pk])),
        ("post", "/api/v1/quotes/"): ("startup", booking_body(listing, start_in_hours=100, vouchers=[voucher.pk])),
        ("post", "/api/v1/bids/"): (
            "startup",
            {
                "accelerators": [accelerator],
                "nodes": 1,
                "duration_hours": 2,
                "earliest_start": later(70),
                "latest_end": later(80),
                "max_price_per_gpu_hour": "1.0000",
                "vouchers": [voucher.pk],
            },
        ),
        ("post", "/api/v1/data-centers/"): (
            "provider",
            {"name": "DC", "city": "Shanghai", "operator": "state", "region": "East"},
        ),
        ("post", "/api/v1/clusters/"): (
            "provider",
            {
                "data_center": listing.cluster.data_center_id,
                "name": "C",
                "accelerator": accelerator,
                "gpus_per_node": 8,
                "node_count": 1,
                "interconnect": "IB",
                "provenance": {
                    "invoice_number": "INV-1",
                    "supplier": "S",
                    "serial_numbers": ["SN1"],
                    "import_documents": "none",
                },
            },
        ),
        ("post", "/api/v1/listings/"): (
            "provider",
            {
                "cluster": listing.cluster_id,
                "price_per_gpu_hour": "1.0000",
                "available_from": later(1),
                "available_until": later(100),
                "min_hours": 1,
            },
        ),
        ("patch", "/api/v1/listings/{id}/"): ("provider", {"price_per_gpu_hour": "2.0000", "min_hours": 2}),
        ("post", "/api/v1/listings/{id}/review/"): ("staff", {"decision": "approve", "note": "ok"}),
        ("post", "/api/v1/voucher-programs/"): (
            "issuer",
            {
                "name": "P",
                "face_value_min": "1000.00",
                "face_value_max": "5000.00",
                "validity_days": 30,
                "applications_open_from": later(0),
                "applications_open_until": later(100),
                "budget": "10000.00",
                "eligible_accelerators": [accelerator],
                "eligible_providers": [provider.pk],
                "stack_excluded_programs": [program.pk],
                "stack_levels": ["city"],
                "eligible_buyer_cities": ["Shanghai"],
                "per_booking_cap": "100.00",
                "domestic_ratio": "0.3",
            },
        ),
        ("patch", "/api/v1/voucher-programs/{id}/"): (
            "issuer",
            {
                "name": "renamed",
                "validity_days": 60,
                "eligible_accelerators": [accelerator],
                "applications_open_until": later(200),
            },
        ),
        ("post", "/api/v1/voucher-programs/{id}/applications/"): (
            "startup",
            {"requested_amount": "5000.00", "purpose": "training"},
        ),
        ("post", "/api/v1/voucher-applications/{id}/approve/"): ("issuer", {"face_value": "5000.00"}),
        ("post", "/api/v1/voucher-applications/{id}/reject/"): ("issuer", {"reason": "no"}),
        ("post", "/api/v1/wallet/deposits/"): (
            "staff",
            {"organization": startup.pk, "amount": "100.00", "reference": "x"},
        ),
        ("post", "/api/v1/audit/flags/{id}/review/"): ("auditor", {"decision": "dismissed", "note": "ok"}),
    }
    return {"users": users, "ids": ids, "bodies": bodies}


def real_path(template: str, ids: dict) -> str:
    """``template`` with each path parameter replaced by the id of an object of that kind."""
    if template in ids:  # a route that needs an object in another state than its kind's
        return template.replace("{id}", str(ids[template]))
    parts = template.strip("/").split("/")
    for index, part in enumerate(parts):
        if part.startswith("{"):
            owner = parts[index - 1]
            if owner == "bookings" and parts[index - 2] == "settlement":
                owner = "settlement/bookings"
            parts[index] = str(ids.get(owner, 1))  # a route added without an object here: any id
    return "/" + "/".join(parts) + "/" * template.endswith("/")


def roles_for(template: str) -> list[str]:
    extra = [role for prefix, roles in EXTRA_ROLES.items() if template.startswith(prefix) for role in roles]
    return ["startup", "provider", *dict.fromkeys(extra)]


def probes(schema: dict, ids: dict, bodies: dict):
    """``(roles, method, url, body, headers, label)`` for every parameter × value, every body field × value (by
    the role the body is valid for) and the two malformed bodies."""
    for template, operations in schema["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            roles = roles_for(template)
            owner, body = bodies.get((method, template), (None, {}))
            body = body if method in {"post", "patch", "put"} else None
            for parameter in operation.get("parameters", []):
                name, where = parameter["name"], parameter["in"]
                for label, value in VALUES.items():
                    url, query, headers = real_path(template, ids), {}, {}
                    if where == "path":
                        url = real_path(template.replace("{" + name + "}", quote(value, safe="")), ids)
                    elif where == "query":
                        query[name] = value
                    elif where == "header":
                        headers[name] = value
                    else:  # pragma: no cover - cookies are not used
                        continue
                    if query:
                        url += "?" + urlencode(query)
                    yield roles, method, url, body, headers, f"{where} {name}={label}"
            if method not in {"post", "patch", "put"}:
                continue
            url = real_path(template, ids)
            for name, valid in (body or {}).items():
                numeric = isinstance(valid, int | float) and not isinstance(valid, bool)
                for label, value in (VALUES | NUMBERS if numeric else VALUES).items():
                    probe = value
                    if isinstance(valid, list):
                        probe = [value]
                    elif isinstance(valid, dict):
                        probe = {key: value for key in valid}
                    yield [owner], method, url, {**body, name: probe}, {}, f"body {name}={label}"
            yield roles, method, url, NESTED, {}, "5,000-deep nested body"
            yield roles, method, url, " " * settings.API_MAX_BODY_BYTES + "{}", {}, "oversized body"


def table_checksum() -> tuple:
    """Row count and a sum of row hashes of every table of the application's apps (one query)."""
    tables = sorted(
        {
            model._meta.db_table
            for label in APPS
            for model in apps.get_app_config(label).get_models()
            if not model._meta.proxy and model._meta.managed
        }
    )
    columns = ", ".join(
        f"(SELECT count(*)::text || ':' || coalesce(sum(hashtext(t::text)::bigint), 0)::text "  # noqa: S608
        f'FROM "{table}" t)'
        for table in tables
    )  # table names from the models, no input
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns}")
        return tuple(zip(tables, cursor.fetchone(), strict=True))


def error_shape_problem(response) -> str | None:
    try:
        data = json.loads(response.content)
    except ValueError:
        return f"not JSON ({response.get('Content-Type')})"
    if not isinstance(data, dict) or set(data) != {"detail", "errors"} or not isinstance(data["detail"], str):
        return f"not the error shape: {str(data)[:200]}"
    errors = data["errors"]
    if not isinstance(errors, dict) or not all(
        isinstance(v, list) and all(isinstance(m, str) for m in v) for v in errors.values()
    ):
        return f"errors not {{field: [messages]}}: {str(errors)[:200]}"
    return None


def send(client: APIClient, method: str, url: str, body, headers: dict):
    kwargs: dict = {"headers": headers}
    if body is not None:
        kwargs |= {"data": body if isinstance(body, str) else json.dumps(body), "content_type": "application/json"}
    return getattr(client, method)(url, **kwargs)


@pytest.mark.django_db
def test_no_parameter_or_body_answers_5xx_and_refusals_change_nothing():
    # given members of every kind of organization with objects of their own, and the schema
    world = build_world()
    clients = {}
    for role, user in world["users"].items():
        client = APIClient()
        client.raise_request_exception = False  # a 500 is recorded as a failure, not raised
        client.force_authenticate(user)
        clients[role] = client
    schema = clients["startup"].get("/api/v1/schema/?format=json").json()
    before = table_checksum()  # every probe is rolled back, so each one starts from these rows
    savepoint = transaction.savepoint()
    factories.AcceleratorFactory()
    assert table_checksum() != before, "the checksum must see a new row"
    transaction.savepoint_rollback(savepoint)
    failures, count, began = [], 0, time.monotonic()
    # when each probe is sent by each role the route is for
    for roles, method, url, body, headers, label in probes(schema, world["ids"], world["bodies"]):
        for role in roles:
            count += 1
            savepoint = transaction.savepoint()
            response = send(clients[role], method, url, body, headers)
            where = f"{role:8} {method.upper()} {url[:90]!r} [{label}] → {response.status_code}"
            # then never a server error; a refusal in the error shape, with no row changed
            if response.status_code >= 500:
                failures.append(where)
            elif response.status_code >= 400:
                if problem := error_shape_problem(response):
                    failures.append(f"{where}: {problem}")
                if method != "get" and (after := table_checksum()) != before:
                    changed = [name for (name, a), (_, b) in zip(before, after, strict=True) if a != b]
                    failures.append(f"{where}: refused but changed {changed}")
            transaction.savepoint_rollback(savepoint)
    elapsed = time.monotonic() - began
    print(f"{count} probe requests in {elapsed:.1f} s")
    assert count > 1000
    assert not failures, f"{len(failures)} of {count} probes failed:\n" + "\n".join(failures)


# --- the causes the probes found, one test each --------------------------------------------------------------------


def test_a_nul_in_a_json_body_is_a_field_error(provider_client):
    # given a slug field (looked up in the database) holding a NUL — a 500 (DataError) before
    body = {"data_center": 1, "name": "C", "accelerator": "h1\x0000", "gpus_per_node": 8, "node_count": 1}
    # when it is posted
    response = provider_client.post("/api/v1/clusters/", body, format="json")
    # then 400 naming the field
    assert response.status_code == 400
    assert response.json()["errors"] == {"accelerator": ["May not contain a NUL character."]}


def test_a_nul_deep_in_a_json_body_names_its_path(issuer_client):
    response = issuer_client.post(
        "/api/v1/voucher-programs/", {"name": "P", "eligible_accelerators": ["a", "b\x00"]}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["eligible_accelerators.1"]


def test_a_nul_in_an_idempotency_key_is_400(startup_client):
    # given the header that is stored in the database — a 500 before
    response = startup_client.post("/api/v1/bookings/", {}, format="json", headers={"Idempotency-Key": "a\x00b"})
    assert response.status_code == 400
    assert response.json() == {"detail": "A parameter contains a NUL character.", "errors": {}}


@pytest.mark.django_db
def test_a_nul_in_a_posted_form_is_400_on_pages_and_api(client):
    # given a provider on the cluster page, whose accelerator choice is looked up in the database
    client.force_login(factories.member_of(factories.ProviderFactory()))
    # when a form field holds a NUL / then 400 on the error page, not a 500
    page = client.post("/provider/clusters/", {"accelerator": "a\x00b", "name": "C"})
    assert page.status_code == 400
    api = client.post("/api/v1/clusters/", {"accelerator": "a\x00b", "name": "C"})
    assert api.status_code == 400
    assert api.json()["detail"] == "A parameter contains a NUL character."


@pytest.mark.parametrize("path", ["/api/v1/bookings/-1/", "/api/v1/no-such-route/", "/api/v1/listings/1e30/"])
def test_an_api_url_that_matches_no_route_answers_404_in_the_error_shape(startup_client, path):
    response = startup_client.get(path)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "errors": {}}


def test_a_declared_body_over_the_limit_is_413_even_where_the_body_is_not_read(startup_client, settings):
    # given an action that reads no body
    settings.API_MAX_BODY_BYTES = 100
    response = startup_client.post("/api/v1/bookings/999/cancel/", "x" * 200, content_type="application/json")
    assert response.status_code == 413
    assert set(response.json()) == {"detail", "errors"}


def test_program_lists_are_bounded_before_any_lookup(issuer_client, django_assert_max_num_queries):
    # given 10,001 accelerator slugs (3.3 s of lookups before), and as many providers and programs
    many = {
        "eligible_accelerators": [f"chip-{n}" for n in range(10_001)],
        "eligible_providers": list(range(1, 10_002)),
        "stack_excluded_programs": list(range(1, 10_002)),
    }
    for field, values in many.items():
        # when posted / then refused at once, with a field error and no lookup per item
        with django_assert_max_num_queries(10):
            response = issuer_client.post("/api/v1/voucher-programs/", {"name": "P", field: values}, format="json")
        assert response.status_code == 400
        assert response.json()["errors"][field] == ["Ensure this list has no more than 200 items."]

"""The OpenAPI schema documents what the API does (issue 23, item 13): the listing search filters, the
``Idempotency-Key`` header wherever it is honoured, null actors of system changes, the spend report's object."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from marketplace.core import idempotency
from orders.search import NetPriceFilterSet

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema() -> dict:
    return APIClient().get("/api/v1/schema/?format=json").json()


def parameters(schema: dict, path: str, method: str) -> dict[str, dict]:
    return {p["name"]: p for p in schema["paths"][path][method].get("parameters", [])}


def test_the_listing_search_documents_every_filter(schema):
    # given the filter set GET /api/v1/listings/ parses / then each of its parameters is in the schema, described
    documented = parameters(schema, "/api/v1/listings/", "get")
    for name in NetPriceFilterSet.base_filters:
        assert name in documented, name
        assert documented[name]["in"] == "query" and documented[name]["description"], name
    assert documented["accelerator"]["schema"]["type"] == "array" and documented["accelerator"]["explode"]
    assert documented["start"]["schema"] == {"type": "string", "format": "date-time"}
    assert "net_price" in documented["ordering"]["schema"]["enum"]


def idempotent_routes() -> list[str]:
    """OpenAPI paths of the API views whose POST is wrapped by ``marketplace.core.idempotency.idempotent``."""
    found = []

    def walk(patterns, prefix: str) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern) and (prefix + str(entry.pattern)).startswith("api/v1/"):
                post = getattr(getattr(entry.callback, "view_class", None), "post", None)
                if post is not None and post.__code__.co_filename == idempotency.__file__:
                    route = "/" + prefix + str(entry.pattern)
                    while "<" in route:
                        start, end = route.index("<"), route.index(">")
                        route = route[:start] + "{" + route[start + 1 : end].rpartition(":")[2] + "}" + route[end + 1 :]
                    found.append(route.replace("{pk}", "{id}"))

    walk(get_resolver().url_patterns, "")
    return found


def test_every_idempotent_post_documents_the_idempotency_key_header(schema):
    routes = idempotent_routes()
    # the ones the contract names are among them (so the detection above works)
    assert {
        "/api/v1/wallet/deposits/",
        "/api/v1/voucher-applications/{id}/approve/",
        "/api/v1/bookings/",
        "/api/v1/bids/",
    } <= set(routes)
    for route in routes:
        header = parameters(schema, route, "post").get(idempotency.HEADER)
        assert header is not None and header["in"] == "header", route
        assert "422" in schema["paths"][route]["post"]["responses"], route


@pytest.mark.parametrize(
    ("component", "field"), [("BookingStatusChange", "actor"), ("AuditEvent", "actor"), ("AnomalyFlag", "reviewer")]
)
def test_actors_of_system_changes_are_nullable(schema, component, field):
    assert schema["components"]["schemas"][component]["properties"][field]["nullable"] is True


def test_the_spend_report_is_documented_as_the_object_it_returns(schema, auditor_client):
    # given the documented 200 answer
    reference = schema["paths"]["/api/v1/audit/spend/"]["get"]["responses"]["200"]["content"]["application/json"]
    component = schema["components"]["schemas"][reference["schema"]["$ref"].rsplit("/", 1)[1]]
    assert component["type"] == "object"
    assert set(component["required"]) == {"group_by", "results", "totals"}
    assert component["properties"]["results"]["type"] == "array"
    # when an auditor asks / then the answer has exactly those keys
    data = auditor_client.get("/api/v1/audit/spend/?group_by=city").json()
    assert set(data) == set(component["properties"])
    assert set(data["totals"]) == {"bookings", "held", "captured", "reimbursed", "spent"}


def test_program_lists_document_their_bound(schema):
    properties = schema["components"]["schemas"]["VoucherProgramRequest"]["properties"]
    for name in ("eligible_accelerators", "eligible_providers", "stack_excluded_programs"):
        assert properties[name]["maxItems"] == 200, name

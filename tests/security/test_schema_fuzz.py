"""schemathesis against /api/v1/schema/ through the WSGI app: every operation, as each role (startup, provider,
issuer, platform staff, auditor), with a few derandomized examples each. No 5xx; every status is one the schema
documents (errors included: ``marketplace.core.schema``) and JSON responses conform to it.

Bounded for a 2-core machine: ``MAX_EXAMPLES`` per operation and role, no deadline, no stateful phase.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests import factories
from tests.orders.factories import fund

MAX_EXAMPLES = 3

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", get_wsgi_application())


@pytest.fixture
def keep_connection():
    """The WSGI handler closes the database connection when a request finishes; inside a test transaction that
    would close the test's own connection. Django's test client disconnects the same receiver for the same reason."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def tokens(db, keep_connection) -> dict[str, str]:
    """Tokens of each role: a funded startup member, a provider member with an active listing (data to fuzz into),
    an issuer member, platform staff and a platform auditor."""
    startup, provider, platform = factories.StartupFactory(), factories.ProviderFactory(), factories.PlatformFactory()
    fund(startup, "100000.00")
    factories.ListingFactory(cluster__data_center__provider=provider)
    users = {
        "startup": factories.member_of(startup),
        "provider": factories.member_of(provider),
        "issuer": factories.member_of(factories.IssuerFactory()),
        "staff": factories.member_of(platform),
        "auditor": factories.member_of(platform, role="auditor"),
    }
    return {role: Token.objects.create(user=user).key for role, user in users.items()}


@pytest.mark.slow
@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api_operations_never_fail_and_conform(case, tokens):
    for token in tokens.values():
        case.call_and_validate(
            headers={"Authorization": f"Token {token}"},
            checks=[not_a_server_error, response_schema_conformance, status_code_conformance],
        )


@pytest.mark.parametrize("path", ["/api/v1/quotes/", "/api/v1/bookings/"])
def test_impossible_datetimes_are_a_400_not_a_500(startup_client, path):
    # given a well-formed but impossible time (found by the fuzzer: "minute must be in 0..59" was a 500)
    body = {"listing": 1, "nodes": 1, "start": "2030-01-01T12:99:00Z", "end": "2030-01-01T14:00:00Z"}
    # when it is posted / then the field is refused in the error format
    response = startup_client.post(path, body, format="json")
    assert response.status_code == 400
    assert "start" in response.json()["errors"]

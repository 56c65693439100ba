"""Fixtures of the delivery tests: an export-controlled H100 cluster with declared serials, its provider's agent
tokens, an agent API client, and bookings written directly (started or ended, without the booking flow's clock
checks). ``gpux_agent`` is importable from ``agent/`` to build real inventories from recorded tool output."""

import sys
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from tests import factories

AGENT_DIR = Path(__file__).resolve().parents[2] / "agent"
if str(AGENT_DIR) not in sys.path:
    sys.path.insert(0, str(AGENT_DIR))

from tests.delivery.helpers import H100_SERIALS, agent_token, h100, h100_cluster  # noqa: E402


@pytest.fixture(autouse=True)
def catalog(request):
    """The accelerator catalog, for database tests (reloaded after a transactional test flushed it)."""
    if request.node.get_closest_marker("django_db"):
        request.getfixturevalue("db")
        h100()


@pytest.fixture
def cluster(provider):
    return h100_cluster(provider, node_count=2)


@pytest.fixture
def token(cluster):
    """An agent token's text for ``cluster``."""
    return agent_token(cluster)


@pytest.fixture
def agent(token):
    """An APIClient sending ``Authorization: Agent <token>``."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Agent {token}")
    return client


@pytest.fixture
def provider_member(provider):
    return factories.member_of(provider)


__all__ = ["H100_SERIALS"]

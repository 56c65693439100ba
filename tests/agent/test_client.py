"""PlatformClient against a real HTTP server on 127.0.0.1: headers, bodies, answers, errors, the https rule."""

import socket
from datetime import UTC, datetime

import pytest
from gpux_agent import __version__
from gpux_agent.client import (
    Handover,
    InsecureURL,
    PlatformClient,
    PlatformError,
    PlatformUnavailable,
    check_base_url,
)
from gpux_agent.inventory import NodeInventory, parse_nvidia_smi

from tests.agent.helpers import HANG, ed25519_key, fixture_text

TOKEN = "gpxa_3kX9vQ2mT7"
INVENTORY = NodeInventory("gpu-node-07", "nvidia", parse_nvidia_smi(fixture_text("nvidia_smi_8x_h100_80gb_hbm3.csv")))
HANDOVER = {
    "id": 5,
    "booking": 42,
    "node": 3,
    "action": "install",
    "login_user": "gpux",
    "ssh_keys": [ed25519_key(1)],
}


class FixedClock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(platform):
    return PlatformClient(platform.url, TOKEN, timeout=5)


def test_inventory_is_posted_as_json_with_the_agent_token(platform, client):
    # when
    client.report_inventory(INVENTORY)

    # then
    (request,) = platform.requests
    assert (request.method, request.path) == ("POST", "/api/v1/agent/inventory/")
    assert request.headers["Authorization"] == f"Agent {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"] == f"gpux-agent/{__version__}"
    assert request.body == {**INVENTORY.to_dict(), "agent_version": __version__}
    assert request.body["gpus"][0]["serial"] == "1654922049871"


def test_a_heartbeat_carries_time_sequence_and_each_gpus_state(platform):
    client = PlatformClient(platform.url, TOKEN, clock=FixedClock(1_767_225_600.25))

    client.heartbeat(INVENTORY)

    (request,) = platform.requests
    assert request.path == "/api/v1/agent/heartbeats/"
    assert request.body["hostname"] == "gpu-node-07"
    assert request.body["sent_at"] == "2026-01-01T00:00:00.250+00:00"
    assert datetime.fromisoformat(request.body["sent_at"]).utcoffset() == UTC.utcoffset(None)
    assert request.body["sequence"] == 1_767_225_600_250
    assert request.body["gpus"][6] == {"index": 6, "health": "ok", "utilisation_pct": 0, "temperature_c": 36}
    assert len(request.body["gpus"]) == 8


def test_sequences_increase_within_a_process_and_across_restarts(platform):
    clock = FixedClock(1_767_225_600.0)
    first_process = PlatformClient(platform.url, TOKEN, clock=clock)
    first_process.heartbeat(INVENTORY)
    first_process.heartbeat(INVENTORY)  # same millisecond
    clock.now += 60
    PlatformClient(platform.url, TOKEN, clock=clock).heartbeat(INVENTORY)  # a restarted agent

    sequences = [request.body["sequence"] for request in platform.requests]

    assert sequences == [1_767_225_600_000, 1_767_225_600_001, 1_767_225_660_000]


def test_handovers_are_read_from_a_plain_list(platform, client):
    platform.respond("GET", "/api/v1/agent/handovers/", body=[HANDOVER])

    assert client.handovers() == [Handover(5, 42, 3, "install", "gpux", (ed25519_key(1),))]
    assert platform.requests[0].headers["Authorization"] == f"Agent {TOKEN}"
    assert "Content-Type" not in platform.requests[0].headers


def test_handovers_follow_pages_on_the_same_site(platform, client):
    second = {**HANDOVER, "id": 6, "action": "remove", "ssh_keys": []}
    platform.respond(
        "GET",
        "/api/v1/agent/handovers/",
        body={
            "count": 2,
            "next": f"{platform.url}/api/v1/agent/handovers/?page=2",
            "previous": None,
            "results": [HANDOVER],
        },
    )
    platform.respond(
        "GET", "/api/v1/agent/handovers/?page=2", body={"count": 2, "next": None, "previous": None, "results": [second]}
    )

    handovers = client.handovers()

    assert [(h.id, h.action) for h in handovers] == [(5, "install"), (6, "remove")]


def test_a_page_linking_to_another_site_is_refused(platform, client):
    platform.respond(
        "GET", "/api/v1/agent/handovers/", body={"next": "https://elsewhere.example/steal", "results": [HANDOVER]}
    )

    with pytest.raises(PlatformError, match="another site"):
        client.handovers()

    assert len(platform.requests) == 1


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"action": "reboot"}, "action must be install or remove"),
        ({"id": "5"}, "id must be a non-negative integer"),
        ({"booking": -1}, "booking must be a non-negative integer"),
        ({"ssh_keys": "ssh-ed25519 AAAA"}, "ssh_keys must be a list"),
        ({"login_user": None}, "login_user must be a string"),
    ],
)
def test_a_malformed_handover_is_refused(platform, client, change, fragment):
    platform.respond("GET", "/api/v1/agent/handovers/", body=[{**HANDOVER, **change}])

    with pytest.raises(PlatformError) as refused:
        client.handovers()

    assert fragment in str(refused.value)


def test_a_handover_report_posts_the_endpoint(platform, client):
    client.report_handover(5, "installed", "gpu-node-07.dc1.example.cn", 2222, "gpux")

    (request,) = platform.requests
    assert (request.method, request.path) == ("POST", "/api/v1/agent/handovers/5/report/")
    assert request.body == {
        "status": "installed",
        "host": "gpu-node-07.dc1.example.cn",
        "port": 2222,
        "user": "gpux",
        "detail": None,
    }


def test_an_unknown_report_status_is_refused_before_sending(platform, client):
    with pytest.raises(ValueError, match="status must be one of"):
        client.report_handover(5, "done", None, None, None)

    assert platform.requests == []


def test_a_4xx_answer_raises_platform_error_with_the_servers_detail(platform, client):
    refusal = {"detail": "Inventory does not match the cluster.", "errors": {"gpus": ["expected 8 GPUs"]}}
    platform.respond("POST", "/api/v1/agent/inventory/", status=400, body=refusal)

    with pytest.raises(PlatformError) as refused:
        client.report_inventory(INVENTORY)

    assert refused.value.status == 400
    assert refused.value.detail == "Inventory does not match the cluster."
    assert refused.value.errors == {"gpus": ["expected 8 GPUs"]}


def test_a_drf_field_map_becomes_the_errors(platform, client):
    platform.respond("POST", "/api/v1/agent/heartbeats/", status=409, body={"sequence": ["already seen"]})

    with pytest.raises(PlatformError) as refused:
        client.heartbeat(INVENTORY)

    assert (refused.value.status, refused.value.errors) == (409, {"sequence": ["already seen"]})


def test_a_non_json_4xx_answer_keeps_its_text(platform, client):
    platform.respond(
        "GET", "/api/v1/agent/handovers/", status=404, body=b"<h1>Not Found</h1>", headers={"Content-Type": "text/html"}
    )

    with pytest.raises(PlatformError) as refused:
        client.handovers()

    assert (refused.value.status, refused.value.detail) == (404, "<h1>Not Found</h1>")


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_5xx_and_429_raise_platform_unavailable(platform, client, status):
    platform.respond("POST", "/api/v1/agent/heartbeats/", status=status, body={"detail": "try later"})

    with pytest.raises(PlatformUnavailable) as unavailable:
        client.heartbeat(INVENTORY)

    assert (unavailable.value.status, unavailable.value.detail) == (status, "try later")


def test_a_refused_connection_raises_platform_unavailable():
    with socket.socket() as probe:  # a port nobody listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(PlatformUnavailable) as unavailable:
        PlatformClient(f"http://127.0.0.1:{port}", TOKEN, timeout=5).heartbeat(INVENTORY)

    assert unavailable.value.status is None
    assert "heartbeats" in unavailable.value.detail


def test_a_server_that_never_answers_raises_platform_unavailable(platform):
    platform.respond("POST", "/api/v1/agent/heartbeats/", status=HANG)

    with pytest.raises(PlatformUnavailable, match="timed out"):
        PlatformClient(platform.url, TOKEN, timeout=0.5).heartbeat(INVENTORY)


def test_a_redirect_is_refused_and_the_token_not_forwarded(platform, client):
    platform.respond(
        "POST", "/api/v1/agent/inventory/", status=301, body={}, headers={"Location": f"{platform.url}/elsewhere/"}
    )

    with pytest.raises(PlatformError) as refused:
        client.report_inventory(INVENTORY)

    assert refused.value.status == 301
    assert "/elsewhere/" in refused.value.detail
    assert platform.paths() == [("POST", "/api/v1/agent/inventory/")]


def test_a_2xx_answer_that_is_not_json_is_refused(platform, client):
    platform.respond("POST", "/api/v1/agent/heartbeats/", body=b"<html>captive portal</html>")

    with pytest.raises(PlatformError, match="not JSON"):
        client.heartbeat(INVENTORY)


@pytest.mark.parametrize(
    "url", ["http://platform.example.cn", "http://10.0.0.5:8000", "http://localhost.evil.example/"]
)
def test_plain_http_to_another_host_is_refused(url):
    with pytest.raises(InsecureURL, match="clear text"):
        PlatformClient(url, TOKEN)


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://gpux.example.cn/", "https://gpux.example.cn"),
        ("https://gpux.example.cn:8443/exchange/", "https://gpux.example.cn:8443/exchange"),
        ("http://localhost:8000", "http://localhost:8000"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
    ],
)
def test_https_and_local_http_are_accepted(url, normalised):
    assert check_base_url(url) == normalised


@pytest.mark.parametrize(
    "url", ["ftp://gpux.example.cn", "gpux.example.cn", "https://user:pw@gpux.example.cn", "https://x.cn/?a=1"]
)
def test_other_urls_are_refused(url):
    with pytest.raises(ValueError, match="platform URL must"):
        check_base_url(url)


@pytest.mark.parametrize("token", ["", "two words", "line\nbreak", "tab\there"])
def test_a_token_that_could_break_the_header_is_refused(platform, token):
    with pytest.raises(ValueError, match="agent token"):
        PlatformClient(platform.url, token)

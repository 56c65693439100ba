"""The agent's cycle: inventory re-reported on change, heartbeats, handovers applied and reported, backoff, stop."""

import dataclasses
import threading

import pytest
from gpux_agent.client import Handover, PlatformError, PlatformUnavailable
from gpux_agent.inventory import InventoryError, NodeInventory, parse_nvidia_smi
from gpux_agent.service import (
    AccessConfig,
    LoopState,
    backoff_delay,
    process_handovers,
    run_cycle,
    run_forever,
    run_once,
)

from tests.agent.helpers import ed25519_key, fixture_text

INVENTORY = NodeInventory("gpu-node-07", "nvidia", parse_nvidia_smi(fixture_text("nvidia_smi_8x_h100_80gb_hbm3.csv")))


class StubClient:
    """Records calls like PlatformClient would make them; raises what each call is scripted to raise."""

    def __init__(self, handovers=(), fail=None):
        self.calls = []
        self._handovers = list(handovers)
        self._fail = fail or {}  # method name -> list of exceptions to raise, one per call, then succeed

    def _maybe_fail(self, name):
        queue = self._fail.get(name)
        if queue:
            raise queue.pop(0)

    def report_inventory(self, inventory):
        self.calls.append(("inventory", inventory))
        self._maybe_fail("report_inventory")

    def heartbeat(self, inventory):
        self.calls.append(("heartbeat", inventory))
        self._maybe_fail("heartbeat")

    def handovers(self, hostname=None):
        self.calls.append(("handovers",))
        self.asked_hostname = hostname
        self._maybe_fail("handovers")
        return self._handovers

    def report_handover(self, handover_id, status, host, port, user, detail=None):
        self.calls.append(("report", handover_id, status, host, port, user, detail))
        self._maybe_fail("report_handover")

    def names(self):
        return [call[0] for call in self.calls]


@pytest.fixture
def access(tmp_path):
    (tmp_path / ".ssh").mkdir()
    return AccessConfig(
        login_user="gpux", authorized_keys=tmp_path / ".ssh" / "authorized_keys", ssh_host="n7.example.cn", ssh_port=22
    )


def install(booking=42, keys=None, user="gpux", handover_id=5):
    return Handover(handover_id, booking, 3, "install", user, tuple(keys or [ed25519_key(1)]))


def test_an_install_is_applied_then_reported_with_the_endpoint(access):
    client = StubClient(handovers=[install()])

    failed = process_handovers(client, access)

    assert failed == 0
    assert access.authorized_keys.read_text().endswith(" gpux-booking-42\n")
    assert client.calls[-1] == ("report", 5, "installed", "n7.example.cn", 22, "gpux", None)


def test_a_remove_is_applied_then_reported(access):
    process_handovers(StubClient(handovers=[install()]), access)
    client = StubClient(handovers=[Handover(6, 42, 3, "remove", "gpux", ())])

    process_handovers(client, access)

    assert access.authorized_keys.read_text() == ""
    assert client.calls[-1][:3] == ("report", 6, "removed")


def test_a_handover_for_another_account_is_refused_and_reported_failed(access):
    client = StubClient(handovers=[install(user="root")])

    failed = process_handovers(client, access)

    assert failed == 1
    assert not access.authorized_keys.exists()
    report = client.calls[-1]
    assert report[:3] == ("report", 5, "failed")
    assert "'gpux' only, not 'root'" in report[6]


def test_a_bad_key_is_reported_failed_and_the_next_handover_still_runs(access):
    bad = install(booking=41, keys=['command="sh" ' + ed25519_key(1)], handover_id=4)
    client = StubClient(handovers=[bad, install()])

    failed = process_handovers(client, access)

    assert failed == 1
    assert [call[1:3] for call in client.calls if call[0] == "report"] == [(4, "failed"), (5, "installed")]


def test_a_refused_report_is_counted_and_the_rest_continue(access):
    client = StubClient(
        handovers=[install(handover_id=5), install(booking=43, handover_id=6)],
        fail={"report_handover": [PlatformError(409, "already reported")]},
    )

    assert process_handovers(client, access) == 1
    assert [call[1] for call in client.calls if call[0] == "report"] == [5, 6]


def test_inventory_is_reported_again_only_when_the_hardware_changes(access):
    client = StubClient()
    state = LoopState()
    changed = NodeInventory(INVENTORY.hostname, "nvidia", INVENTORY.gpus[:7])  # a GPU fell off the bus
    warmer = NodeInventory(
        INVENTORY.hostname, "nvidia", tuple(dataclasses.replace(g, temperature_c=80) for g in INVENTORY.gpus[:7])
    )

    for inventory in (INVENTORY, INVENTORY, changed, warmer):
        run_cycle(client, access, lambda inventory=inventory: inventory, state)

    assert [name for name in client.names() if name != "handovers"] == [
        "inventory",
        "heartbeat",
        "heartbeat",
        "inventory",
        "heartbeat",
        "heartbeat",
    ]


def test_a_failing_gpu_tool_skips_the_heartbeat_but_not_the_handovers(access):
    client = StubClient(handovers=[install()])

    def broken_tool():
        raise InventoryError("'nvidia-smi' did not answer within 30 s")

    assert run_cycle(client, access, broken_tool, LoopState()) is False
    assert client.names() == ["handovers", "report"]


def test_run_once_exits_1_when_the_platform_is_down(access):
    client = StubClient(fail={"report_inventory": [PlatformUnavailable(None, "connection refused")]})

    assert run_once(client, access, lambda: INVENTORY) == 1


def test_run_once_exits_0_when_every_step_succeeded(access):
    client = StubClient(handovers=[install()])

    assert run_once(client, access, lambda: INVENTORY) == 0
    assert client.names() == ["inventory", "heartbeat", "handovers", "report"]


def test_the_loop_backs_off_while_the_platform_is_unavailable_then_keeps_the_interval(access):
    # given: three unavailable heartbeats, then the platform answers again
    down = [PlatformUnavailable(503, "maintenance") for _ in range(3)]
    client = StubClient(fail={"heartbeat": down})
    stop = threading.Event()
    waits = []

    def wait(seconds):
        waits.append(seconds)
        if len(waits) == 5:
            stop.set()

    # when
    status = run_forever(
        client, access, lambda: INVENTORY, stop, 60, wait=wait, monotonic=lambda: 100.0, rng=lambda: 0.0
    )

    # then: 5 s, 10 s, 20 s halved by the jitter's lowest draw, then the interval again
    assert status == 0
    assert waits == [2.5, 5.0, 10.0, 60.0, 60.0]
    assert client.names().count("heartbeat") == 5
    assert client.names().count("inventory") == 1  # accepted before the first heartbeat failed


def test_backoff_is_capped_and_jittered():
    assert backoff_delay(1, rng=lambda: 0.999999) == pytest.approx(5.0, abs=1e-4)
    assert backoff_delay(20, rng=lambda: 0.0) == 150.0
    assert backoff_delay(20, rng=lambda: 0.999999) == pytest.approx(300.0, abs=1e-3)


@pytest.mark.parametrize("status", [401, 403])
def test_the_loop_stops_when_the_token_is_refused(access, status):
    client = StubClient(fail={"report_inventory": [PlatformError(status, "Invalid agent token.")]})
    stop = threading.Event()
    waits = []

    assert run_forever(client, access, lambda: INVENTORY, stop, 60, wait=waits.append) == 1
    assert waits == []


def test_the_loop_ends_without_a_cycle_once_stop_is_set(access):
    client = StubClient()
    stop = threading.Event()
    stop.set()

    assert run_forever(client, access, lambda: INVENTORY, stop, 60) == 0
    assert client.calls == []

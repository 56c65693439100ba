"""What the agent does each cycle: report inventory (when it changed), send a heartbeat, apply pending handovers.

``run_once`` is one cycle for ``gpux-agent once``; ``run_forever`` repeats it every ``interval`` seconds for
``gpux-agent run``, backs off while the platform is unavailable, stops when its ``stop`` event is set (SIGTERM),
and gives up only when the platform refuses the token (401/403): retrying a revoked token helps nobody.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gpux_agent.access import AccessError, install_keys, remove_keys
from gpux_agent.client import Handover, PlatformClient, PlatformError, PlatformUnavailable
from gpux_agent.inventory import InventoryError, NodeInventory

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 5.0
BACKOFF_MAX_S = 300.0
TOKEN_REFUSED = frozenset({401, 403})


@dataclass(frozen=True)
class AccessConfig:
    """The one local account buyers get on this node, its authorized_keys file, and how they reach it."""

    login_user: str
    authorized_keys: Path
    ssh_host: str
    ssh_port: int
    node_hostname: str | None = None  # the name this node reports: asks for its own handovers only


@dataclass
class LoopState:
    reported_inventory: tuple | None = None  # identity of the last inventory the platform accepted
    failures: int = 0  # consecutive cycles the platform was unavailable


class TokenRefused(Exception):
    """The platform answered 401/403: the agent token is wrong, revoked or not for this cluster."""


def inventory_identity(inventory: NodeInventory) -> tuple:
    """What must be re-reported when it changes: the hardware, not its live readings."""
    return (
        inventory.hostname,
        inventory.vendor,
        tuple((gpu.index, gpu.model, gpu.uuid, gpu.serial, gpu.memory_mib, gpu.driver) for gpu in inventory.gpus),
    )


def apply_handover(handover: Handover, access: AccessConfig) -> tuple[str, str | None]:
    """Install or remove the booking's keys; return (report status, failure detail). Never raises AccessError."""
    if handover.login_user != access.login_user:
        return "failed", f"this node hands over user {access.login_user!r} only, not {handover.login_user!r}"
    try:
        if handover.action == "install":
            count = install_keys(access.authorized_keys, handover.booking, handover.ssh_keys)
            log.info("booking %s: installed %d key(s) for %s", handover.booking, count, access.login_user)
            return "installed", None
        count = remove_keys(access.authorized_keys, handover.booking)
        log.info("booking %s: removed %d key line(s) for %s", handover.booking, count, access.login_user)
        return "removed", None
    except AccessError as exc:
        log.error("booking %s: %s failed: %s", handover.booking, handover.action, exc)
        return "failed", str(exc)


def process_handovers(client: PlatformClient, access: AccessConfig) -> int:
    """Apply and report every pending handover; return how many failed (locally or when reported).

    PlatformUnavailable and TokenRefused propagate (the next cycle redoes the work: installing and removing are
    idempotent); any other refusal of one report is logged and the next handover is processed.
    """
    failed = 0
    for handover in client.handovers(hostname=access.node_hostname):
        status, detail = apply_handover(handover, access)
        failed += status == "failed"
        try:
            client.report_handover(handover.id, status, access.ssh_host, access.ssh_port, access.login_user, detail)
        except PlatformError as exc:
            _raise_if_token_refused(exc)
            log.error("handover %s: report refused: %s", handover.id, exc)
            failed += 1
    return failed


def report_node(client: PlatformClient, inventory: NodeInventory, state: LoopState) -> None:
    """Report the inventory if the platform has not accepted this one yet, then send a heartbeat."""
    identity = inventory_identity(inventory)
    if identity != state.reported_inventory:
        client.report_inventory(inventory)
        state.reported_inventory = identity
        log.info("inventory reported: %d %s GPU(s) on %s", len(inventory.gpus), inventory.vendor, inventory.hostname)
    client.heartbeat(inventory)
    log.debug("heartbeat sent")


def run_cycle(
    client: PlatformClient, access: AccessConfig, collect: Callable[[], NodeInventory], state: LoopState
) -> bool:
    """One cycle; return True when every step succeeded. Raises PlatformUnavailable and TokenRefused only.

    A failing GPU tool skips the heartbeat (the platform then sees the node as silent, which is the truth) but
    not the handovers: a buyer's access must not wait on nvidia-smi.
    """
    succeeded = True
    try:
        report_node(client, collect(), state)
    except InventoryError as exc:
        log.error("inventory: %s", exc)
        succeeded = False
    except PlatformError as exc:
        _raise_if_token_refused(exc)
        log.error("inventory or heartbeat refused: %s", exc)
        succeeded = False
    try:
        failed = process_handovers(client, access)
    except PlatformError as exc:
        _raise_if_token_refused(exc)
        log.error("handovers refused: %s", exc)
        return False
    return succeeded and failed == 0


def run_once(client: PlatformClient, access: AccessConfig, collect: Callable[[], NodeInventory]) -> int:
    """``gpux-agent once``: one cycle; exit status 0 when everything succeeded, else 1."""
    try:
        return 0 if run_cycle(client, access, collect, LoopState()) else 1
    except PlatformUnavailable as exc:
        log.error("%s", exc)
    except TokenRefused as exc:
        log.error("%s", exc)
    return 1


def backoff_delay(failures: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait after ``failures`` consecutive unavailable cycles: 5, 10, 20 … capped at 300, each scaled
    by a random factor in [0.5, 1) so a fleet of nodes does not return in step after an outage."""
    base = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (failures - 1))
    return base * (0.5 + rng() / 2)


def run_forever(
    client: PlatformClient,
    access: AccessConfig,
    collect: Callable[[], NodeInventory],
    stop: threading.Event,
    interval: float,
    *,
    wait: Callable[[float], object] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    rng: Callable[[], float] = random.random,
) -> int:
    """``gpux-agent run``: cycle every ``interval`` seconds until ``stop`` is set; exit status 0, or 1 when the
    platform refused the token. ``wait`` (default ``stop.wait``) sleeps and wakes early when stop is set."""
    wait = wait or stop.wait
    state = LoopState()
    while not stop.is_set():
        started = monotonic()
        try:
            run_cycle(client, access, collect, state)
            state.failures = 0
            delay = max(0.0, interval - (monotonic() - started))
        except PlatformUnavailable as exc:
            state.failures += 1
            delay = backoff_delay(state.failures, rng)
            log.warning("%s; retrying in %.0f s", exc, delay)
        except TokenRefused as exc:
            log.error("%s; stopping", exc)
            return 1
        wait(delay)
    log.info("stopped")
    return 0


def _raise_if_token_refused(exc: PlatformError) -> None:
    if exc.status in TOKEN_REFUSED:
        raise TokenRefused(f"the platform refused the agent token ({exc.status}: {exc.detail})") from exc

"""``gpux-agent``: the command line. Output for people goes to stderr through logging; ``inventory`` prints JSON
on stdout.

Configuration, by flag or environment variable (flags win):

==================  ==========================  ==========================================================
flag                environment                 meaning
==================  ==========================  ==========================================================
--url               GPUX_URL                    platform base URL (https://…; http:// only to localhost)
(none)              GPUX_AGENT_TOKEN            the cluster's agent token (never a flag: argv is public)
--token-file        GPUX_AGENT_TOKEN_FILE       a file holding it (wins over GPUX_AGENT_TOKEN)
--login-user        GPUX_LOGIN_USER             the one local account buyers get (never root)
--authorized-keys   GPUX_AUTHORIZED_KEYS        its authorized_keys file (default ~login-user/.ssh/…)
--ssh-host          GPUX_SSH_HOST               host name buyers connect to (default: this host's FQDN)
--ssh-port          GPUX_SSH_PORT               SSH port buyers connect to (default 22)
--hostname          GPUX_HOSTNAME               node name reported to the platform (default: hostname)
--interval          GPUX_INTERVAL               seconds between heartbeats in ``run`` (default 60)
--timeout           GPUX_TIMEOUT                HTTP timeout in seconds (default 10)
==================  ==========================  ==========================================================

Exit status: 0 success, 1 a step failed (or the token was refused), 2 bad configuration.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pwd
import signal
import socket
import sys
import threading
from pathlib import Path

from gpux_agent import __version__
from gpux_agent.client import PlatformClient
from gpux_agent.inventory import InventoryError, collect
from gpux_agent.service import AccessConfig, run_forever, run_once

log = logging.getLogger("gpux_agent")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


class ConfigError(Exception):
    """The configuration is incomplete or unsafe; the message says which setting to fix."""


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="gpux-agent", description="GPU compute exchange provider agent.")
    parser.add_argument("--version", action="version", version=f"gpux-agent {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", required=True)

    node = argparse.ArgumentParser(add_help=False)
    node.add_argument(
        "--hostname",
        default=env("GPUX_HOSTNAME"),
        help="node name reported to the platform [GPUX_HOSTNAME, this host's name]",
    )
    commands.add_parser("inventory", parents=[node], help="print this node's parsed GPU inventory as JSON (no network)")
    platform = argparse.ArgumentParser(add_help=False)
    platform.add_argument("--url", default=env("GPUX_URL"), help="platform base URL [GPUX_URL]")
    platform.add_argument(
        "--token-file",
        default=env("GPUX_AGENT_TOKEN_FILE"),
        help="file holding the agent token [GPUX_AGENT_TOKEN_FILE; or GPUX_AGENT_TOKEN]",
    )
    platform.add_argument(
        "--login-user", default=env("GPUX_LOGIN_USER"), help="local account handed to buyers [GPUX_LOGIN_USER]"
    )
    platform.add_argument(
        "--authorized-keys",
        default=env("GPUX_AUTHORIZED_KEYS"),
        help="that account's authorized_keys file [GPUX_AUTHORIZED_KEYS]",
    )
    platform.add_argument("--ssh-host", default=env("GPUX_SSH_HOST"), help="host buyers connect to [GPUX_SSH_HOST]")
    # String defaults go through ``type`` too, so a bad environment value is a usage error, not a traceback.
    platform.add_argument(
        "--ssh-port",
        type=int,
        default=env("GPUX_SSH_PORT", "22"),
        help="SSH port buyers connect to [GPUX_SSH_PORT, 22]",
    )
    platform.add_argument(
        "--timeout", type=float, default=env("GPUX_TIMEOUT", "10"), help="HTTP timeout in seconds [GPUX_TIMEOUT, 10]"
    )
    commands.add_parser("once", parents=[node, platform], help="report inventory, one heartbeat, pending handovers")
    run = commands.add_parser("run", parents=[node, platform], help="heartbeat and handovers every --interval seconds")
    run.add_argument(
        "--interval", type=float, default=env("GPUX_INTERVAL", "60"), help="seconds between cycles [GPUX_INTERVAL, 60]"
    )
    return parser


def read_token(args: argparse.Namespace) -> str:
    """The token from --token-file (or GPUX_AGENT_TOKEN_FILE) when given, else from GPUX_AGENT_TOKEN; ConfigError
    when neither gives one."""
    if args.token_file:
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the token file: {exc}") from None
    else:
        token = os.environ.get("GPUX_AGENT_TOKEN", "").strip()
    if not token:
        raise ConfigError("no agent token: set GPUX_AGENT_TOKEN or --token-file")
    return token


def access_config(args: argparse.Namespace) -> AccessConfig:
    """The handover settings; ConfigError for a missing or root login user or an unknown user without a path."""
    user = args.login_user
    if not user:
        raise ConfigError("no login user: set --login-user or GPUX_LOGIN_USER")
    if user == "root":
        raise ConfigError("buyers must never get root: choose an unprivileged --login-user")
    if args.authorized_keys:
        keys_path = Path(args.authorized_keys)
    else:
        try:
            keys_path = Path(pwd.getpwnam(user).pw_dir) / ".ssh" / "authorized_keys"
        except KeyError:
            raise ConfigError(f"login user {user!r} does not exist on this node") from None
    if not 0 < args.ssh_port < 65536:
        raise ConfigError(f"--ssh-port must be 1-65535, got {args.ssh_port}")
    return AccessConfig(
        login_user=user,
        authorized_keys=keys_path,
        ssh_host=args.ssh_host or socket.getfqdn(),
        ssh_port=args.ssh_port,
        node_hostname=args.hostname or socket.gethostname(),
    )


def platform_client(args: argparse.Namespace) -> PlatformClient:
    if not args.url:
        raise ConfigError("no platform URL: set --url or GPUX_URL")
    try:
        return PlatformClient(args.url, read_token(args), timeout=args.timeout)
    except ValueError as exc:  # includes InsecureURL
        raise ConfigError(str(exc)) from None


def command_inventory(args: argparse.Namespace) -> int:
    try:
        inventory = collect(hostname=args.hostname)
    except InventoryError as exc:
        log.error("%s", exc)
        return EXIT_FAILED
    json.dump(inventory.to_dict(), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return EXIT_OK


def node_collector(args: argparse.Namespace):
    """collect() for this node, keeping Ascend board serials between cycles (they do not change while it runs)."""
    serials: dict[int, str | None] = {}
    return lambda: collect(hostname=args.hostname, serial_cache=serials)


def command_once(args: argparse.Namespace) -> int:
    client, access = platform_client(args), access_config(args)
    return run_once(client, access, node_collector(args))


def command_run(args: argparse.Namespace) -> int:
    client, access = platform_client(args), access_config(args)
    if args.interval <= 0:
        raise ConfigError(f"--interval must be positive, got {args.interval:g}")
    stop = threading.Event()
    # The handler only sets the event: the cycle in progress finishes (no half-written authorized_keys, no lost
    # report), then the loop's wait returns at once and the process exits 0.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stop.set())
    log.info("gpux-agent %s: reporting to %s every %g s", __version__, client.base_url, args.interval)
    return run_forever(client, access, node_collector(args), stop, args.interval)


COMMANDS = {"inventory": command_inventory, "once": command_once, "run": command_run}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        log.error("configuration: %s", exc)
        return EXIT_CONFIG

"""The platform's agent API, over urllib (standard library only).

Every request carries ``Authorization: Agent <token>`` (the cluster's agent token), ``Accept: application/json``
and ``Accept-Language: en`` (the agent logs in English); bodies are JSON (``Content-Type: application/json``).

- ``POST {base}/api/v1/agent/inventory/``   body: NodeInventory.to_dict() + ``agent_version``
- ``POST {base}/api/v1/agent/heartbeats/``  body: ``{hostname, sent_at, sequence, gpus: [{index, health,
  utilisation_pct, temperature_c}]}``; ``sequence`` strictly increases, also across restarts (see ``heartbeat``)
- ``GET  {base}/api/v1/agent/handovers/``   answer: a list, or a page ``{count, next, previous, results}``, of
  ``{id, booking, node, action: "install"|"remove", login_user, ssh_keys: [..]}``
- ``POST {base}/api/v1/agent/handovers/{id}/report/``  body: ``{status, host, port, user, detail}``

Failures: 4xx answers raise PlatformError (status, the server's ``detail`` and ``errors``); 5xx, 429 and
connection problems raise PlatformUnavailable, which is worth retrying. Redirects are refused (PlatformError with
the target), so the token is only ever sent to the configured address.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from gpux_agent import __version__
from gpux_agent.inventory import NodeInventory

API_PATH = "/api/v1/agent/"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
HANDOVER_ACTIONS = frozenset({"install", "remove"})
REPORT_STATUSES = frozenset({"installed", "removed", "failed"})
MAX_PAGES = 100  # a server bug that links pages in a circle must not keep the agent busy forever
DETAIL_LIMIT = 300


class InsecureURL(ValueError):
    """The base URL would send the token in clear text (http:// to a host other than this machine)."""


class PlatformError(Exception):
    """The platform refused the request (4xx) or answered something this agent cannot use. Not worth retrying."""

    def __init__(self, status: int | None, detail: str, errors: dict | list | None = None):
        self.status = status
        self.detail = detail
        self.errors = errors
        suffix = f" {json.dumps(errors, ensure_ascii=False)}" if errors else ""
        super().__init__(f"platform answered {status}: {detail}{suffix}")


class PlatformUnavailable(Exception):
    """The platform could not be reached, or answered 5xx/429. Worth retrying later."""

    def __init__(self, status: int | None, detail: str):
        self.status = status
        self.detail = detail
        super().__init__(f"platform unavailable ({status or 'no answer'}): {detail}")


@dataclass(frozen=True)
class Handover:
    """A booking's access change on one node: install its buyer's keys, or remove them."""

    id: int
    booking: int
    node: int
    action: str
    login_user: str
    ssh_keys: tuple[str, ...]


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    # Returning None makes urllib raise HTTPError for the 3xx itself: following it would hand the Authorization
    # header to wherever the Location points, possibly over plain http.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def check_base_url(base_url: str) -> str:
    """Return the base URL without a trailing slash; raise InsecureURL unless it is https:// or http:// to
    localhost/127.0.0.1/::1, and ValueError when it is not an absolute URL without query or fragment."""
    parsed = urllib.parse.urlsplit(base_url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"platform URL must look like https://host[:port], got {base_url!r}")
    if parsed.query or parsed.fragment or parsed.username or parsed.password:
        raise ValueError(f"platform URL must not carry credentials, a query or a fragment: {base_url!r}")
    if parsed.scheme == "http" and parsed.hostname not in LOCAL_HOSTS:
        raise InsecureURL(
            f"refusing {base_url!r}: the agent token would cross the network in clear text; use https:// "
            "(http:// is accepted for localhost and 127.0.0.1 only)"
        )
    return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, parsed.path.rstrip("/"), "", ""))


def _check_token(token: str) -> str:
    if not token or any(char.isspace() for char in token) or not token.isprintable():
        raise ValueError("agent token must be a non-empty string without spaces or control characters")
    return token


class PlatformClient:
    """The agent side of the platform's agent API. Not thread-safe (one heartbeat sequence per client)."""

    def __init__(self, base_url: str, token: str, timeout: float = 10.0, *, clock: Callable[[], float] = time.time):
        self.base_url = check_base_url(base_url)
        self._token = _check_token(token)
        self.timeout = timeout
        self._clock = clock
        self._last_sequence = 0
        self._opener = urllib.request.build_opener(_RefuseRedirects)

    # --- endpoints ---------------------------------------------------------------------------------------------

    def report_inventory(self, inventory: NodeInventory) -> object:
        """POST the node's inventory; returns the server's JSON answer."""
        return self._request("POST", "inventory/", {**inventory.to_dict(), "agent_version": __version__})

    def heartbeat(self, inventory: NodeInventory) -> object:
        """POST a heartbeat with each GPU's health, utilisation and temperature; returns the server's answer."""
        body = {
            "hostname": inventory.hostname,
            "sent_at": datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="milliseconds"),
            "sequence": self._next_sequence(),
            "gpus": [
                {
                    "index": gpu.index,
                    "health": gpu.health,
                    "utilisation_pct": gpu.utilisation_pct,
                    "temperature_c": gpu.temperature_c,
                }
                for gpu in inventory.gpus
            ],
        }
        return self._request("POST", "heartbeats/", body)

    def handovers(self, hostname: str | None = None) -> list[Handover]:
        """GET the pending handovers (every page) of this node (``hostname``: the name the inventory reports, so a
        token shared by several nodes hands each only its own), or of every node the token serves. Raises
        PlatformError if one is malformed."""
        items: list = []
        query = f"?{urllib.parse.urlencode({'hostname': hostname})}" if hostname else ""
        url: str | None = self.base_url + API_PATH + "handovers/" + query
        for _ in range(MAX_PAGES):
            page_items, url = self._page(self._request_url("GET", url, None))
            items.extend(page_items)
            if url is None:
                return [_parse_handover(item, position) for position, item in enumerate(items)]
        raise PlatformError(200, f"handover list has more than {MAX_PAGES} pages")

    def report_handover(
        self,
        handover_id: int,
        status: str,
        host: str | None,
        port: int | None,
        user: str | None,
        detail: str | None = None,
    ) -> object:
        """POST the outcome of a handover: ``installed`` (with the endpoint), ``removed`` or ``failed`` (+ detail)."""
        if status not in REPORT_STATUSES:
            raise ValueError(f"status must be one of {sorted(REPORT_STATUSES)}, got {status!r}")
        body = {"status": status, "host": host, "port": port, "user": user, "detail": detail}
        return self._request("POST", f"handovers/{int(handover_id)}/report/", body)

    # --- plumbing ----------------------------------------------------------------------------------------------

    def _next_sequence(self) -> int:
        # Milliseconds since the epoch, bumped when two heartbeats share a millisecond: strictly increasing within
        # a process and across restarts (while the clock does not run backwards), so the server can refuse any
        # sequence not above the last one it accepted for the node.
        self._last_sequence = max(self._last_sequence + 1, int(self._clock() * 1000))
        return self._last_sequence

    def _page(self, answer: object) -> tuple[list, str | None]:
        if isinstance(answer, list):
            return answer, None
        if isinstance(answer, dict) and isinstance(answer.get("results"), list):
            next_url = answer.get("next")
            if next_url is not None and not self._same_origin(next_url):
                raise PlatformError(200, f"handover page links to another site: {next_url!r}")
            return answer["results"], next_url
        raise PlatformError(200, "handover list is neither a list nor a page of results")

    def _same_origin(self, url: object) -> bool:
        if not isinstance(url, str):
            return False
        ours, theirs = urllib.parse.urlsplit(self.base_url), urllib.parse.urlsplit(url)
        return (ours.scheme, ours.netloc) == (theirs.scheme, theirs.netloc)

    def _request(self, method: str, path: str, body: object) -> object:
        return self._request_url(method, self.base_url + API_PATH + path, body)

    def _request_url(self, method: str, url: str, body: object) -> object:
        data = None if body is None else json.dumps(body).encode("utf-8")
        # Only http(s) reach here: check_base_url vetted the base, _same_origin every followed page.
        request = urllib.request.Request(url, data=data, method=method, headers=self._headers(data is not None))  # noqa: S310
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return _decode_success(response.status, response.read())
        except urllib.error.HTTPError as exc:
            raise _error_for(exc) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise PlatformUnavailable(None, f"{method} {url}: {reason}") from None

    def _headers(self, has_body: bool) -> dict[str, str]:
        headers = {
            "Authorization": f"Agent {self._token}",
            "Accept": "application/json",
            "Accept-Language": "en",
            "User-Agent": f"gpux-agent/{__version__}",
        }
        if has_body:
            headers["Content-Type"] = "application/json"
        return headers


def _decode_success(status: int, raw: bytes) -> object:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise PlatformError(status, f"answer is not JSON: {raw[:DETAIL_LIMIT]!r}") from None


def _error_for(exc: urllib.error.HTTPError) -> Exception:
    status = exc.code
    if 300 <= status < 400:
        return PlatformError(status, f"redirected to {exc.headers.get('Location')!r}, refused: configure that URL")
    try:
        raw = exc.read()
    except (OSError, http.client.HTTPException):
        raw = b""
    detail, errors = _explain(raw, exc.reason)
    if status >= 500 or status == 429:
        return PlatformUnavailable(status, detail)
    return PlatformError(status, detail, errors)


def _explain(raw: bytes, reason: object) -> tuple[str, dict | list | None]:
    """The server's ``detail`` and ``errors`` from an error body; the raw text when it is not the usual JSON."""
    try:
        body = json.loads(raw) if raw.strip() else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        detail = body.get("detail")
        errors = body.get("errors")
        if detail is None and errors is None:
            # DRF's default validation answer is the field map itself.
            return str(reason), body
        return str(detail if detail is not None else reason), errors
    text = raw.decode("utf-8", "replace").strip()[:DETAIL_LIMIT]
    return text or str(reason), None


def _parse_handover(item: object, position: int) -> Handover:
    def refuse(what: str) -> PlatformError:
        return PlatformError(200, f"handover #{position} is malformed: {what}")

    if not isinstance(item, dict):
        raise refuse("not an object")
    for field in ("id", "booking", "node"):
        value = item.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise refuse(f"{field} must be a non-negative integer, got {value!r}")
    if item.get("action") not in HANDOVER_ACTIONS:
        raise refuse(f"action must be install or remove, got {item.get('action')!r}")
    if not isinstance(item.get("login_user"), str):
        raise refuse("login_user must be a string")
    keys = item.get("ssh_keys", [])
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise refuse("ssh_keys must be a list of strings")
    return Handover(
        id=item["id"],
        booking=item["booking"],
        node=item["node"],
        action=item["action"],
        login_user=item["login_user"],
        ssh_keys=tuple(keys),
    )

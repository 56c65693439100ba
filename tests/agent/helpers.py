"""Helpers for the provider agent's tests: recorded tool outputs, OpenSSH public keys built byte by byte, and
the fake platform that the ``platform`` fixture (conftest.py) serves over a real ThreadingHTTPServer."""

import base64
import threading
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


# --- OpenSSH public keys --------------------------------------------------------------------------------------------


def _wire(*fields: bytes) -> bytes:
    return b"".join(len(field).to_bytes(4, "big") + field for field in fields)


def ed25519_key(seed: int = 1, comment: str = "buyer@laptop") -> str:
    blob = _wire(b"ssh-ed25519", bytes([seed % 256]) * 32)
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}".strip()


def rsa_key(bits: int = 3072, comment: str = "buyer@workstation") -> str:
    modulus = (1 << (bits - 1)) | 0x10001  # exactly ``bits`` bits long
    n = b"\x00" + modulus.to_bytes((bits + 7) // 8, "big")  # mpint: leading zero keeps it positive
    blob = _wire(b"ssh-rsa", b"\x01\x00\x01", n)
    return f"ssh-rsa {base64.b64encode(blob).decode()} {comment}".strip()


def ecdsa_key(curve: str = "nistp256", coordinate: int = 32, comment: str = "") -> str:
    blob = _wire(f"ecdsa-sha2-{curve}".encode(), curve.encode(), b"\x04" + b"\x07" * (2 * coordinate))
    return f"ecdsa-sha2-{curve} {base64.b64encode(blob).decode()} {comment}".strip()


# --- the fake platform ----------------------------------------------------------------------------------------------

HANG = "hang"  # a response that only comes when the test ends: for client timeouts


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict
    body: object


def route(path: str) -> str:
    """The path a test queues answers for: without the agent's ``hostname`` query (see ``test_cli`` for it)."""
    base, _, query = path.partition("?")
    kept = "&".join(part for part in query.split("&") if part and not part.startswith("hostname="))
    return f"{base}?{kept}" if kept else base


class FakePlatform:
    """Records every request; answers what the test queued for (method, path), else 200 with ``{}`` (``[]`` for
    the handover list). A queued answer is used once while others follow it; the last one stays."""

    def __init__(self):
        self.url = ""
        self.requests: list[RecordedRequest] = []
        self._answers: dict[tuple[str, str], list[tuple[object, object, dict]]] = {}
        self._seen = threading.Condition()
        self.release = threading.Event()

    def respond(self, method: str, path: str, status=200, body=None, headers=None) -> None:
        self._answers.setdefault((method, path), []).append((status, body, headers or {}))

    def answer_for(self, method: str, path: str) -> tuple[object, object, dict]:
        path = route(path)
        queue = self._answers.get((method, path))
        if not queue:
            return 200, ([] if path.endswith("/handovers/") else {}), {}
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def record(self, request: RecordedRequest) -> None:
        with self._seen:
            self.requests.append(request)
            self._seen.notify_all()

    def wait_for(self, method: str, path: str, timeout: float = 30.0) -> RecordedRequest:
        """Block until a request for (method, path) has arrived; fail the test after ``timeout`` seconds."""

        def arrived():
            return next((r for r in self.requests if (r.method, route(r.path)) == (method, path)), None)

        with self._seen:
            found = self._seen.wait_for(arrived, timeout=timeout)
        assert found is not None, f"no {method} {path} within {timeout} s; got {self.paths()}"
        return found

    def paths(self) -> list[tuple[str, str]]:
        return [(r.method, route(r.path)) for r in self.requests]

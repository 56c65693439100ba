"""The provider agent's tests: ``gpux_agent`` importable from ``agent/`` (it is not installed in the project's
virtualenv), and the ``platform`` fixture, a fake platform on a real ThreadingHTTPServer on 127.0.0.1.

None of these tests touch the database: the agent has no Django in it.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.agent.helpers import HANG, FakePlatform, RecordedRequest

AGENT_DIR = Path(__file__).resolve().parents[2] / "agent"
if str(AGENT_DIR) not in sys.path:
    sys.path.insert(0, str(AGENT_DIR))


def _handler_for(platform: FakePlatform):
    class Handler(BaseHTTPRequestHandler):
        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw and self.headers.get("Content-Type") == "application/json" else raw
            platform.record(RecordedRequest(self.command, self.path, dict(self.headers.items()), body))
            status, answer, headers = platform.answer_for(self.command, self.path)
            if status == HANG:
                platform.release.wait()
                return
            payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self):
            self._serve()

        def do_POST(self):
            self._serve()

        def log_message(self, *args):  # keep pytest's output for failures
            pass

    return Handler


@pytest.fixture
def platform():
    fake = FakePlatform()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)

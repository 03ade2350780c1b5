"""Fixtures for the plugin's tests: real Canvas events, and a recording stand-in for the
alliance-feedback service on a loopback port (the plugin's HTTP goes through the SDK's Http
over a real socket). tests/canvas_plugin/ in the service's suite runs the plugin against the
real service."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from canvas_generated.messages.events_pb2 import Event as EventRequest
from canvas_sdk.events import Event, EventType

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
API_KEY = "afk_test.0123456789abcdefghijklmnopqrstuvwxyz"


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class StandIn:
    """Records every request; answers each with the next queued (status, body), else 202 {}."""

    url: str
    requests: list = field(default_factory=list)
    answers: deque = field(default_factory=deque)

    def answer(self, status: int, body=None) -> None:
        """Queue an answer: a body that is a str is sent as it is, anything else as JSON."""
        self.answers.append((status, {} if body is None else body))


@pytest.fixture
def service():
    stand_in = StandIn(url="")

    class Handler(BaseHTTPRequestHandler):
        def _record_and_answer(self):
            length = int(self.headers.get("content-length") or 0)
            parts = urlsplit(self.path)
            stand_in.requests.append(Request(
                self.command, parts.path, parse_qs(parts.query),
                {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)))
            status, body = stand_in.answers.popleft() if stand_in.answers else (202, {})
            payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _record_and_answer

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stand_in.url = f"http://127.0.0.1:{server.server_port}"
    yield stand_in
    server.shutdown()
    server.server_close()


@pytest.fixture
def variables(service) -> dict:
    """The plugin's variables, as `canvas config set` would give them, pointing at the stand-in."""
    return {
        "ALLIANCE_SERVICE_URL": service.url + "/",
        "ALLIANCE_PRACTICE_ID": "northside",
        "ALLIANCE_WEBHOOK_SECRET": SECRET,
        "ALLIANCE_API_KEY": API_KEY,
        "ALLIANCE_SMART_ISS": "https://fumage-northside.canvasmedical.com",
        "ALLIANCE_NOTE_TYPES": "",
    }


@pytest.fixture
def make_event():
    """Real SDK Events, built as the plugin runner builds them from the wire message."""

    def make(event_type: str, target: str, context: dict | None = None,
             target_type: str = "") -> Event:
        return Event(EventRequest(type=EventType.Value(event_type), target=target,
                                  target_type=target_type, context=json.dumps(context or {})))

    return make

"""Fast fakes of the service's peers for benchmarks and chaos runs, over real HTTP on 127.0.0.1.

* a FHIR R4 EHR: conditional create (If-None-Exist on `identifier`), read, identifier search,
  version-aware update (If-Match), a synthetic Patient for any id;
* a Twilio-compatible SMS provider: `POST /2010-04-01/Accounts/{sid}/Messages.json` (form
  fields To, From, Body; HTTP Basic) and the matching list `GET …/Messages.json?To=…`.

Both can be told, while running, to fail a share of requests with 503 (`fail_ratio`; half of
those after the write took effect, as when an answer is lost on the way back) or to be down
(`down`: the connection is closed before a byte of the request is read). Control and
inspection bypass the faults:

    POST /_control {"fail_ratio": 0.3, "down": false}     GET /_stats     GET /_messages?after=N

    .venv/bin/python benchmarks/peers.py --ehr-port 18080 --sms-port 18081

Everything is kept in memory; one process, one thread per connection, no logging.
"""

from __future__ import annotations

import argparse
import base64
import email.utils
import itertools
import json
import random
import signal
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, parse_qsl, urlsplit

SMS_ACCOUNT = "ACbench0000000000000000000000000000"
SMS_TOKEN = "bench-sms-token"


@dataclass
class Faults:
    """What the peer does wrong right now; changed at run time through /_control."""

    fail_ratio: float = 0.0
    down: bool = False
    random: random.Random = field(default_factory=lambda: random.Random(7))

    def update(self, changes: dict) -> dict:
        if "fail_ratio" in changes:
            self.fail_ratio = min(1.0, max(0.0, float(changes["fail_ratio"])))
        if "down" in changes:
            self.down = bool(changes["down"])
        return {"fail_ratio": self.fail_ratio, "down": self.down}

    def roll(self) -> str | None:
        """None (answer normally), "before" (503, nothing done) or "after" (done, then 503)."""
        if self.fail_ratio and self.random.random() < self.fail_ratio:
            return "before" if self.random.random() < 0.5 else "after"
        return None


class Handler(BaseHTTPRequestHandler):
    """Shared plumbing: keep-alive, JSON answers, the control endpoints, the faults."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in one write without Nagle's delay (else each answer waits ~40 ms
    # for the client's delayed ACK, and the fake, not the service, sets the pace).
    disable_nagle_algorithm = True
    server: PeerServer

    def handle_one_request(self) -> None:
        if self.server.faults.down and not self._is_control_connection():
            # Down: refuse before reading the request, as a crashed or unreachable peer would.
            self.close_connection = True
            return
        super().handle_one_request()

    def _is_control_connection(self) -> bool:
        # Peek, without consuming, whether this connection asks for a control endpoint.
        try:
            start = self.connection.recv(16, 0x2)  # MSG_PEEK
        except OSError:
            return False
        return b" /_" in start

    def log_message(self, *_args) -> None:  # the peers hold personal data: say nothing
        return

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def answer(self, status: int, document=None, headers: dict | None = None,
               content_type: str = "application/json") -> None:
        data = b"" if document is None else json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self._headers_buffer.append(b"\r\n")
        self._headers_buffer.append(data)
        self.flush_headers()

    def control(self) -> bool:
        """Serve /_control and /_stats; True when the request was one of them."""
        path = urlsplit(self.path).path
        if path == "/_control" and self.command == "POST":
            self.answer(200, self.server.faults.update(json.loads(self.body() or b"{}")))
            return True
        if path == "/_stats":
            self.answer(200, self.server.stats(full="full=1" in self.path))
            return True
        return False


class PeerServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address, handler):
        super().__init__(address, handler)
        self.faults = Faults()
        self.lock = threading.Lock()
        self.requests = 0
        self.failed = 0

    def stats(self, full: bool = False) -> dict:
        return {"requests": self.requests, "failed": self.failed}


# --- the EHR ----------------------------------------------------------------------------------


class FhirServer(PeerServer):
    def __init__(self, address):
        super().__init__(address, FhirHandler)
        self.resources: dict[tuple[str, str], dict] = {}
        self.by_identifier: dict[tuple[str, str], str] = {}
        self.ids = itertools.count(1)

    def stats(self, full: bool = False) -> dict:
        """Counts per type; with `full`, one summary line per resource (what checks compare)."""
        with self.lock:
            counts: dict[str, int] = {}
            for kind, _rid in self.resources:
                counts[kind] = counts.get(kind, 0) + 1
            if not full:
                return {**super().stats(), "counts": counts}
            summary = [
                {"type": kind, "id": rid, "version": r["meta"]["versionId"],
                 "encounter": (r.get("encounter") or {}).get("reference"),
                 "identifier": _identifier_token(r), "status": r.get("status")}
                for (kind, rid), r in self.resources.items()
            ]
        return {**super().stats(), "counts": counts, "resources": summary}


def _identifier_token(resource: dict) -> str | None:
    identifiers = resource.get("identifier") or []
    # QuestionnaireResponse.identifier is one Identifier; elsewhere it is a list.
    for identifier in [identifiers] if isinstance(identifiers, dict) else identifiers:
        return f"{identifier.get('system', '')}|{identifier.get('value', '')}"
    return None


class FhirHandler(Handler):
    server: FhirServer

    def do_GET(self) -> None:
        if self.control():
            return
        parts = urlsplit(self.path)
        segments = parts.path.strip("/").split("/")[1:]  # drop the "fhir" prefix
        if len(segments) == 2:
            return self._read(*segments)
        if len(segments) == 1:
            return self._search(segments[0], dict(parse_qsl(parts.query)))
        self.answer(404, _outcome("not-found", "no such endpoint"))

    def do_POST(self) -> None:
        if self.control():
            return
        resource_type = urlsplit(self.path).path.strip("/").split("/")[-1]
        resource = json.loads(self.body())
        fault = self._fault()
        if fault == "before":
            return self._unavailable()
        with self.server.lock:
            existing = self._match(resource_type, self.headers.get("If-None-Exist"))
            if existing is None:
                stored = self._store(resource_type, str(next(self.server.ids)), resource, 1)
        if fault == "after":
            return self._unavailable()
        if existing is not None:
            return self.answer(200, existing, self._etag(existing), "application/fhir+json")
        location = f"{resource_type}/{stored['id']}/_history/1"
        self.answer(201, stored, {"Location": location, **self._etag(stored)}, "application/fhir+json")

    def do_PUT(self) -> None:
        if self.control():
            return
        _, resource_type, resource_id = urlsplit(self.path).path.strip("/").split("/")[-3:]
        resource = json.loads(self.body())
        fault = self._fault()
        if fault == "before":
            return self._unavailable()
        with self.server.lock:
            current = self.server.resources.get((resource_type, resource_id))
            version = int(current["meta"]["versionId"]) if current else 0
            wanted = (self.headers.get("If-Match") or "").strip('W/"')
            if current is not None and wanted and wanted != str(version):
                return self.answer(412, _outcome("conflict", "version mismatch"))
            stored = self._store(resource_type, resource_id, resource, version + 1)
        if fault == "after":
            return self._unavailable()
        self.answer(200 if current else 201, stored, self._etag(stored), "application/fhir+json")

    def _read(self, resource_type: str, resource_id: str) -> None:
        if self._fault() is not None:
            return self._unavailable()
        if resource_type == "Patient":
            patient = {"resourceType": "Patient", "id": resource_id, "meta": {"versionId": "1"},
                       "telecom": [{"system": "phone", "value": "+15550100000", "use": "mobile"}]}
            return self.answer(200, patient, {}, "application/fhir+json")
        with self.server.lock:
            found = self.server.resources.get((resource_type, resource_id))
        if found is None:
            return self.answer(404, _outcome("not-found", "no such resource"))
        self.answer(200, found, self._etag(found), "application/fhir+json")

    def _search(self, resource_type: str, params: dict) -> None:
        if self._fault() is not None:
            return self._unavailable()
        with self.server.lock:
            found = self._match(resource_type, f"identifier={params.get('identifier', '')}")
        entries = [{"resource": found, "search": {"mode": "match"}}] if found else []
        self.answer(200, {"resourceType": "Bundle", "type": "searchset", "total": len(entries),
                          "entry": entries}, {}, "application/fhir+json")

    def _match(self, resource_type: str, condition: str | None) -> dict | None:
        if not condition:
            return None
        token = dict(parse_qsl(condition)).get("identifier")
        found = self.server.by_identifier.get((resource_type, token or ""))
        return self.server.resources[(resource_type, found)] if found else None

    def _store(self, resource_type: str, resource_id: str, resource: dict, version: int) -> dict:
        stored = {**resource, "id": resource_id, "meta": {"versionId": str(version)}}
        self.server.resources[(resource_type, resource_id)] = stored
        token = _identifier_token(stored)
        if token:
            self.server.by_identifier[(resource_type, token)] = resource_id
        return stored

    def _fault(self) -> str | None:
        with self.server.lock:
            self.server.requests += 1
            fault = self.server.faults.roll()
            self.server.failed += fault is not None
        return fault

    def _unavailable(self) -> None:
        self.answer(503, _outcome("transient", "injected failure"), {}, "application/fhir+json")

    @staticmethod
    def _etag(resource: dict) -> dict:
        return {"ETag": f'W/"{resource["meta"]["versionId"]}"'}


def _outcome(code: str, text: str) -> dict:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": text}]}


# --- the SMS provider -------------------------------------------------------------------------


class SmsServer(PeerServer):
    def __init__(self, address):
        super().__init__(address, SmsHandler)
        self.messages: list[dict] = []

    def stats(self, full: bool = False) -> dict:
        return {**super().stats(), "messages": len(self.messages)}


class SmsHandler(Handler):
    server: SmsServer

    def do_POST(self) -> None:
        if self.control():
            return
        form = {key: values[0] for key, values in parse_qs(self.body().decode()).items()}
        if not self._authorised():
            return self.answer(401, {"code": 20003, "message": "Authenticate", "status": 401})
        with self.server.lock:
            self.server.requests += 1
            fault = self.server.faults.roll()
            self.server.failed += fault is not None
            if fault != "before":
                sid = f"SM{len(self.server.messages):032d}"
                now = email.utils.formatdate(usegmt=True)  # RFC 2822, as Twilio dates
                self.server.messages.append({
                    "sid": sid, "direction": "outbound-api", "to": form.get("To"),
                    "from": form.get("From"), "body": form.get("Body"), "status": "sent",
                    "date_created": now, "date_sent": now})
        if fault is not None:
            return self.answer(503, {"code": 20500, "message": "injected failure", "status": 503})
        self.answer(201, {"sid": sid, "status": "queued"})

    def do_GET(self) -> None:
        if self.control():
            return
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        if parts.path == "/_messages":
            after = int(query.get("after", 0))
            with self.server.lock:
                batch = self.server.messages[after:]
            return self.answer(200, {"messages": batch, "next": after + len(batch)})
        with self.server.lock:
            found = [m for m in self.server.messages if m["to"] == query.get("To")]
        self.answer(200, {"messages": found, "next_page_uri": None})

    def _authorised(self) -> bool:
        expected = base64.b64encode(f"{SMS_ACCOUNT}:{SMS_TOKEN}".encode()).decode()
        return self.headers.get("Authorization") == f"Basic {expected}"


# --- running them -----------------------------------------------------------------------------


def start(server: PeerServer) -> threading.Thread:
    """Serve in a daemon thread (for tests that keep the peers in their own process)."""
    thread = threading.Thread(target=server.serve_forever, name=type(server).__name__, daemon=True)
    thread.start()
    return thread


def sms_settings(port: int) -> dict:
    """The practice's `delivery.sms` block that points at this fake."""
    return {"provider": "twilio", "api_base": f"http://127.0.0.1:{port}", "account_sid": SMS_ACCOUNT,
            "auth_token": SMS_TOKEN, "from": "+15550009999"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ehr-port", type=int, required=True)
    parser.add_argument("--sms-port", type=int, required=True)
    args = parser.parse_args()
    servers = [FhirServer(("127.0.0.1", args.ehr_port)), SmsServer(("127.0.0.1", args.sms_port))]
    for server in servers:
        start(server)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print("peers ready", flush=True)
    stop.wait()
    for server in servers:
        server.shutdown()


if __name__ == "__main__":
    main()

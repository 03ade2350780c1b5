"""pytest-httpserver playing a practice's FHIR R4 server over real HTTP: create (honouring
If-None-Exist), read, search by identifier and update (honouring If-Match, 412 when stale), the
resources kept by the in-memory store (`integrations/ehr/fake.py`, with its planned failures:
an EhrTransientError becomes a 503, an EhrPermanentError its own status). `refuse` makes the
server answer every create of a type with a 4xx OperationOutcome."""

from __future__ import annotations

import json
import re

from werkzeug import Request, Response

from integrations.ehr.errors import EhrConflict, EhrNotFound, EhrPermanentError, EhrTransientError
from integrations.ehr.etags import etag_for
from integrations.ehr.fake import InMemoryEhr

FHIR_JSON = "application/fhir+json"


class FhirHttpServer:
    def __init__(self, httpserver, store: InMemoryEhr, prefix: str = "/fhir"):
        self.store, self.prefix = store, prefix
        self.refusals: dict[str, tuple[int, dict]] = {}
        self.requests: list[tuple[str, str, dict]] = []
        httpserver.expect_request(re.compile(f"^{prefix}/")).respond_with_handler(self._handle)
        self.base_url = httpserver.url_for(prefix)

    def refuse(self, resource_type: str, status: int, diagnostics: str) -> dict:
        outcome = {"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "business-rule", "diagnostics": diagnostics}]}
        self.refusals[resource_type] = (status, outcome)
        return outcome

    def _handle(self, request: Request) -> Response:
        parts = request.path[len(self.prefix) + 1:].split("/")
        self.requests.append((request.method, request.path, dict(request.headers)))
        try:
            return self._route(request, parts)
        except EhrConflict as error:
            return _fhir({"resourceType": "OperationOutcome", "issue": []}, error.status)
        except EhrNotFound:
            return _fhir({"resourceType": "OperationOutcome", "issue": []}, 404)
        except EhrPermanentError as error:
            return _fhir(error.operation_outcome or {"resourceType": "OperationOutcome",
                                                     "issue": []}, error.status)
        except EhrTransientError:
            return Response("unavailable", 503)

    def _route(self, request: Request, parts: list[str]) -> Response:
        resource_type = parts[0]
        if request.method == "POST":
            if resource_type in self.refusals:
                status, outcome = self.refusals[resource_type]
                return _fhir(outcome, status)
            written = self.store.create(json.loads(request.data),
                                        request.headers.get("If-None-Exist"))
            return _fhir(written.resource, 201 if written.created else 200,
                         {"ETag": written.etag})
        if request.method == "PUT":
            written = self.store.update(json.loads(request.data), request.headers.get("If-Match"))
            return _fhir(written.resource, 200, {"ETag": written.etag})
        if len(parts) > 1:
            resource = self.store.read(resource_type, parts[1])
            return _fhir(resource, 200, {"ETag": etag_for(resource["meta"]["versionId"])})
        found = self.store.search(resource_type, dict(request.args))
        return _fhir({"resourceType": "Bundle", "type": "searchset", "total": len(found),
                      "entry": [{"resource": r, "search": {"mode": "match"}} for r in found]})


def _fhir(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status, headers=headers or {}, content_type=FHIR_JSON)

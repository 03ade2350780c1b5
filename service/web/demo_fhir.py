"""A DEMO FHIR R4 endpoint for the embedded demo: shows a newcomer what the service writes back.

Not an EHR and not a FHIR server to rely on: one JSON file per resource version under a
folder, a handful of interactions (create, conditional create, read, version-aware update,
identifier search), synthetic patients for any id, and a DocumentReference's PDF served as
a file to open. Mounted at /demo/fhir by the app.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl

from flask import Blueprint, Response, render_template_string, request, url_for

from integrations.ehr.etags import etag_for, version_from_etag
from integrations.ehr.resources import FHIR_ID, has_identifier

FHIR_JSON = "application/fhir+json"
RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
RESOURCE_ID = re.compile(FHIR_ID)
VERSION_ID = re.compile(r"[0-9]{1,9}")
# Only what the write-back needs; anything else is refused rather than silently ignored.
SEARCH_PARAMS = frozenset({"identifier", "_id"})
IGNORED_SEARCH_PARAMS = frozenset({"_count", "_format", "_pretty", "_summary"})


class DemoStore:
    """Resource versions as files: {root}/{type}/{id}/{version}.json, one lock for all."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self.lock = threading.RLock()

    def versions(self, resource_type: str, resource_id: str) -> list[int]:
        """The stored version numbers of one resource, ascending."""
        folder = self._root / resource_type / resource_id
        if not folder.is_dir():
            return []
        return sorted(int(path.stem) for path in folder.glob("*.json") if path.stem.isdigit())

    def read(self, resource_type: str, resource_id: str, version: int | None = None) -> dict | None:
        """One version (the latest by default), or None."""
        versions = self.versions(resource_type, resource_id)
        if version is None and versions:
            version = versions[-1]
        if version not in versions:
            return None
        path = self._root / resource_type / resource_id / f"{version}.json"
        return json.loads(path.read_text(encoding="utf-8"))

    def write(self, resource: dict) -> dict:
        """Store the next version of a resource; returns it with meta filled in."""
        resource_type, resource_id = resource["resourceType"], resource["id"]
        versions = self.versions(resource_type, resource_id)
        version = (versions[-1] if versions else 0) + 1
        stored = {
            **resource,
            "meta": {
                **(resource.get("meta") or {}),
                "versionId": str(version),
                "lastUpdated": datetime.now(UTC).isoformat(timespec="milliseconds"),
            },
        }
        folder = self._root / resource_type / resource_id
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{version}.json.tmp"
        temporary.write_text(json.dumps(stored, indent=2), encoding="utf-8")
        os.replace(temporary, folder / f"{version}.json")  # readers never see half a file
        return stored

    def current(self, resource_type: str | None = None) -> list[dict]:
        """The latest version of every resource (of one type, or all)."""
        if not self._root.is_dir():
            return []
        folders = [self._root / resource_type] if resource_type else self._root.iterdir()
        found = []
        for type_folder in folders:
            if not type_folder.is_dir() or not RESOURCE_TYPE.fullmatch(type_folder.name):
                continue
            for id_folder in type_folder.iterdir():
                resource = self.read(type_folder.name, id_folder.name)
                if resource is not None:
                    found.append(resource)
        return found

    def search(self, resource_type: str, params: dict[str, str]) -> list[dict]:
        """Current resources of a type matching identifier and/or _id."""
        return [
            resource
            for resource in self.current(resource_type)
            if ("_id" not in params or resource.get("id") == params["_id"])
            and ("identifier" not in params or has_identifier(resource, params["identifier"]))
        ]


def create_demo_fhir_blueprint(store_dir: Path) -> Blueprint:
    """A blueprint serving the demo FHIR endpoint from files under store_dir."""
    store = DemoStore(store_dir)
    bp = Blueprint("demo_fhir", __name__)

    @bp.get("/")
    def index():
        """An HTML page listing what was written, newest first."""
        with store.lock:
            resources = store.current()
            rows = [_index_row(store, resource) for resource in resources]
        rows.sort(key=lambda row: row["updated"], reverse=True)
        return render_template_string(INDEX_TEMPLATE, rows=rows)

    @bp.get("/metadata")
    def metadata():
        """A minimal CapabilityStatement so clients can see what the demo supports."""
        return _fhir(_capability_statement())

    @bp.post("/<resource_type>")
    def create(resource_type: str):
        """Create, or with If-None-Exist return the single existing match."""
        _check_type(resource_type)
        resource = _body(resource_type)
        condition = request.headers.get("If-None-Exist")
        with store.lock:
            if condition:
                matches = store.search(resource_type, _search_params(_parse_query(condition)))
                if len(matches) > 1:
                    raise _Refusal(412, "multiple-matches", "If-None-Exist matched several")
                if matches:
                    return _written(matches[0], status=200)
            resource = {**resource, "id": str(uuid.uuid4())}
            return _written(store.write(resource), status=201)

    @bp.get("/<resource_type>")
    def search(resource_type: str):
        """A searchset Bundle of the matching resources."""
        _check_type(resource_type)
        params = _search_params(request.args.to_dict())
        with store.lock:
            matches = store.search(resource_type, params)
        return _fhir(
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": len(matches),
                "entry": [
                    {
                        "fullUrl": _resource_url(resource),
                        "resource": resource,
                        "search": {"mode": "match"},
                    }
                    for resource in matches
                ],
            }
        )

    @bp.get("/<resource_type>/<resource_id>")
    def read(resource_type: str, resource_id: str):
        """The current version; any Patient id yields a synthetic demo patient."""
        _check_type(resource_type)
        _check_id(resource_id)
        with store.lock:
            resource = store.read(resource_type, resource_id)
        if resource is None and resource_type == "Patient":
            return _fhir(synthetic_patient(resource_id))
        if resource is None:
            raise _Refusal(404, "not-found", f"{resource_type}/{resource_id} is not known")
        return _fhir(resource, headers={"ETag": _etag(resource)})

    @bp.get("/<resource_type>/<resource_id>/_history/<version_id>")
    def read_version(resource_type: str, resource_id: str, version_id: str):
        """One stored version, as raw JSON."""
        _check_type(resource_type)
        _check_id(resource_id)
        if not VERSION_ID.fullmatch(version_id):
            raise _Refusal(404, "not-found", "no such version")
        with store.lock:
            resource = store.read(resource_type, resource_id, int(version_id))
        if resource is None:
            raise _Refusal(404, "not-found", "no such version")
        return _fhir(resource, headers={"ETag": _etag(resource)})

    @bp.get("/DocumentReference/<resource_id>/_history/<version_id>/pdf")
    def document_pdf(resource_id: str, version_id: str):
        """The PDF a DocumentReference version holds, to open in the browser."""
        _check_id(resource_id)
        if not VERSION_ID.fullmatch(version_id):
            raise _Refusal(404, "not-found", "no such version")
        with store.lock:
            resource = store.read("DocumentReference", resource_id, int(version_id))
        if resource is None:
            raise _Refusal(404, "not-found", "no such version")
        return _pdf(resource, f"alliance-report-{resource_id}-v{version_id}.pdf")

    @bp.put("/<resource_type>/<resource_id>")
    def update(resource_type: str, resource_id: str):
        """Store a new version; a stale If-Match is refused with 412."""
        _check_type(resource_type)
        _check_id(resource_id)
        resource = _body(resource_type)
        if resource.get("id") != resource_id:
            raise _Refusal(400, "invalid", "the resource id must match the URL")
        if_match = request.headers.get("If-Match")
        with store.lock:
            existing = store.read(resource_type, resource_id)
            current_version = (existing or {}).get("meta", {}).get("versionId")
            wanted = version_from_etag(if_match)
            if if_match and wanted != current_version:
                raise _Refusal(412, "conflict", f"version is {current_version}, not {wanted}")
            return _written(store.write(resource), status=200 if existing else 201)

    @bp.errorhandler(_Refusal)
    def refused(refusal: _Refusal):
        return _fhir(refusal.outcome(), status=refusal.status)

    return bp


def synthetic_patient(patient_id: str) -> dict:
    """An obviously fictional patient (555-01xx numbers are reserved for fiction)."""
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "meta": {
            "tag": [{"system": "https://alliance-feedback.org/fhir/demo", "code": "synthetic"}]
        },
        "name": [{"use": "usual", "family": "Demo", "given": ["Dana"]}],
        "telecom": [
            {"system": "phone", "value": "+15555550100", "use": "mobile"},
            {"system": "email", "value": "demo.client@example.org"},
        ],
        "communication": [{"language": {"coding": [{"code": "en"}], "text": "English"}}],
    }


class _Refusal(Exception):
    def __init__(self, status: int, code: str, diagnostics: str) -> None:
        super().__init__(diagnostics)
        self.status, self.code, self.diagnostics = status, code, diagnostics

    def outcome(self) -> dict:
        return {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": self.code, "diagnostics": self.diagnostics}],
        }


def _check_type(resource_type: str) -> None:
    if not RESOURCE_TYPE.fullmatch(resource_type):
        raise _Refusal(404, "not-supported", "not a FHIR resource type")


def _check_id(resource_id: str) -> None:
    if not RESOURCE_ID.fullmatch(resource_id):
        raise _Refusal(404, "not-found", "not a FHIR id")


def _body(resource_type: str) -> dict:
    resource = request.get_json(force=True, silent=True)
    if not isinstance(resource, dict):
        raise _Refusal(400, "structure", "the body is not a JSON object")
    if resource.get("resourceType") != resource_type:
        raise _Refusal(400, "invalid", f"the body is not a {resource_type}")
    return resource


def _parse_query(query: str) -> dict[str, str]:
    return dict(parse_qsl(query))


def _search_params(params: dict[str, str]) -> dict[str, str]:
    wanted = {k: v for k, v in params.items() if k not in IGNORED_SEARCH_PARAMS}
    unsupported = set(wanted) - SEARCH_PARAMS
    if unsupported:
        raise _Refusal(400, "not-supported", f"the demo cannot search by {sorted(unsupported)}")
    return wanted


def _etag(resource: dict) -> str:
    return etag_for(resource["meta"]["versionId"])


def _resource_url(resource: dict) -> str:
    return url_for(
        ".read",
        resource_type=resource["resourceType"],
        resource_id=resource["id"],
        _external=True,
    )


def _version_url(resource: dict, version: int | str) -> str:
    return url_for(
        ".read_version",
        resource_type=resource["resourceType"],
        resource_id=resource["id"],
        version_id=str(version),
        _external=True,
    )


def _written(resource: dict, status: int) -> Response:
    headers = {
        "ETag": _etag(resource),
        "Location": _version_url(resource, resource["meta"]["versionId"]),
    }
    return _fhir(resource, status=status, headers=headers)


def _pdf(resource: dict, filename: str) -> Response:
    """The first attachment when it is a PDF given inline (data); refused otherwise."""
    attachment = ((resource.get("content") or [{}])[0] or {}).get("attachment") or {}
    if attachment.get("contentType") != "application/pdf" or not attachment.get("data"):
        raise _Refusal(404, "not-found", "this DocumentReference holds no inline PDF")
    try:
        data = base64.b64decode(attachment["data"], validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise _Refusal(422, "invalid", "the attachment's data is not base64") from None
    return Response(data, content_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{filename}"',
        "X-Content-Type-Options": "nosniff"})


def _fhir(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    return Response(
        json.dumps(body, indent=2), status=status, headers=headers, content_type=FHIR_JSON
    )


def _index_row(store: DemoStore, resource: dict) -> dict:
    versions = store.versions(resource["resourceType"], resource["id"])
    return {
        "type": resource["resourceType"],
        "id": resource["id"],
        "version": resource["meta"]["versionId"],
        "updated": resource["meta"].get("lastUpdated", ""),
        "summary": summarize(resource),
        "links": [(version, _version_url(resource, version)) for version in versions],
        "pdfs": [(version, url_for(".document_pdf", resource_id=resource["id"],
                                   version_id=str(version)))
                 for version in versions] if resource["resourceType"] == "DocumentReference"
        else [],
    }


def summarize(resource: dict) -> str:
    """One line saying what a written resource holds."""
    kind = resource.get("resourceType")
    if kind == "Flag":
        return f"{resource.get('status')}: {(resource.get('code') or {}).get('text', '')}"
    if kind == "Observation":
        value = (resource.get("valueQuantity") or {}).get("value")
        interpretation = [c.get("text", "") for c in resource.get("interpretation") or []]
        parts = [f"{(resource.get('code') or {}).get('text', 'score')}: {value}"]
        return " — ".join(parts + [text for text in interpretation if text])
    if kind == "DocumentReference":
        replaces = [link.get("target", {}).get("reference", "") for link in
                    resource.get("relatesTo") or [] if link.get("code") == "replaces"]
        said = f"{resource.get('status')}: {resource.get('description', '')}"
        return f"{said} (replaces {', '.join(replaces)})" if replaces else said
    if kind == "Task":
        owner = (resource.get("owner") or {}).get("reference") or "no owner"
        return f"{resource.get('status')}: {(resource.get('code') or {}).get('text', '')} ({owner})"
    if kind == "QuestionnaireResponse":
        answers = len(resource.get("item") or [])
        return f"{resource.get('status')}, {answers} answers to {resource.get('questionnaire')}"
    return ""


def _capability_statement() -> dict:
    interactions = [{"code": code} for code in ("read", "vread", "create", "update", "search-type")]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-01-01",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "software": {"name": "alliance-feedback demo FHIR store"},
        "rest": [
            {
                "mode": "server",
                "resource": [
                    {
                        "type": kind,
                        "interaction": interactions,
                        "versioning": "versioned-update",
                        "conditionalCreate": True,
                        "searchParam": [{"name": "identifier", "type": "token"}],
                    }
                    for kind in ("QuestionnaireResponse", "Observation", "Flag",
                                 "DocumentReference", "Task")
                ],
            }
        ],
    }


INDEX_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo FHIR store — alliance-feedback</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1b1b1b; }
.demo { background: #fff4ce; border: 1px solid #e0c060; padding: .75rem 1rem; max-width: 60rem; }
table { border-collapse: collapse; margin-top: 1rem; }
th, td { text-align: left; padding: .4rem .75rem; border-bottom: 1px solid #ddd;
         vertical-align: top; }
code { font-size: .9em; }
td.links { white-space: nowrap; }
</style>
</head>
<body>
<h1>Demo FHIR store</h1>
<p class="demo"><strong>This is a demo, not an EHR.</strong> It shows what alliance-feedback
writes back to a practice's EHR over FHIR R4: a QuestionnaireResponse with the answers, an
Observation with the scores, and for a rupture what the practice's <code>alerts.write</code>
lists: a Flag (set inactive when it is repaired) and a DocumentReference holding a one-page PDF
of the trend (replaced by a new one when it is repaired; open it with the PDF link); and a Task
to the supervisor when an unresolved rupture is not acknowledged in time (completed on
acknowledgment or repair). Patients here are synthetic.</p>
{% if rows %}
<table>
<thead><tr><th scope="col">Type</th><th scope="col">Id</th><th scope="col">Version</th>
<th scope="col">What it says</th><th scope="col">Raw JSON</th></tr></thead>
<tbody>
{% for row in rows %}
<tr>
<td>{{ row.type }}</td>
<td><code>{{ row.id }}</code></td>
<td>{{ row.version }}</td>
<td>{{ row.summary }}</td>
<td class="links">{% for version, link in row.links -%}
<a href="{{ link }}">v{{ version }}</a>{% if not loop.last %}, {% endif %}
{%- endfor %}{% for version, link in row.pdfs %}{% if loop.first %}<br>{% endif %}
<a href="{{ link }}" type="application/pdf">PDF&nbsp;v{{ version }}</a>
{%- if not loop.last %}, {% endif %}
{%- endfor %}</td>
</tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p>Nothing has been written yet. Answer a demo survey and come back.</p>
{% endif %}
</body>
</html>
"""

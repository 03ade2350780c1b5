"""CDS Hooks 2.0 routes (CONTRACT §8.1): discovery, the two hooks, feedback.

Every request, discovery included, is authenticated first (service/clinician/cds_auth.py); the
`aud` it must carry is `{ALLIANCE_PUBLIC_URL}{path}`: the URL the EHR calls, also behind a proxy
(the Host header is not trusted for it). Refusals are 401 problems naming the failed check.
"""

from __future__ import annotations

import json

import structlog
from flask import Blueprint, Response, current_app, jsonify, request
from marshmallow import Schema

from schemas.cds_hooks import FeedbackRequest, HookRequest
from service.clinician.cds_auth import TokenRefused
from service.clinician.cds_service import SERVICES, Caller, CdsHooks
from service.intake.bodies import json_object, load_with
from service.metrics import CDS_REQUESTS
from service.web.problems import PROBLEM_BASE, Problem
from service.web.webhooks import read_door

log = structlog.get_logger(__name__)

EXTENSION = "alliance-cds-hooks"
HOOK_REQUEST, FEEDBACK_REQUEST = HookRequest(), FeedbackRequest()
bp = Blueprint("cds_hooks", __name__)


@bp.record_once
def _install(state) -> None:
    state.app.extensions[EXTENSION] = CdsHooks(state.app.extensions["alliance"])


@bp.get("/cds/<practice_id>/cds-services")
def services_list(practice_id: str):
    """Discovery: the two services, each with a prefetch template for the Patient."""
    return jsonify(_cds().discovery(_caller(practice_id)))


@bp.post("/cds/<practice_id>/cds-services/<service_id>")
def hook(practice_id: str, service_id: str):
    """Cards for `context.patientId`, from stored state."""
    caller = _caller(practice_id)
    hook_name = _service(service_id)
    call = _load(HOOK_REQUEST, "Invalid hook request")
    if call["hook"] != hook_name:
        raise Problem(422, "Invalid hook request", f"{service_id} answers the {hook_name} hook",
                      errors={"hook": f"must be {hook_name} for {service_id}"})
    context = call["context"]
    answer = _cds().cards_for(caller, context["patientId"], context.get("userId"))
    # Said on the request's own log line (ids and indicators only): one line per call.
    structlog.contextvars.bind_contextvars(practice_id=caller.practice.id,
                                          cards=[card["indicator"] for card in answer["cards"]])
    return jsonify(answer)


@bp.post("/cds/<practice_id>/cds-services/<service_id>/feedback")
def feedback(practice_id: str, service_id: str):
    """Stores the feedback; `acknowledged` overrides acknowledge the rupture (CONTRACT §9.1)."""
    caller = _caller(practice_id)
    _service(service_id)
    body = _load(FEEDBACK_REQUEST, "Invalid feedback")
    return jsonify(_cds().record_feedback(caller, service_id, body["feedback"]))


@bp.errorhandler(TokenRefused)
def _refused(refused: TokenRefused):
    CDS_REQUESTS.labels(request.endpoint or "?", refused.check).inc()
    log.info("cds request refused", endpoint=request.endpoint, check=refused.check)
    return _token_problem(refused)


@bp.after_request
def _cors(response: Response) -> Response:
    if response.status_code != 401:
        outcome = "ok" if response.status_code == 200 else str(response.status_code)
        CDS_REQUESTS.labels(request.endpoint or "?", outcome).inc()
    # Browser-based CDS clients (the CDS Hooks sandbox) need CORS; no cookies are involved,
    # every request carries its own bearer token.
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    return response


def _token_problem(refused: TokenRefused) -> Response:
    """401 problem naming the failed check, with the WWW-Authenticate header of RFC 6750."""
    body = {"type": PROBLEM_BASE + "cds-token-refused", "title": "Token refused", "status": 401,
            "detail": f"{refused.check}: {refused.detail}", "check": refused.check}
    return Response(json.dumps(body), status=401, mimetype="application/problem+json",
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def _cds() -> CdsHooks:
    return current_app.extensions[EXTENSION]


def _caller(practice_id: str) -> Caller:
    """Authenticate the request (TokenRefused becomes a 401 problem, see `_refused`)."""
    settings = current_app.extensions["alliance"].settings
    return _cds().authenticate(practice_id, request.headers.get("Authorization"),
                               settings.public_url + request.path)


def _service(service_id: str) -> str:
    if service_id not in SERVICES:
        raise Problem(404, "Unknown service",
                      f"this CDS service base offers {', '.join(sorted(SERVICES))}")
    return SERVICES[service_id]


def _load(schema: Schema, title: str) -> dict:
    """The JSON object the schema loads, or a problem naming what is wrong (as every door)."""
    if request.mimetype != "application/json":
        raise Problem(415, "Unsupported media type",
                      f"send the body as application/json, not {request.mimetype or 'nothing'}")
    return read_door(lambda: load_with(schema, json_object(request.get_data())),
                     {"unparseable": (400, "Unparseable body"), "invalid": (422, title)})

"""GET /openapi.json: OpenAPI 3.1 covering every JSON endpoint of the app, and a schemathesis
run against it (on SQLite and PostgreSQL) that must find no server error and no answer the
document does not describe."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import schemathesis
from cds_support import ISS, client_key, save_practice
from healthie_support import healthie_practice, signed
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.clinician.cds_client import sign_cds_jwt
from service.demo import session_completed, signed_event
from service.web import create_app
from service.web.openapi import openapi_document
from service.web.webhooks import SIGNATURE_CLOCK
from support import DEMO_SECRET

# Pages for people, the static files behind them and the demo EHR are not part of the JSON API,
# nor the SMART app's launch, callback and HTML view (pages in the EHR's frame).
# Pages (HTML, forms in the EHR's frame), not API: the survey page, the SMART app and its forms.
NOT_API = re.compile(r"^/(s/|static/|demo/|smart/<practice_id>/(launch|callback|view"
                     r"|rupture/<episode_id>/(acknowledge|snooze))$)")
FHIR_TOKEN = "channel-token-0123456789"
HL7_ACK_ROUTES = {"/webhooks/{practice_id}/hl7v2"}
HEALTHIE_PRACTICE = "northside-healthie"


@pytest.fixture
def app(services, practice, clock):
    save_practice(services)  # northside, with a CDS Hooks client
    from service import practices

    # A Healthie practice too, so signed Healthie bodies reach the parser.
    document = practices.validate_document(healthie_practice("https://api.healthie.test/graphql",
                                                             id=HEALTHIE_PRACTICE))
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=services.clock())
    app = create_app(services=services)
    app.config[SIGNATURE_CLOCK] = clock
    return app


def spec_paths(document: dict) -> dict[str, set[str]]:
    return {path: {method.upper() for method in item if method != "parameters"}
            for path, item in document["paths"].items()}


def app_routes(app) -> dict[str, set[str]]:
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if NOT_API.match(rule.rule):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        routes.setdefault(path, set()).update(rule.methods - {"HEAD", "OPTIONS"})
    return routes


def test_the_document_is_openapi_3_1_from_the_marshmallow_schemas(app):
    answer = app.test_client().get("/openapi.json")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    document = answer.get_json()
    assert document["openapi"] == "3.1.0"
    schemas = document["components"]["schemas"]
    assert {"NativeEvent", "SessionData", "Contact", "EventAccepted", "NotificationAnswer", "Problem",
            "SurveyView", "AnswersRequest"} <= set(schemas)
    assert set(schemas["SessionData"]["required"]) == {"session_id", "patient_id"}


def test_every_json_route_is_in_the_document_and_every_documented_route_exists(app):
    document = app.test_client().get("/openapi.json").get_json()
    assert app_routes(app) == spec_paths(document)


def test_every_documented_error_is_problem_json(app):
    document = app.test_client().get("/openapi.json").get_json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for status, response in operation["responses"].items():
                if path in HL7_ACK_ROUTES and status != "405":
                    # HL7 over HTTP: every message gets its ACK, refusals included.
                    assert list(response["content"]) == ["x-application/hl7-v2+er7"], (path, status)
                elif status.startswith(("4", "5")) and "503" != status:
                    assert list(response["content"]) == ["application/problem+json"], (path, method, status)


# --- schemathesis ---------------------------------------------------------------------------


@pytest.fixture
def survey_token(app, clock, run_due, channels) -> str:
    """A live survey link, so generated requests also reach the survey API's success paths."""
    body, headers = signed_event(DEMO_SECRET, session_completed("enc-api", "pat-api", phone="+15551234567"),
                                 when=clock.now)
    assert app.test_client().post("/webhooks/northside/events", data=body, headers=headers).status_code == 202
    run_due()
    return channels["sms"].sent[-1].link.rsplit("/s/", 1)[1]


@pytest.fixture
def api_key(services, practice) -> str:
    """A live key of the practice, so generated requests also reach the alerts API's answers."""
    from service import api_keys

    with services.engine.begin() as conn:
        return api_keys.create(conn, "northside", services.clock()).key


# Every operation with valid input; those that take a body also with invalid bodies (a path
# or header of type string leaves nothing to make invalid).
OPERATIONS = [
    (method.upper(), path, mode)
    for path, item in openapi_document()["paths"].items()
    for method, operation in item.items() if method != "parameters"
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or "requestBody" in operation
]


def _steer(case, survey_token: str, clock, api_key: str) -> dict:
    """Point about half the generated requests at real data and sign them, so they get past the
    404 and 401 checks into parsing, validation and storage; the rest stay as generated."""
    parameters = case.path_parameters or {}
    drawn = hashlib.sha256(repr((sorted(parameters.items()), case.body)).encode()).digest()
    if drawn[0] % 2:
        return {}
    if "token" in parameters:
        parameters["token"] = survey_token
    if "practice_id" in parameters:
        parameters["practice_id"] = "northside"
    if case.path == "/webhooks/{practice_id}/events" and isinstance(case.body, (dict, list, str, int, float, bool)):
        body, headers = signed_event(DEMO_SECRET, case.body, when=clock.now,
                                     msg_id=(case.headers or {}).get("webhook-id") or None)
        return {"data": body, "headers": {k: v for k, v in headers.items() if k != "content-type"}}
    if case.path == "/webhooks/{practice_id}/fhir":
        return {"headers": {"Authorization": f"Bearer {FHIR_TOKEN}"}}
    if case.path == "/api/v1/practices/{practice_id}/alerts":
        return {"headers": {"Authorization": f"Bearer {api_key}"}}
    if case.path == "/webhooks/{practice_id}/healthie" and isinstance(
            case.body, (dict, list, str, int, float, bool)):
        parameters["practice_id"] = HEALTHIE_PRACTICE
        path = f"/webhooks/{HEALTHIE_PRACTICE}/healthie"
        body, headers = signed(json.dumps(case.body).encode(), path)
        return {"data": body, "headers": {k: v for k, v in headers.items() if k != "Content-Type"}}
    if case.path.startswith("/cds/"):
        url = "https://surveys.test" + case.formatted_path
        token = sign_cds_jwt(client_key("ES384"), iss=ISS, aud=url, now=clock.now)
        return {"headers": {"Authorization": f"Bearer {token}"}}
    return {}


@pytest.mark.parametrize("method, path, mode", OPERATIONS, ids=[f"{m} {p} {g.value}" for m, p, g in OPERATIONS])
def test_generated_requests_find_no_server_error(app, survey_token, api_key, clock, method, path,
                                                 mode):
    operation = schemathesis.openapi.from_wsgi("/openapi.json", app)[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def exercise(case):
        case.call_and_validate(
            checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                    response_schema_conformance],
            **_steer(case, survey_token, clock, api_key))

    exercise()

"""OpenAPI 3.1 of every JSON endpoint, generated from the marshmallow schemas with apispec.

HTML pages (`/s/…`) and the demo FHIR server (`/demo/…`) are not part of the API.
"""

from __future__ import annotations

from functools import lru_cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from schemas.alerts import Alert, AlertsPage
from schemas.cds_hooks import (
    Cards,
    Discovery,
    FeedbackRequest,
    FeedbackStored,
    HookRequest,
    TokenProblem,
)
from schemas.events import (
    EventAccepted,
    EventOutcome,
    NativeEvent,
    NotificationAnswer,
    Problem,
    SessionCompletedEvent,
)
from schemas.healthie import HealthieWebhook
from schemas.ops import Health, Readiness
from schemas.surveys import AnswersRequest, ResponseAccepted, SurveyView
from schemas.trend import TrendView
from service.clinician.cds_service import SERVICES as CDS_SERVICES

SCHEMAS = {
    "Problem": Problem, "NativeEvent": NativeEvent, "SessionCompletedEvent": SessionCompletedEvent,
    "EventOutcome": EventOutcome, "EventAccepted": EventAccepted,
    "NotificationAnswer": NotificationAnswer, "SurveyView": SurveyView,
    "AnswersRequest": AnswersRequest, "ResponseAccepted": ResponseAccepted,
    "Health": Health, "Readiness": Readiness, "Alert": Alert, "AlertsPage": AlertsPage,
    "TrendView": TrendView,
    "HealthieWebhook": HealthieWebhook,
    "CdsDiscovery": Discovery, "CdsHookRequest": HookRequest, "CdsCards": Cards,
    "CdsFeedbackRequest": FeedbackRequest, "CdsFeedbackStored": FeedbackStored,
    "CdsTokenProblem": TokenProblem,
}
PRACTICE = {"name": "practice_id", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "the practice's id, as in its document"}
TOKEN = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"},
         "description": "the token of the survey link"}
SIGNATURE_HEADERS = [
    {"name": "webhook-id", "in": "header", "required": True, "schema": {"type": "string"},
     "description": "unique per delivery; a repeat is answered as a duplicate"},
    {"name": "webhook-timestamp", "in": "header", "required": True, "schema": {"type": "string"},
     "description": "Unix time in seconds; refused more than 5 minutes from our clock"},
    {"name": "webhook-signature", "in": "header", "required": True, "schema": {"type": "string"},
     "description": "space-separated 'v1,<base64 HMAC-SHA256>' of '{id}.{timestamp}.{body}'"},
]


def _problem(description: str) -> dict:
    return {"description": description,
            "content": {"application/problem+json": {"schema": "Problem"}}}


def _problems(*pairs: tuple[str, str]) -> dict:
    return {code: _problem(text) for code, text in pairs}


def _json(schema: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _native_events(spec: APISpec) -> None:
    body = {"oneOf": [{"$ref": "#/components/schemas/SessionCompletedEvent"},
                      {"$ref": "#/components/schemas/NativeEvent"}]}
    spec.path("/webhooks/{practice_id}/events", parameters=[PRACTICE], operations={"post": {
        "summary": "A signed native event (Standard Webhooks)",
        "description": "Stored durably before the answer; "
                       "a survey follows for a completed session.",
        "parameters": SIGNATURE_HEADERS,
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {
            "202": _json("EventAccepted", "stored; a survey follows if it is a completed session"),
            "200": _json("EventAccepted", "a duplicate delivery or session: nothing new happens"),
            **_problems(("400", "unparseable body or webhook-id"),
                        ("401", "missing, malformed, wrong or expired signature; an unknown "
                                "practice gets the same answer"), ("405", "only POST"),
                        ("413", "body over 256 KiB"), ("415", "not application/json"),
                        ("422", "invalid fields, each named in `errors`"))}}})


def _fhir_notifications(spec: APISpec) -> None:
    spec.path("/webhooks/{practice_id}/fhir", parameters=[PRACTICE], operations={"post": {
        "summary": "A FHIR R4 Subscriptions Backport notification Bundle",
        "description": "Parameters or SubscriptionStatus flavour, full-resource or id-only; "
                       "handshakes and heartbeats are answered without side effects.",
        "security": [{"channelToken": []}, {"hubSignature": []}],
        "requestBody": {"required": True, "content": {
            media: {"schema": {"type": "object", "description": "a FHIR Bundle"}}
            for media in ("application/fhir+json", "application/json")}},
        "responses": {
            "202": _json("NotificationAnswer", "stored; surveys follow for completed sessions"),
            "200": _json("NotificationAnswer", "a handshake, a heartbeat, or only duplicates"),
            **_problems(("400", "not JSON"),
                        ("401", "bad channel token or X-Hub-Signature; an unknown practice gets "
                                "the same answer"), ("405", "only POST"),
                        ("413", "body over 256 KiB"), ("415", "not FHIR JSON"),
                        ("422", "not a notification Bundle"))}}})


def _hl7v2(spec: APISpec) -> None:
    er7 = {"type": "string", "description": "one HL7 v2 message, segments separated by CR"}
    acks = {"x-application/hl7-v2+er7": {"schema": {
        "type": "string", "description": "an HL7 ACK: MSH, MSA (and ERR for an AE)"}}}

    def ack(text: str) -> dict:
        return {"description": text, "content": acks}

    spec.path("/webhooks/{practice_id}/hl7v2", parameters=[PRACTICE], operations={"post": {
        "summary": "One HL7 v2 message (ER7), answered with its ACK (HL7 over HTTP)",
        "description": "ADT^A03, or SIU^S12/S14 with SCH-25 Complete, is a completed session; "
                       "other messages are recorded without a survey. MSH-10 identifies the "
                       "delivery: a repeat is acknowledged AA and causes nothing.",
        "security": [{"hl7v2ChannelToken": []}],
        "requestBody": {"required": True, "content": {
            media: {"schema": er7} for media in
            ("x-application/hl7-v2+er7", "application/hl7-v2", "text/plain")}},
        "responses": {
            "200": ack("AA: stored (or a duplicate, or recorded without a survey; MSA-3 says)"),
            "400": ack("AE: the message is malformed; MSA-3 and ERR name the problem"),
            "401": ack("AR: unknown practice or wrong channel token (the same answer for both)"),
            "413": ack("AE: over 256 KiB"), "415": ack("AE: not an HL7 v2 media type"),
            "503": ack("AR: could not be stored now; send it again"),
            **_problems(("405", "only POST"))}}})


def _healthie(spec: APISpec) -> None:
    text = {"in": "header", "required": True, "schema": {"type": "string"}}
    spec.path("/webhooks/{practice_id}/healthie", parameters=[PRACTICE], operations={"post": {
        "summary": "A signed Healthie webhook (thin: the worker reads the appointment)",
        "description": "Signed as Healthie signs (docs/integrations.md): Content-Digest is checked "
                       "against the raw body, then Signature, an HMAC-SHA256 keyed with "
                       "healthie.webhook_secret. An unknown practice is refused as a bad "
                       "signature.",
        "parameters": [
            {"name": "Content-Digest", **text, "description": "sha-256 of the raw body: "
             "'sha-256=:<base64>:' (RFC 9530) or 'SHA-256=<base64 or hex>'"},
            {"name": "Signature-Input", **text, "description": "the signed components; a repeat "
             "of the same Signature-Input and body is answered as a duplicate"},
            {"name": "Signature", **text, "description": "'sig1=<hex HMAC-SHA256>' of "
             "'<method> <path> <query> <digest> application/json <length>'"}],
        "requestBody": {"required": True,
                        "content": {"application/json": {"schema": "HealthieWebhook"}}},
        "responses": {
            "202": _json("EventAccepted", "stored; the worker reads the appointment"),
            "200": _json("EventAccepted", "a repeated delivery: nothing new happens"),
            **_problems(("400", "unparseable body"),
                        ("401", "missing or malformed headers, a digest that does not match the "
                                "body, a wrong signature, or an unknown practice"),
                        ("405", "only POST"), ("413", "body over 256 KiB"),
                        ("415", "not application/json"),
                        ("422", "invalid fields, each named in `errors`"))}}})


def _sms_inbound(spec: APISpec) -> None:
    form = {"type": "object",
            "properties": {"From": {"type": "string"}, "Body": {"type": "string"}},
            "additionalProperties": {"type": "string"}}
    spec.path("/webhooks/{practice_id}/sms/inbound", parameters=[PRACTICE], operations={"post": {
        "summary": "Inbound SMS from the provider (Twilio): STOP opts out, START opts back in",
        "parameters": [{"name": "X-Twilio-Signature", "in": "header", "required": True,
                        "schema": {"type": "string"}}],
        "requestBody": {"required": True,
                        "content": {"application/x-www-form-urlencoded": {"schema": form}}},
        "responses": {
            "200": {"description": "empty TwiML",
                    "content": {"text/xml": {"schema": {"type": "string"}}}},
            **_problems(("401", "bad X-Twilio-Signature; an unknown practice gets the same "
                                "answer"), ("405", "only POST"))}}})


def _surveys(spec: APISpec) -> None:
    unavailable = (("404", "unknown or forged link"), ("409", "already answered"),
                   ("410", "expired or closed"),
                   ("429", "over 10 requests a minute for one link from one address; "
                           "see Retry-After"))
    spec.path("/api/v1/surveys/{token}", parameters=[TOKEN], operations={"get": {
        "summary": "The survey's items",
        "responses": {"200": _json("SurveyView", "the items to ask"), **_problems(*unavailable)}}})
    spec.path("/api/v1/surveys/{token}/response", parameters=[TOKEN], operations={"post": {
        "summary": "Answer the survey",
        "requestBody": {"required": True,
                        "content": {"application/json": {"schema": "AnswersRequest"}}},
        "responses": {"201": _json("ResponseAccepted", "stored and scored"),
                      **_problems(*unavailable,
                                  ("422", "invalid answers, each item named in `errors`"))}}})


def _alerts(spec: APISpec) -> None:
    from schemas.alerts import AlertsQuery

    spec.path("/api/v1/practices/{practice_id}/alerts", parameters=[PRACTICE], operations={"get": {
        "summary": "The practice's open alliance ruptures, and those closed since `since`",
        "description": "For the practice's own software (the Canvas plugin's banners): ids and "
                       "plain words only, no contact data. Ordered by id; paged with `cursor`.",
        "security": [{"practiceApiKey": []}],
        "parameters": [{"in": "query", "schema": AlertsQuery}],
        "responses": {
            "200": _json("AlertsPage", "one page of alerts"),
            **_problems(("401", "no live API key of this practice (also for an unknown practice)"),
                        ("405", "only GET"),
                        ("422", "invalid query parameters, each named in `errors`"))}}})


def _smart_trend(spec: APISpec) -> None:
    # The launch, the callback, the HTML view and its acknowledge / snooze forms (single-use
    # tokens, answered with a redirect or an HTML page) are pages in the EHR's frame, not API.
    spec.path("/smart/{practice_id}/view.json", parameters=[PRACTICE], operations={"get": {
        "summary": "The SMART launch patient's alliance trend (CONTRACT §8.2), and what was "
                   "done about its open rupture (§9.1)",
        "description": "Needs the session cookie of a SMART launch; takes no query parameter "
                       "(`done` only names the view's status message). The open rupture "
                       "carries its actions: acknowledgments (from the view or CDS Hooks "
                       "feedback), snoozes and escalations, with the notes opened.",
        "responses": {"200": _json("TrendView", "the trend of the launch patient"),
                      **_problems(("400", "a query parameter (the patient is the launch's)"),
                                  ("401", "no SMART session for this practice"),
                                  ("404", "no SMART app under this practice id"))}}})


CDS_SERVICE = {"name": "service_id", "in": "path", "required": True,
               "schema": {"type": "string", "enum": sorted(CDS_SERVICES)},
               "description": "a service of the discovery answer"}
CDS_REFUSED = {"description": "the bearer JWT was refused; `check` names the failed check "
                              "(an unknown practice is refused as an unregistered iss)",
               "content": {"application/problem+json": {"schema": "CdsTokenProblem"}}}


def _cds_hooks(spec: APISpec) -> None:
    security = [{"cdsClientJwt": []}]
    spec.path("/cds/{practice_id}/cds-services", parameters=[PRACTICE], operations={"get": {
        "summary": "CDS Hooks discovery: the services for patient-view and encounter-start",
        "security": security,
        "responses": {"200": _json("CdsDiscovery", "the services"), "401": CDS_REFUSED,
                      **_problems(("405", "only GET"))}}})
    spec.path("/cds/{practice_id}/cds-services/{service_id}", parameters=[PRACTICE, CDS_SERVICE],
              operations={"post": {
                  "summary": "Cards for context.patientId, from stored state (no EHR call)",
                  "security": security,
                  "requestBody": {"required": True, "content": {
                      "application/json": {"schema": "CdsHookRequest"}}},
                  "responses": {
                      "200": _json("CdsCards", "zero or one card"), "401": CDS_REFUSED,
                      **_problems(("400", "not JSON"), ("404", "unknown service"),
                                  ("405", "only POST"), ("413", "body over 1 MiB"),
                                  ("415", "not application/json"),
                                  ("422", "invalid fields, each named in `errors`"))}}})
    spec.path("/cds/{practice_id}/cds-services/{service_id}/feedback",
              parameters=[PRACTICE, CDS_SERVICE], operations={"post": {
                  "summary": "Feedback on cards; `acknowledged` acknowledges the rupture",
                  "security": security,
                  "requestBody": {"required": True, "content": {
                      "application/json": {"schema": "CdsFeedbackRequest"}}},
                  "responses": {
                      "200": _json("CdsFeedbackStored", "stored"), "401": CDS_REFUSED,
                      **_problems(("400", "not JSON"), ("404", "unknown service"),
                                  ("405", "only POST"), ("413", "body over 1 MiB"),
                                  ("415", "not application/json"),
                                  ("422", "invalid fields, each named in `errors`"))}}})


def _operations(spec: APISpec) -> None:
    spec.path("/healthz", operations={"get": {
        "summary": "The process is up", "responses": {"200": _json("Health", "up")}}})
    spec.path("/readyz", operations={"get": {
        "summary": "The database and the broker are reachable",
        "responses": {"200": _json("Readiness", "ready"), "503": _json("Readiness", "not ready")}}})
    spec.path("/metrics", operations={"get": {
        "summary": "Prometheus metrics",
        "responses": {"200": {"description": "text exposition format",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}}}})
    spec.path("/openapi.json", operations={"get": {
        "summary": "This document",
        "responses": {"200": {"description": "OpenAPI 3.1",
                              "content": {"application/json": {"schema": {"type": "object"}}}}}}})


@lru_cache(maxsize=1)
def openapi_document() -> dict:
    """The OpenAPI 3.1 document served at /openapi.json."""
    spec = APISpec(title="alliance-feedback", version="0.1.0", openapi_version="3.1.0",
                   plugins=[MarshmallowPlugin()],
                   info={"description": "Therapeutic-alliance feedback: webhooks in, surveys, "
                                        "FHIR write-back. Errors are RFC 9457 problem details."})
    for name, schema in SCHEMAS.items():
        spec.components.schema(name, schema=schema)
    spec.components.security_scheme("channelToken", {
        "type": "http", "scheme": "bearer",
        "description": "the practice's fhir_notifications.channel_token "
                       "(the Subscription's channel header)"})
    spec.components.security_scheme("hubSignature", {
        "type": "apiKey", "in": "header", "name": "X-Hub-Signature",
        "description": "'sha256=' hex HMAC-SHA256 of the raw body "
                       "keyed with fhir_notifications.hub_secret"})
    spec.components.security_scheme("hl7v2ChannelToken", {
        "type": "http", "scheme": "bearer", "description": "the practice's hl7v2.channel_token"})
    spec.components.security_scheme("practiceApiKey", {
        "type": "http", "scheme": "bearer",
        "description": "a practice API key from `alliance practice api-key create PRACTICE`"})
    spec.components.security_scheme("cdsClientJwt", {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "CDS Hooks 2.0 client JWT: RS384 or ES384, kid in the client's JWK Set, "
                       "aud the exact URL called, fresh jti (see docs/clinician-view.md)"})
    for add in (_native_events, _fhir_notifications, _hl7v2, _healthie, _sms_inbound, _surveys,
                _alerts, _smart_trend, _cds_hooks, _operations):
        add(spec)
    return spec.to_dict()

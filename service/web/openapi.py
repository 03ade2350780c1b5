"""OpenAPI 3.1 generated from the marshmallow schemas with apispec."""

from __future__ import annotations

from functools import lru_cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from schemas.events import EventAccepted, NativeEvent, Problem
from schemas.surveys import AnswersRequest, ResponseAccepted, SurveyView


def _problem(description: str) -> dict:
    return {"description": description,
            "content": {"application/problem+json": {"schema": "Problem"}}}


def _json(schema: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


PRACTICE = {"name": "practice_id", "in": "path", "required": True, "schema": {"type": "string"}}
TOKEN = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
SIGNATURE_HEADERS = [
    {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
]


@lru_cache(maxsize=1)
def openapi_document() -> dict:
    spec = APISpec(title="alliance-feedback", version="0.1.0", openapi_version="3.1.0",
                   plugins=[MarshmallowPlugin()],
                   info={"description": "Therapeutic-alliance feedback: webhooks in, surveys, FHIR write-back."})
    for name, schema in (("Problem", Problem), ("NativeEvent", NativeEvent),
                         ("EventAccepted", EventAccepted), ("SurveyView", SurveyView),
                         ("AnswersRequest", AnswersRequest), ("ResponseAccepted", ResponseAccepted)):
        spec.components.schema(name, schema=schema)
    spec.path("/webhooks/{practice_id}/events", parameters=[PRACTICE], operations={"post": {
        "summary": "A signed native event (Standard Webhooks)",
        "parameters": SIGNATURE_HEADERS,
        "requestBody": {"required": True, "content": {"application/json": {"schema": "NativeEvent"}}},
        "responses": {"202": _json("EventAccepted", "stored; a survey follows if it is a completed session"),
                      "200": _json("EventAccepted", "a duplicate: nothing new happens"),
                      **{code: _problem(text) for code, text in (
                          ("400", "unparseable"), ("401", "missing, bad or expired signature"),
                          ("404", "unknown practice"), ("413", "body over 256 KiB"),
                          ("415", "not JSON"), ("422", "invalid fields"))}}}})
    spec.path("/webhooks/{practice_id}/fhir", parameters=[PRACTICE], operations={"post": {
        "summary": "A FHIR R4 Subscriptions Backport notification Bundle",
        "requestBody": {"required": True, "content": {"application/fhir+json": {"schema": {"type": "object"}}}},
        "responses": {"200": {"description": "handshake, heartbeat, or a duplicate"},
                      "202": {"description": "stored"},
                      **{code: _problem(text) for code, text in (
                          ("400", "unparseable"), ("401", "bad channel token or X-Hub-Signature"),
                          ("404", "unknown practice"), ("413", "body over 256 KiB"),
                          ("415", "not FHIR JSON"), ("422", "not a notification Bundle"))}}}})
    spec.path("/api/v1/surveys/{token}", parameters=[TOKEN], operations={"get": {
        "summary": "The survey's items",
        "responses": {"200": _json("SurveyView", "the items to ask"),
                      "404": _problem("unknown or forged link"), "409": _problem("already answered"),
                      "410": _problem("expired or closed")}}})
    spec.path("/api/v1/surveys/{token}/response", parameters=[TOKEN], operations={"post": {
        "summary": "Answer the survey",
        "requestBody": {"required": True, "content": {"application/json": {"schema": "AnswersRequest"}}},
        "responses": {"201": _json("ResponseAccepted", "stored and scored"),
                      "404": _problem("unknown or forged link"), "409": _problem("already answered"),
                      "410": _problem("expired or closed"), "422": _problem("invalid answers, named per item")}}})
    for path, summary in (("/healthz", "process up"), ("/readyz", "database and broker reachable")):
        spec.path(path, operations={"get": {"summary": summary, "responses": {
            "200": {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}},
            **({"503": {"description": "not ready"}} if path == "/readyz" else {})}}})
    return spec.to_dict()

"""Healthie's GraphQL API over requests (docs.gethealthie.com/reference; field names as documented).

Authentication is the API key as `Authorization: Basic <key>` with `AuthorizationSource: API`
(Healthie's API guide; metriport/metriport@c6751a3 packages/core/src/external/ehr/healthie).
GraphQL reports failures in the body of an HTTP 200 (`errors`), and Healthie's mutations also
return validation problems as `messages`; both are mapped onto the EHR error classes, as HTTP
failures are: retry what may pass later, dead-letter what will not.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from integrations.ehr.errors import (
    EhrAuthError,
    EhrError,
    EhrNotFound,
    EhrPermanentError,
    EhrTransientError,
    refused_destination,
)
from integrations.ehr.fhir_client import error_for_response
from integrations.http import DEFAULT_TIMEOUT, TRANSPORT_FAILURES, build_session
from integrations.network import DestinationRefused
from integrations.settings import PUBLIC_ONLY, NetworkSettings

APPOINTMENT = """
query allianceAppointment($id: ID) {
  appointment(id: $id) {
    id pm_status date length deleted_at
    user { id email phone_number }
    attendees { id email phone_number }
    provider { id }
  }
}"""
FORM_ANSWER_GROUP = """
query allianceFormAnswerGroup($external_id: ID) {
  formAnswerGroup(external_id: $external_id) { id external_id }
}"""
CREATE_FORM_ANSWER_GROUP = """
mutation allianceCreateFormAnswerGroup($input: createFormAnswerGroupInput) {
  createFormAnswerGroup(input: $input) { form_answer_group { id } messages { field message } }
}"""
CARE_ALERTS = """
query allianceCareAlerts($patient_id: ID, $after: String) {
  careAlerts(patient_id: $patient_id, is_deleted: false, is_expired: false, first: 100,
             after: $after) {
    nodes { id content }
    page_info { has_next_page end_cursor }
  }
}"""
CREATE_CARE_ALERT = """
mutation allianceCreateCareAlert($input: CreateCareAlertInput!) {
  createCareAlert(input: $input) { care_alert { id } messages { field message } }
}"""
UPDATE_CARE_ALERT = """
mutation allianceUpdateCareAlert($input: UpdateCareAlertInput!) {
  updateCareAlert(input: $input) { care_alert { id } messages { field message } }
}"""
DELETE_CARE_ALERT = """
mutation allianceDeleteCareAlert($input: DeleteCareAlertInput!) {
  deleteCareAlert(input: $input) { care_alert { id } messages { field message } }
}"""

# extensions.code values that say "try again later"; anything else is a refusal.
TRANSIENT_CODES = {
    "INTERNAL_SERVER_ERROR",
    "SERVICE_UNAVAILABLE",
    "TIMEOUT",
    "RATE_LIMITED",
    "THROTTLED",
    "TOO_MANY_REQUESTS",
}
AUTH_CODES = {"UNAUTHENTICATED", "UNAUTHORIZED", "FORBIDDEN"}
MAX_PAGES = 20


class HealthieGraphqlClient:
    """HealthieApi over HTTP."""

    def __init__(
        self,
        api_url: str,
        api_key: str,
        session: requests.Session | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.time,
        network: NetworkSettings = PUBLIC_ONLY,
    ) -> None:
        self._url = api_url
        self._session = session or build_session(timeout, network=network)
        self._session.headers.update(
            {"Authorization": f"Basic {api_key}", "AuthorizationSource": "API"}
        )
        self._timeout = timeout
        self._clock = clock

    def appointment(self, appointment_id: str) -> dict | None:
        """The appointment, or None when Healthie does not have it."""
        try:
            data = self.execute("allianceAppointment", APPOINTMENT, {"id": appointment_id})
        except EhrNotFound:
            return None
        return data.get("appointment")

    def form_answer_group_id(self, external_id: str) -> str | None:
        """The form answer group with this external_id, or None."""
        try:
            data = self.execute(
                "allianceFormAnswerGroup", FORM_ANSWER_GROUP, {"external_id": external_id}
            )
        except EhrNotFound:
            return None
        found = data.get("formAnswerGroup")
        return str(found["id"]) if found and found.get("id") else None

    def create_form_answer_group(self, fields: dict) -> str:
        """createFormAnswerGroup; returns the new id."""
        payload = self._mutate(
            "allianceCreateFormAnswerGroup",
            CREATE_FORM_ANSWER_GROUP,
            "createFormAnswerGroup",
            fields,
        )
        return _created_id(payload, "form_answer_group", "createFormAnswerGroup")

    def active_care_alerts(self, patient_id: str) -> list[dict]:
        """Every page of the patient's active (not deleted, not expired) care alerts."""
        alerts: list[dict] = []
        after = None
        for _ in range(MAX_PAGES):
            data = self.execute(
                "allianceCareAlerts", CARE_ALERTS, {"patient_id": patient_id, "after": after}
            )
            page = data.get("careAlerts") or {}
            alerts += [node for node in page.get("nodes") or [] if node]
            info = page.get("page_info") or {}
            if not info.get("has_next_page") or not info.get("end_cursor"):
                return alerts
            after = info["end_cursor"]
        return alerts

    def create_care_alert(self, fields: dict) -> str:
        """createCareAlert; returns the new id."""
        payload = self._mutate(
            "allianceCreateCareAlert", CREATE_CARE_ALERT, "createCareAlert", fields
        )
        return _created_id(payload, "care_alert", "createCareAlert")

    def update_care_alert(self, fields: dict) -> None:
        """updateCareAlert."""
        self._mutate("allianceUpdateCareAlert", UPDATE_CARE_ALERT, "updateCareAlert", fields)

    def delete_care_alert(self, alert_id: str) -> None:
        """deleteCareAlert."""
        self._mutate(
            "allianceDeleteCareAlert", DELETE_CARE_ALERT, "deleteCareAlert", {"id": alert_id}
        )

    def _mutate(self, operation: str, document: str, field: str, fields: dict) -> dict:
        payload = self.execute(operation, document, {"input": fields}).get(field)
        if payload is None:
            raise EhrPermanentError(f"Healthie {field} returned nothing", 200)
        problems = [m for m in payload.get("messages") or [] if m]
        if problems:
            said = "; ".join(f"{m.get('field') or '(input)'}: {m.get('message')}" for m in problems)
            raise EhrPermanentError(f"Healthie {field} refused: {said[:300]}", 200)
        return payload

    def execute(self, operation: str, document: str, variables: dict) -> dict:
        """POST one operation; its `data`, or the error class that says what to do next."""
        body = {"operationName": operation, "query": document, "variables": variables}
        try:
            response = self._session.post(
                self._url, json=body, timeout=self._timeout, allow_redirects=False
            )
        except TRANSPORT_FAILURES as exc:
            raise EhrTransientError(f"Healthie {operation} failed: {type(exc).__name__}") from exc
        except DestinationRefused as exc:
            raise refused_destination(f"Healthie {operation}", exc) from None
        if not 200 <= response.status_code < 300:
            raise error_for_response(response, f"Healthie {operation}", self._clock())
        try:
            answer = response.json()
        except ValueError:
            raise EhrTransientError(
                f"Healthie {operation} answered {response.status_code} with a body that is not JSON"
            ) from None
        if not isinstance(answer, dict):
            raise EhrTransientError(f"Healthie {operation} answered JSON that is not an object")
        if answer.get("errors"):
            raise graphql_error(answer["errors"], operation, response.status_code)
        return answer.get("data") or {}


def graphql_error(errors, operation: str, status: int) -> EhrError:
    """The error class for a GraphQL `errors` list (HTTP 200, as GraphQL answers)."""
    items = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
    codes = {str((e.get("extensions") or {}).get("code", "")).upper() for e in items}
    said = "; ".join(str(e.get("message", ""))[:200] for e in items) or "an unreadable error"
    message = f"Healthie {operation}: {said}"
    if codes & TRANSIENT_CODES:
        return EhrTransientError(message)
    if codes & AUTH_CODES:
        return EhrAuthError(message, status)
    if "NOT_FOUND" in codes or "not found" in said.lower():
        return EhrNotFound(message, status)
    return EhrPermanentError(message, status)


def _created_id(payload: dict, field: str, mutation: str) -> str:
    created = payload.get(field) or {}
    if not created.get("id"):
        raise EhrPermanentError(f"Healthie {mutation} returned no {field} id", 200)
    return str(created["id"])


def build_healthie_api(section: dict, network: NetworkSettings = PUBLIC_ONLY
                       ) -> HealthieGraphqlClient:
    """The client for a practice's (decrypted) `healthie` section, calling only the addresses
    its `network` settings allow."""
    missing = [name for name in ("api_url", "api_key") if not section.get(name)]
    if missing:
        raise ValueError(f"healthie is missing: {', '.join(missing)}")
    return HealthieGraphqlClient(section["api_url"], section["api_key"], network=network)

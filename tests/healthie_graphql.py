"""A Healthie GraphQL API of the tests' own, for pytest-httpserver.

Not Healthie: a schema built from the documented shapes (docs.gethealthie.com/reference,
versions 2025-01-01 to 2026-01-01: the queries `appointment`, `formAnswerGroup`, `careAlerts`,
the mutations `createFormAnswerGroup`, `createCareAlert`, `updateCareAlert`, `deleteCareAlert`,
their input and payload types, and the fields of Appointment, User, FormAnswerGroup, CareAlert
and PageInfo we use), executed by graphql-core. A query that names a field, argument or type the
documented schema does not have fails validation here, as it would against Healthie.

It checks what every call must carry (`Authorization: Basic <key>`, `AuthorizationSource: API`),
answers errors the GraphQL way (HTTP 200 with `errors`), and keeps its records in memory.
"""

from __future__ import annotations

import itertools
import json
from datetime import date, datetime, timezone

from graphql import build_schema, graphql_sync
from werkzeug import Request, Response

SCHEMA = build_schema("""
scalar ISO8601DateTime
scalar ISO8601Date
scalar Cursor

type Query {
  appointment(id: ID, include_deleted: Boolean): Appointment
  formAnswerGroup(id: ID, external_id: ID, ids: [ID], for_superbills: Boolean,
                  track_opened_event: Boolean): FormAnswerGroup
  careAlerts(patient_id: ID, priority: CareAlertPriorityEnum, is_deleted: Boolean,
             is_expired: Boolean, after: String, before: String, first: Int,
             last: Int): CareAlertPaginationConnection
}

type Mutation {
  createFormAnswerGroup(input: createFormAnswerGroupInput): createFormAnswerGroupPayload
  createCareAlert(input: CreateCareAlertInput!): CreateCareAlertPayload
  updateCareAlert(input: UpdateCareAlertInput!): UpdateCareAlertPayload
  deleteCareAlert(input: DeleteCareAlertInput!): DeleteCareAlertPayload
}

type User {
  id: ID!
  email: String
  phone_number: String
  first_name: String
  timezone: String
}

type Appointment {
  id: ID!
  pm_status: String
  pm_status_changed_at: ISO8601DateTime
  date: ISO8601DateTime
  length: Int
  end: String
  start: String
  deleted_at: ISO8601DateTime
  contact_type: String
  user_id: Int
  user: User
  attendees: [User!]!
  provider: User
  providers: [User!]!
}

type FormAnswerGroup {
  id: ID!
  external_id: String
  finished: Boolean!
  name: String
  user_id: String
}

type FieldError {
  field: String
  message: String!
}

input FormAnswerInput {
  answer: String
  conditional_custom_module_id: ID
  custom_module_id: String
  filter_type: String
  mod_type: String
  metadata: String
  id: ID
  label: String
  user_id: String
  value_to_filter: String
}

input createFormAnswerGroupInput {
  appointment_id: ID
  course_id: ID
  custom_module_form_id: ID
  date: ISO8601DateTime
  external_id: ID
  finished: Boolean
  form_answers: [FormAnswerInput]
  marked_complete: Boolean
  marked_locked: Boolean
  name: String
  metadata: String
  requested_form_completion_id: ID
  user_id: ID
}

type createFormAnswerGroupPayload {
  form_answer_group: FormAnswerGroup
  messages: [FieldError]
}

enum CareAlertPriorityEnum { NORMAL HIGH }

type CareAlert {
  id: ID!
  content: String!
  priority: CareAlertPriorityEnum!
  expires_on: ISO8601Date
  deleted_at: ISO8601DateTime
  created_at: ISO8601DateTime!
  updated_at: ISO8601DateTime!
  patient: User
}

type PageInfo {
  end_cursor: Cursor
  has_next_page: Boolean!
  has_previous_page: Boolean!
  start_cursor: Cursor
}

type CareAlertPaginationConnection {
  nodes: [CareAlert]
  page_info: PageInfo!
  total_count: Int!
}

input CreateCareAlertInput {
  patient_id: ID!
  template_id: ID
  content: String
  priority: CareAlertPriorityEnum
  expires_at: ISO8601DateTime
  expires_on: ISO8601Date
}

input UpdateCareAlertInput {
  id: ID!
  content: String
  priority: CareAlertPriorityEnum
  expires_at: ISO8601DateTime
  expires_on: ISO8601Date
}

input DeleteCareAlertInput { id: ID! }

type CreateCareAlertPayload { care_alert: CareAlert  messages: [FieldError] }
type UpdateCareAlertPayload { care_alert: CareAlert  messages: [FieldError] }
type DeleteCareAlertPayload { care_alert: CareAlert  messages: [FieldError] }
""")


class NotFound(Exception):
    """Answered as a GraphQL error with extensions.code NOT_FOUND."""


class HealthieGraphqlFake:
    """State and resolvers; `handle` is a pytest-httpserver handler."""

    def __init__(self, api_key: str, today=lambda: datetime.now(timezone.utc).date()):
        self.api_key = api_key
        self.today = today
        self.appointments: dict[str, dict] = {}
        self.form_answer_groups: dict[str, dict] = {}
        self.care_alerts: dict[str, dict] = {}
        self.requests: list[dict] = []  # {"operation", "root", "variables", "headers"}
        self.planned: list[tuple[str | None, Response | dict]] = []
        self._ids = itertools.count(5001)

    # --- the HTTP side -------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        body = json.loads(request.get_data(as_text=True))
        self.requests.append(
            {
                "operation": body.get("operationName"),
                "query": body["query"],
                "variables": body.get("variables") or {},
                "headers": dict(request.headers),
            }
        )
        planned = self._planned(body.get("operationName"))
        if planned is not None:
            if isinstance(planned, Response):
                return planned
            return _json({"data": None, "errors": [planned]})
        if (
            request.headers.get("Authorization") != f"Basic {self.api_key}"
            or request.headers.get("AuthorizationSource") != "API"
        ):
            return _json(
                {
                    "data": None,
                    "errors": [
                        {"message": "API key is invalid", "extensions": {"code": "UNAUTHENTICATED"}}
                    ],
                }
            )
        result = graphql_sync(
            SCHEMA,
            body["query"],
            root_value=self,
            variable_values=body.get("variables"),
            operation_name=body.get("operationName"),
        )
        answer = {"data": result.data}
        if result.errors:
            answer["errors"] = [_error(e) for e in result.errors]
        return _json(answer)

    def fail_next(self, error: Response | dict, operation: str | None = None) -> None:
        """Answer the next request (of that operation) with this HTTP response or GraphQL error."""
        self.planned.append((operation, error))

    def _planned(self, operation: str | None):
        for index, (wanted, answer) in enumerate(self.planned):
            if wanted in (None, operation):
                del self.planned[index]
                return answer
        return None

    def operations(self) -> list[str]:
        return [r["operation"] for r in self.requests]

    # --- the resolvers (graphql-core calls root attributes with info and the arguments) ---

    def appointment(self, _info, id=None, include_deleted=None):
        found = self.appointments.get(str(id))
        if found is None or (found.get("deleted_at") and not include_deleted):
            return None
        return {"attendees": [], "providers": [], **found}

    def formAnswerGroup(self, _info, id=None, external_id=None, **_rest):
        for group_id, group in self.form_answer_groups.items():
            if group_id == id or (external_id and group.get("external_id") == external_id):
                return {"id": group_id, **group}
        return None

    def careAlerts(
        self,
        _info,
        patient_id=None,
        is_deleted=False,
        is_expired=False,
        after=None,
        first=None,
        **_rest,
    ):
        matching = [
            {"id": alert_id, **alert}
            for alert_id, alert in self.care_alerts.items()
            if (patient_id is None or alert["patient_id"] == patient_id)
            and bool(alert["deleted_at"]) == bool(is_deleted)
            and self._expired(alert) == bool(is_expired)
        ]
        start = int(after) if after else 0
        page = matching[start : start + (first or 10)]
        more = start + len(page) < len(matching)
        return {
            "nodes": page,
            "total_count": len(matching),
            "page_info": {
                "has_next_page": more,
                "has_previous_page": start > 0,
                "end_cursor": str(start + len(page)) if more else None,
                "start_cursor": str(start),
            },
        }

    def createFormAnswerGroup(self, _info, input=None):
        input = input or {}
        missing = [name for name in ("user_id", "custom_module_form_id") if not input.get(name)]
        if missing:
            return {
                "form_answer_group": None,
                "messages": [{"field": name, "message": "can't be blank"} for name in missing],
            }
        group_id = str(next(self._ids))
        self.form_answer_groups[group_id] = {**input, "finished": bool(input.get("finished"))}
        return {
            "form_answer_group": {"id": group_id, **self.form_answer_groups[group_id]},
            "messages": [],
        }

    def createCareAlert(self, _info, input):
        if not input.get("content") and not input.get("template_id"):
            return {
                "care_alert": None,
                "messages": [{"field": "content", "message": "can't be blank"}],
            }
        alert_id = str(next(self._ids))
        now = datetime.now(timezone.utc).isoformat()
        self.care_alerts[alert_id] = {
            "priority": "NORMAL",
            **input,
            "deleted_at": None,
            "created_at": now,
            "updated_at": now,
        }
        return {"care_alert": {"id": alert_id, **self.care_alerts[alert_id]}, "messages": []}

    def updateCareAlert(self, _info, input):
        alert = self._live_alert(input["id"])
        alert.update({k: v for k, v in input.items() if k != "id"})
        return {"care_alert": {"id": input["id"], **alert}, "messages": []}

    def deleteCareAlert(self, _info, input):
        alert = self._live_alert(input["id"])
        alert["deleted_at"] = datetime.now(timezone.utc).isoformat()
        return {"care_alert": {"id": input["id"], **alert}, "messages": []}

    def active_alerts(self, patient_id: str) -> list[dict]:
        return [
            a
            for a in self.care_alerts.values()
            if a["patient_id"] == patient_id and not a["deleted_at"] and not self._expired(a)
        ]

    def _live_alert(self, alert_id: str) -> dict:
        alert = self.care_alerts.get(str(alert_id))
        if alert is None or alert["deleted_at"]:
            raise NotFound("Care alert not found")
        return alert

    def _expired(self, alert: dict) -> bool:
        return (
            bool(alert.get("expires_on")) and date.fromisoformat(alert["expires_on"]) < self.today()
        )


def _error(error) -> dict:
    code = "NOT_FOUND" if isinstance(error.original_error, NotFound) else None
    answer = {"message": error.message}
    if code:
        answer["extensions"] = {"code": code}
    return answer


def _json(document: dict) -> Response:
    return Response(json.dumps(document), status=200, mimetype="application/json")

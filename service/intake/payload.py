"""The one schema of `webhook_events.payload`: what an arrival's outcome stores for the worker.

    {"version": 2, "outcome": "completed", "session": {"session_id", "patient_id",
     "practitioner_id", "ended_at" (ISO 8601 with zone), "contact": {"phone", "email",
     "locale"} | null, "dedupe_keys": [...]}}
    {"version": 2, "outcome": "needs-read", "read": {"resource_type", "resource_id",
     "identifier": [system, value] | null, "topic"}}
    {"version": 2, "outcome": "ignored"}            (the reason is the row's `reason` column)

Rows written before version 2 (`{"session": …}`, `{"focus": …}`, `{}`) are read as well, so
events accepted before an upgrade are processed after it. The values were checked when they
arrived: reading does not check them again (the store checks what it writes, see
`service/persistence/queries/clients.py`).
"""

from __future__ import annotations

from datetime import datetime

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, pre_load, validate

from integrations.delivery.port import Contact
from service.intake.facts import (
    Completed,
    EhrRead,
    Ignored,
    NeedsRead,
    Outcome,
    SessionFacts,
)

VERSION = 2
_OUTCOMES = {Completed: "completed", NeedsRead: "needs-read", Ignored: "ignored"}


class PayloadError(ValueError):
    """A stored payload that cannot be read; the message names the field, never a value."""


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class _ContactSchema(_Lenient):
    phone = fields.String(load_default=None, allow_none=True)
    email = fields.String(load_default=None, allow_none=True)
    locale = fields.String(load_default=None, allow_none=True)

    @post_load
    def _make(self, data, **_kwargs) -> Contact:
        return Contact(**data)


class _FactsSchema(_Lenient):
    session_id = fields.String(required=True)
    patient_id = fields.String(required=True)
    practitioner_id = fields.String(load_default=None, allow_none=True)
    ended_at = fields.AwareDateTime(load_default=None, allow_none=True, format="iso")
    contact = fields.Nested(_ContactSchema, load_default=None, allow_none=True)
    dedupe_keys = fields.List(fields.String(), load_default=list)

    @post_load
    def _make(self, data, **_kwargs) -> SessionFacts:
        return SessionFacts(**{**data, "dedupe_keys": tuple(data["dedupe_keys"])})


class _ReadSchema(_Lenient):
    resource_type = fields.String(required=True)
    resource_id = fields.String(load_default=None, allow_none=True)
    identifier = fields.Tuple((fields.String(allow_none=True), fields.String()),
                              load_default=None, allow_none=True)
    topic = fields.String(load_default=None, allow_none=True)

    @post_load
    def _make(self, data, **_kwargs) -> EhrRead:
        return EhrRead(**data)


class PayloadSchema(_Lenient):
    version = fields.Integer(required=True, validate=validate.Equal(VERSION))
    outcome = fields.String(required=True, validate=validate.OneOf(_OUTCOMES.values()))
    session = fields.Nested(_FactsSchema)
    read = fields.Nested(_ReadSchema)
    reason = fields.String()  # only in upgraded version-1 rows; otherwise the `reason` column

    @pre_load
    def _upgrade(self, data, **_kwargs):
        return data if isinstance(data, dict) and "version" in data else _from_version_1(data)


_SCHEMA = PayloadSchema()


def dump_outcome(outcome: Outcome) -> dict:
    """The payload to store for an arrival's outcome."""
    payload = {"version": VERSION, "outcome": _OUTCOMES[type(outcome)]}
    if isinstance(outcome, Completed):
        payload["session"] = outcome.facts
    elif isinstance(outcome, NeedsRead):
        payload["read"] = outcome.read
    return _SCHEMA.dump(payload)


def load_outcome(payload: dict, reason: str | None = None, patient_id: str | None = None,
                 session_id: str | None = None) -> Outcome:
    """The outcome a stored payload holds (`reason` and the ids are the row's columns)."""
    try:
        data = _SCHEMA.load(payload)
    except ValidationError as error:
        fields_named = ", ".join(_fields(error.messages))
        raise PayloadError(f"unreadable stored event: {fields_named}") from None
    if data["outcome"] == "completed" and "session" in data:
        return Completed(data["session"])
    if data["outcome"] == "needs-read" and "read" in data:
        return NeedsRead(data["read"], patient_id, session_id)
    if data["outcome"] == "ignored":
        return Ignored(reason or data.get("reason") or "ignored")
    raise PayloadError(f"unreadable stored event: {data['outcome']} without its details")


def holds_contact(outcome: Outcome) -> bool:
    """Whether the payload stored for this outcome carries a phone number or e-mail address."""
    contact = outcome.facts.contact if isinstance(outcome, Completed) else None
    return bool(contact and (contact.phone or contact.email))


def without_contact(payload: dict) -> dict:
    """A stored payload with the client's contact details taken out (every version)."""
    session = payload.get("session") if isinstance(payload, dict) else None
    if not isinstance(session, dict):
        return payload
    kept = {key: value for key, value in session.items()
            if key not in ("contact", "phone", "email", "locale")}
    return {**payload, "session": {**kept, "contact": None}}


def _fields(messages, prefix: str = "") -> list[str]:
    if not isinstance(messages, dict):
        return [prefix or "(payload)"]
    return [name for key, value in messages.items()
            for name in _fields(value, f"{prefix}.{key}" if prefix else str(key))]


def _from_version_1(data) -> dict:
    """Payloads written before version 2: a session dict, an id-only focus, or nothing."""
    data = data if isinstance(data, dict) else {}
    if data.get("session"):
        session = dict(data["session"])
        if not (session.get("session_id") and session.get("patient_id")):
            return {"version": VERSION, "outcome": "ignored",
                    "reason": "the session names no patient"}
        session["ended_at"] = _aware_or_none(session.get("ended_at"))
        return {"version": VERSION, "outcome": "completed", "session": session}
    if data.get("appointment_id"):  # Healthie's thin webhook
        return {"version": VERSION, "outcome": "needs-read", "read": {
            "resource_type": "Appointment", "resource_id": str(data["appointment_id"])}}
    if data.get("focus") or data.get("focus_identifier"):
        focus = data.get("focus") or ""
        return {"version": VERSION, "outcome": "needs-read", "read": {
            "resource_type": data.get("focus_type") or focus.partition("/")[0],
            "resource_id": focus.partition("/")[2] or None,
            "identifier": data.get("focus_identifier"), "topic": data.get("topic")}}
    return {"version": VERSION, "outcome": "ignored"}


def _aware_or_none(value) -> str | None:
    """Version 1 kept FHIR's end time as sent: a bare date or a zone-less time reads as None."""
    try:
        moment = datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
    return value if moment is not None and moment.utcoffset() is not None else None

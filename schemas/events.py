"""The native `session.completed` event (CONTRACT §3.1) and the intake answers."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from integrations.delivery.contact import E164, MAX_LOCALE, email_problem, locale_problem

# PostgreSQL text cannot hold NUL, and control characters in ids would corrupt logs and the CLI.
PRINTABLE = validate.Regexp(r"\A[^\x00-\x1f\x7f]*\Z",
                            error="must not contain control characters")
IDENTIFIER = [validate.Length(min=1, max=200), PRINTABLE]
PHONE = validate.Regexp(E164, error="must be an E.164 number like +15551234567")


def _mailbox(value: str) -> None:
    problem = email_problem(value)
    if problem:
        raise ValidationError(f"must be an e-mail address that fits SMTP: {problem}")


def _language_tag(value: str) -> None:
    problem = locale_problem(value)
    if problem:
        raise ValidationError(f"must be {problem.removeprefix('not ')}")


class Contact(Schema):
    class Meta:
        unknown = EXCLUDE  # tolerant reader: EHRs add fields we do not need

    phone = fields.String(load_default=None, allow_none=True, validate=PHONE)
    email = fields.Email(load_default=None, allow_none=True, validate=_mailbox)
    locale = fields.String(load_default=None, allow_none=True,
                           validate=[validate.Length(max=MAX_LOCALE), _language_tag])


class SessionData(Schema):
    class Meta:
        unknown = EXCLUDE

    session_id = fields.String(required=True, validate=IDENTIFIER)
    patient_id = fields.String(required=True, validate=IDENTIFIER)
    practitioner_id = fields.String(load_default=None, allow_none=True, validate=IDENTIFIER)
    ended_at = fields.AwareDateTime(load_default=None, allow_none=True, format="iso")
    status = fields.String(load_default="completed",
                           validate=[validate.Length(min=1, max=40), PRINTABLE])
    contact = fields.Nested(Contact, load_default=None, allow_none=True)


class NativeEvent(Schema):
    class Meta:
        unknown = EXCLUDE

    type = fields.String(required=True, validate=[validate.Length(min=1, max=100), PRINTABLE])
    timestamp = fields.AwareDateTime(load_default=None, allow_none=True, format="iso")
    # Checked only for session.completed; other types are recorded as they are.
    data = fields.Dict(required=True)


class SessionCompletedEvent(NativeEvent):
    """The one native event type that can lead to a survey (documentation of `data`)."""

    type = fields.String(required=True, metadata={"enum": ["session.completed"]})
    data = fields.Nested(SessionData, required=True)


class EventOutcome(Schema):
    event_id = fields.String(required=True, metadata={"description": "our id of the stored event"})
    duplicate = fields.Boolean(required=True, metadata={
        "description": "true for a repeated delivery or a session that already has its survey"})
    ignored = fields.String(metadata={
        "description": "why the event causes no survey, when it does not"})


class EventAccepted(EventOutcome):
    status = fields.String(required=True, metadata={"enum": ["accepted"]})


class NotificationAnswer(Schema):
    status = fields.String(required=True, metadata={"enum": ["accepted", "ok"]})
    kind = fields.String(required=True, metadata={
        "enum": ["handshake", "heartbeat", "event-notification", "query-status", "query-event"]})
    duplicate = fields.Boolean(required=True)
    events = fields.List(fields.Nested(EventOutcome), required=True,
                         metadata={"description": "one per notification event; "
                                                  "empty for a handshake or heartbeat"})


class Problem(Schema):
    """RFC 9457 problem details."""

    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.String(),
                         metadata={"description": "field or item → what is wrong with it"})

"""The native `session.completed` event (CONTRACT §3.1) and the intake answers."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

IDENTIFIER = validate.Length(min=1, max=200)


class Contact(Schema):
    class Meta:
        unknown = EXCLUDE  # tolerant reader: EHRs add fields we do not need

    phone = fields.String(load_default=None, allow_none=True,
                          validate=validate.Regexp(r"^\+[1-9]\d{6,14}$", error="must be an E.164 number like +15551234567"))
    email = fields.Email(load_default=None, allow_none=True)
    locale = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=16))


class SessionData(Schema):
    class Meta:
        unknown = EXCLUDE

    session_id = fields.String(required=True, validate=IDENTIFIER)
    patient_id = fields.String(required=True, validate=IDENTIFIER)
    practitioner_id = fields.String(load_default=None, allow_none=True, validate=IDENTIFIER)
    ended_at = fields.AwareDateTime(load_default=None, allow_none=True, format="iso")
    status = fields.String(load_default="completed", validate=validate.Length(min=1, max=40))
    contact = fields.Nested(Contact, load_default=None, allow_none=True)


class NativeEvent(Schema):
    class Meta:
        unknown = EXCLUDE

    type = fields.String(required=True, validate=validate.Length(min=1, max=100))
    timestamp = fields.AwareDateTime(load_default=None, allow_none=True, format="iso")
    # Checked only for session.completed; other types are recorded as they are.
    data = fields.Dict(required=True)


class EventAccepted(Schema):
    status = fields.String(metadata={"example": "accepted"})
    event_id = fields.String()
    duplicate = fields.Boolean()
    ignored = fields.String(metadata={"description": "why the event causes no survey, when it does not"})


class Problem(Schema):
    """RFC 9457 problem details."""

    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.String(),
                         metadata={"description": "field or item → what is wrong with it"})

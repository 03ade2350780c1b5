"""The alerts API (`GET /api/v1/practices/{practice_id}/alerts`): its query and its answer."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

MAX_LIMIT = 500
DEFAULT_LIMIT = 100


class AlertsQuery(Schema):
    class Meta:
        unknown = RAISE  # a misspelt parameter is named, not silently ignored

    since = fields.AwareDateTime(
        load_default=None, format="iso",
        metadata={"description": "also return ruptures closed at or after this time (ISO 8601 "
                                 "with a time zone, e.g. 2026-11-26T15:00:00Z); without it, "
                                 "only open ones"})
    limit = fields.Integer(load_default=DEFAULT_LIMIT,
                           validate=validate.Range(min=1, max=MAX_LIMIT),
                           metadata={"description": f"page size, at most {MAX_LIMIT}"})
    cursor = fields.String(load_default=None, validate=validate.Regexp(
        r"^[A-Za-z0-9_-]{1,200}$", error="is not a cursor this API gave out"),
        metadata={"description": "`next_cursor` of the previous page"})


class Alert(Schema):
    id = fields.String(required=True, metadata={"description": "the rupture episode's id"})
    patient_id = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["open", "resolved"]})
    level = fields.String(required=True, metadata={
        "enum": ["rupture", "unresolved"],
        "description": "`unresolved`: not repaired within the repair window"})
    summary = fields.String(required=True, metadata={
        "maxLength": 90, "description": "one line in plain words, fits a Canvas banner"})
    text = fields.String(required=True, metadata={"description": "the reasons, in plain words"})
    session_date = fields.Date(required=True, metadata={
        "description": "the day (practice time zone) of the session that opened the rupture"})
    opened_at = fields.AwareDateTime(required=True, format="iso")
    closed_at = fields.AwareDateTime(required=True, allow_none=True, format="iso")
    updated_at = fields.AwareDateTime(required=True, format="iso")


class AlertsPage(Schema):
    practice_id = fields.String(required=True)
    as_of = fields.AwareDateTime(required=True, format="iso",
                                 metadata={"description": "the service's time of this answer"})
    alerts = fields.List(fields.Nested(Alert), required=True)
    next_cursor = fields.String(required=True, allow_none=True, metadata={
        "description": "pass as `cursor` for the next page; null on the last page"})

"""The SMART trend view as JSON (`GET /smart/{practice_id}/view.json`), for the OpenAPI document.

service/clinician/trend.py `Trend.as_dict` makes the body; a test loads real output with these
schemas, so the document cannot drift from it.
"""

from __future__ import annotations

from marshmallow import Schema, fields


class Instrument(Schema):
    id = fields.String(required=True)
    title = fields.String(required=True)


class Scale(Schema):
    name = fields.String(required=True, metadata={"description": "'total' or a subscale"})
    label = fields.String(required=True)
    min = fields.Float(required=True)
    max = fields.Float(required=True)
    cutoff_below = fields.Float(required=True, allow_none=True)


class Band(Schema):
    baseline = fields.Float(required=True)
    low = fields.Float(required=True)
    high = fields.Float(required=True)


class TrendSession(Schema):
    position = fields.Integer(required=True)
    session_id = fields.String(required=True)
    date = fields.String(required=True, allow_none=True,
                         metadata={"description": "the session's date in the practice's zone"})
    returned = fields.Boolean(required=True)
    scores = fields.Dict(keys=fields.String(), values=fields.Float(), required=True)
    usual_band = fields.Dict(keys=fields.String(), values=fields.Nested(Band), required=True,
                             metadata={"description": "baseline ± 1 SD from earlier surveys, "
                                                      "per scale"})
    decision = fields.String(required=True, allow_none=True)
    reasons = fields.List(fields.String(), required=True)


class AlertAction(Schema):
    action = fields.String(required=True, metadata={
        "description": "acknowledge | snooze | escalate | complete-escalation"})
    actor = fields.String(required=True, metadata={
        "description": "the EHR user's fhirUser; `smart-launch:{iss}` when the launch named "
                       "none; `cds-client:{iss}` (CDS Hooks feedback); `service`"})
    source = fields.String(required=True, metadata={
        "description": "smart-view | cds-feedback | escalation"})
    at = fields.String(required=True, metadata={"format": "date-time"})
    note = fields.String(required=True, allow_none=True,
                         metadata={"description": "the clinician's note, if any"})
    until = fields.String(required=True, allow_none=True,
                          metadata={"format": "date-time", "description": "a snooze's end"})


class OpenRupture(Schema):
    since = fields.String(required=True, allow_none=True)
    session_id = fields.String(required=True)
    decision = fields.String(required=True, metadata={"enum": ["rupture", "unresolved"]})
    reasons = fields.List(fields.String(), required=True)
    latest = fields.String(required=True, allow_none=True)
    episode_id = fields.String(required=True, metadata={
        "description": "the rupture episode the actions are about (docs/alerts.md)"})
    acknowledged = fields.Nested(AlertAction, required=True, allow_none=True, metadata={
        "description": "the first acknowledgment of the current stage (rupture, then "
                       "unresolved), from the view or CDS Hooks feedback"})
    snoozed_until = fields.String(required=True, allow_none=True, metadata={
        "format": "date-time", "description": "the EHR gets no card for it until then"})
    snoozes_left = fields.Integer(required=True)
    max_snooze_days = fields.Integer(required=True)
    actions = fields.List(fields.Nested(AlertAction), required=True,
                          metadata={"description": "every action on the episode, oldest first"})


class TrendView(Schema):
    patient = fields.String(required=True, metadata={"description": "the launch patient"})
    fhir_user = fields.String(required=True, allow_none=True)
    instrument = fields.Nested(Instrument, required=True)
    scales = fields.List(fields.Nested(Scale), required=True)
    sessions = fields.List(fields.Nested(TrendSession), required=True)
    open_rupture = fields.Nested(OpenRupture, required=True, allow_none=True)
    other_instrument_surveys = fields.Integer(required=True)

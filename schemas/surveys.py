"""Survey API bodies (CONTRACT §4)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields


class SurveyItem(Schema):
    linkId = fields.String()
    text = fields.String()
    type = fields.String(metadata={"enum": ["integer", "decimal", "boolean", "text"]})
    min = fields.Float(allow_none=True)
    max = fields.Float(allow_none=True)
    polarity = fields.String(allow_none=True, metadata={"enum": ["positive", "negative"]})
    required = fields.Boolean()
    lowLabel = fields.String(allow_none=True)
    highLabel = fields.String(allow_none=True)


class SurveyView(Schema):
    instrument = fields.String()
    title = fields.String()
    items = fields.List(fields.Nested(SurveyItem))
    expires_at = fields.AwareDateTime(format="iso")
    locale = fields.String()


class AnswersRequest(Schema):
    class Meta:
        unknown = RAISE

    # Values are checked item by item by the domain (service.domain.scoring.validate_answers).
    answers = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), required=True)


class ResponseAccepted(Schema):
    status = fields.String(metadata={"example": "recorded"})
    response_id = fields.String()
    scores = fields.Dict()

"""The practice document's `retention` section: how long clients' data is kept (CONTRACT §11).

`alliance retention run` (and the worker, daily) deletes a client's contact details
`contact_days` after their last session, and responses older than `responses_days` with the
surveys and assessments they belong to (docs/security.md says what is kept, and why).
"""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.base import StrictSchema

DEFAULT_CONTACT_DAYS, DEFAULT_RESPONSES_DAYS = 180, 730
MAX_DAYS = 3653  # ten years


class Retention(StrictSchema):
    contact_days = fields.Integer(load_default=DEFAULT_CONTACT_DAYS, strict=True,
                                  validate=validate.Range(min=1, max=MAX_DAYS))
    # At least as long as a survey can be open, so no answer is deleted before it is assessed.
    responses_days = fields.Integer(load_default=DEFAULT_RESPONSES_DAYS, strict=True,
                                    validate=validate.Range(min=30, max=MAX_DAYS))

    @validates_schema
    def _answers_outlive_contact(self, data, **_kwargs):
        # Deleting answers first would leave a client we may still survey without the history
        # their next survey is judged against.
        if data.get("responses_days", DEFAULT_RESPONSES_DAYS) < data.get(
                "contact_days", DEFAULT_CONTACT_DAYS):
            raise ValidationError({"responses_days": ["must be at least contact_days"]})

"""Healthie (CONTRACT §10): the practice's `healthie` section and the body Healthie sends."""

from __future__ import annotations

import re

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates

from schemas.base import HTTP_URL, StrictSchema
from schemas.events import IDENTIFIER, PRINTABLE

# What a question of the alliance form can receive: summary, total, pomp, decision,
# interpretation or a subscale name (docs/integrations.md, "Healthie"); subscale names depend
# on the instrument, so only their form is checked.
FORM_VALUES = re.compile(r"\A[a-z][a-z0-9_-]{0,39}\Z")


class HealthieSettings(StrictSchema):
    """`healthie` in the practice document."""

    api_url = fields.String(
        required=True,
        validate=HTTP_URL,
        metadata={
            "description": "the GraphQL endpoint, https://api.gethealthie.com/graphql "
            "(staging-api. for the sandbox)"
        },
    )
    api_key = fields.String(required=True, validate=validate.Length(min=1, max=500))
    webhook_secret = fields.String(
        required=True,
        validate=validate.Length(min=8, max=500),
        metadata={"description": "the signature_secret createWebhook returned"},
    )
    form_id = fields.String(
        validate=[validate.Length(min=1, max=50), PRINTABLE],
        metadata={
            "description": "custom_module_form_id of the alliance form the scores are written to"
        },
    )
    form_fields = fields.Dict(
        keys=fields.String(),
        values=fields.String(validate=[validate.Length(min=1, max=50), PRINTABLE]),
        metadata={
            "description": "what goes into which question (custom_module_id): summary, "
            "total, pomp, decision, interpretation, or a subscale name"
        },
    )
    care_alert_days = fields.Integer(
        load_default=30, strict=True, validate=validate.Range(min=1, max=365)
    )

    @validates("form_fields")
    def _known_values(self, value, **_kwargs):
        bad = sorted(key for key in value if not FORM_VALUES.match(key))
        if bad:
            raise ValidationError(
                f"unknown value(s) {', '.join(map(repr, bad))}: use summary, total, "
                "pomp, decision, interpretation or a subscale name"
            )


class ResourceId(fields.Field):
    """Healthie sends the id as a string in its docs and as an integer in public test cases."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValidationError("must be a string or an integer")
        return str(value)


class HealthieWebhook(Schema):
    """The thin body of a Healthie webhook (docs: guides/webhooks/event-reference)."""

    class Meta:
        unknown = EXCLUDE  # some events add fields (user_name, user_email…): never kept

    resource_id = ResourceId(
        required=True,
        validate=IDENTIFIER,
        metadata={
            "type": ["string", "integer"],
            "description": "the id of the record (Appointment id)",
        },
    )
    resource_id_type = fields.String(
        required=True, validate=[validate.Length(min=1, max=100), PRINTABLE]
    )
    event_type = fields.String(required=True, validate=[validate.Length(min=1, max=100), PRINTABLE])
    changed_fields = fields.List(
        fields.String(validate=[validate.Length(max=100), PRINTABLE]),
        load_default=list,
        validate=validate.Length(max=500),
        metadata={"description": "for *.updated: what changed"},
    )

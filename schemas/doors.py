"""Practice-document sections of the doors for EHRs that cannot sign our events (CONTRACT §10):
FHIR polling (`ehr.poll`) and HL7 v2 (`hl7v2`)."""

from __future__ import annotations

from marshmallow import fields, validate

from schemas.base import StrictSchema

POLLED_RESOURCES = ("Encounter", "Appointment")


class EhrPoll(StrictSchema):
    """`ehr.poll`: search the EHR for finished visits every N minutes."""

    resource = fields.String(required=True, validate=validate.OneOf(POLLED_RESOURCES))
    every_minutes = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=24 * 60)
    )
    # How far behind the cursor each search starts again: a resource indexed late (its
    # lastUpdated older than the newest one already seen) is still found.
    overlap_minutes = fields.Integer(
        load_default=10, strict=True, validate=validate.Range(min=0, max=24 * 60)
    )


class Hl7v2(StrictSchema):
    """`hl7v2`: the token an interface engine sends (HTTP `Authorization: Bearer`, MLLP MSH-8)."""

    channel_token = fields.String(required=True, validate=validate.Length(min=16, max=200))

"""The practice document's `alerts` section: what happens to an open alliance rupture
(CONTRACT §9): how long a clinician may snooze it, when an unacknowledged unresolved rupture
is escalated and to whom, and which resources are written for it in the EHR.
"""

from __future__ import annotations

import re

from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.base import StrictSchema

WRITE_TARGETS = ("flag", "task", "document")
DEFAULT_WRITE = ("flag",)
DEFAULT_MAX_SNOOZE_DAYS, DEFAULT_MAX_SNOOZES, DEFAULT_ESCALATE_AFTER_HOURS = 7, 2, 72.0
# A FHIR reference to a Practitioner: the id rules of FHIR R4 (1–64 of A-Z a-z 0-9 - .).
PRACTITIONER_REFERENCE = re.compile(r"^Practitioner/[A-Za-z0-9\-.]{1,64}$")

# What each kind of EHR connection can take (ehr.type → alerts.write targets). A Flag reaches
# Healthie as a CareAlert and a webhook EHR as a signed event; Task and DocumentReference are
# FHIR resources, so only a FHIR server takes them.
TARGETS_BY_EHR = {"fhir-r4": WRITE_TARGETS, "webhook": ("flag",), "healthie": ("flag",)}


class Alerts(StrictSchema):
    write = fields.List(fields.String(validate=validate.OneOf(WRITE_TARGETS)),
                        load_default=lambda: list(DEFAULT_WRITE))
    max_snooze_days = fields.Integer(load_default=DEFAULT_MAX_SNOOZE_DAYS, strict=True,
                                     validate=validate.Range(min=1, max=90))
    max_snoozes = fields.Integer(load_default=DEFAULT_MAX_SNOOZES, strict=True,
                                 validate=validate.Range(min=0, max=20))
    escalate_after_hours = fields.Float(load_default=DEFAULT_ESCALATE_AFTER_HOURS,
                                        validate=validate.Range(min=0, max=24 * 90,
                                                                min_inclusive=False))
    escalate_to = fields.String(validate=validate.Regexp(
        PRACTITIONER_REFERENCE, error="must be a reference like Practitioner/123"))
    escalate_email = fields.Email()

    @validates_schema
    def _each_target_once(self, data, **_kwargs):
        write = data.get("write") or []
        if len(set(write)) != len(write):
            raise ValidationError({"write": ["each target may be listed once"]})

    @validates_schema
    def _email_goes_with_escalation(self, data, **_kwargs):
        if data.get("escalate_email") and not data.get("escalate_to"):
            raise ValidationError({"escalate_email": [
                "needs escalate_to: the e-mail tells the supervisor a Task is waiting"]})


def alert_problems(document: dict) -> dict:
    """What the practice's EHR connection cannot take, by field (empty when all is well)."""
    alerts = document.get("alerts") or {}
    ehr_type = (document.get("ehr") or {}).get("type")
    allowed = TARGETS_BY_EHR.get(ehr_type, ())
    problems = {}
    refused = [target for target in alerts.get("write") or () if target not in allowed]
    if refused:
        problems["write"] = [
            f"ehr.type {ehr_type} cannot take {', '.join(refused)} (it takes "
            f"{', '.join(allowed)}): a Task or DocumentReference needs a FHIR server "
            "(ehr.type fhir-r4)"]
    if alerts.get("escalate_to") and ehr_type != "fhir-r4":
        problems["escalate_to"] = [f"escalation writes a FHIR Task, which ehr.type {ehr_type} "
                                   "cannot take: use ehr.type fhir-r4 or leave it out"]
    if alerts.get("escalate_email") and not (document.get("delivery") or {}).get("email"):
        problems["escalate_email"] = ["needs delivery.email (the SMTP server to send it through)"]
    return {"alerts": problems} if problems else {}

"""`ehr.identifier_systems`: the EHR's namespaces for patient and session ids that cannot be
written as literal FHIR references (see integrations/ehr/resources.py::IdentifierSystems)."""

from __future__ import annotations

import re

from marshmallow import fields, validate

from schemas.base import StrictSchema

ABSOLUTE_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")
_URI = validate.Regexp(ABSOLUTE_URI, error="must be an absolute URI (https://… or urn:…)")


class IdentifierSystems(StrictSchema):
    patient = fields.String(validate=_URI)
    encounter = fields.String(validate=_URI)

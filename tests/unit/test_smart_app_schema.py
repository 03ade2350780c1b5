"""The practice document's smart_app section: refused with a named reason, secrets redacted."""

from __future__ import annotations

import json

import pytest

from service import practices
from support import PAYLOADS, practice_document

GOOD = {"client_id": "alliance-trend", "client_secret": "trend-secret-0123456789",
        "issuers": ["https://ehr.example.org/fhir"], "frame_ancestors": ["https://ehr.example.org"]}


def rs384_private() -> dict:
    keys = json.loads((PAYLOADS / "smart-backend" / "RS384.private.json").read_text())["keys"]
    return next(key for key in keys if "d" in key)


def test_a_good_section_loads_with_the_default_scope():
    document = practices.validate_document(practice_document(smart_app=GOOD))
    assert document["smart_app"]["scope"] == "launch openid fhirUser patient/Patient.rs"


@pytest.mark.parametrize("change, problem", [
    ({"issuers": []}, "smart_app.issuers"),
    ({"issuers": ["not a url"]}, "smart_app.issuers"),
    ({"client_secret": None}, "smart_app.client_secret"),
    ({"private_key_jwk": {"kid": "k", "alg": "RS384", "d": "x"}}, "exactly one of"),
    ({"client_secret": None, "private_key_jwk": {"alg": "HS256"}}, "smart_app.private_key_jwk"),
    ({"frame_ancestors": ["https://ehr.example.org/app"]}, "must be an origin"),
    ({"frame_ancestors": ["'none'"]}, "must be an origin"),
    ({"scope": "launch openid patient/Patient.rs"}, "fhirUser"),
    ({"redirect_uri": "https://x"}, "smart_app.redirect_uri"),
])
def test_a_bad_section_is_refused_naming_the_field(change, problem):
    section = {key: value for key, value in {**GOOD, **change}.items() if value is not None}
    with pytest.raises(practices.InvalidPractice) as refused:
        practices.validate_document(practice_document(smart_app=section))
    assert any(problem in line for line in refused.value.problems), refused.value.problems


def test_secrets_of_the_section_are_redacted():
    for section in (GOOD, {**{k: v for k, v in GOOD.items() if k != "client_secret"},
                           "private_key_jwk": rs384_private()}):
        document = practices.validate_document(practice_document(smart_app=section))
        shown = practices.Practice.from_document(document).redacted()["smart_app"]
        assert shown.get("client_secret", "<redacted>") == "<redacted>"
        assert shown.get("private_key_jwk", "<redacted>") == "<redacted>"
        assert shown["client_id"] == "alliance-trend"

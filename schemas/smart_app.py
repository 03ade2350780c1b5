"""The practice document's `smart_app` section: the SMART on FHIR trend app (CONTRACT §8.2)."""

from __future__ import annotations

from urllib.parse import urlsplit

from marshmallow import ValidationError, fields, validate, validates, validates_schema

from schemas.base import HTTP_URL, StrictSchema

# The SMART examples sign client assertions with RS384 or ES384 (as ehr.auth does).
ASSERTION_ALGORITHMS = ("RS384", "ES384")


class SmartApp(StrictSchema):
    client_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    client_secret = fields.String(validate=validate.Length(min=8))
    private_key_jwk = fields.Dict()
    issuers = fields.List(fields.String(validate=HTTP_URL), required=True,
                          validate=validate.Length(min=1))
    scope = fields.String(load_default="launch openid fhirUser patient/Patient.rs")
    frame_ancestors = fields.List(fields.String(), load_default=list)

    @validates("frame_ancestors")
    def _origins(self, value, **_kwargs):
        bad = [origin for origin in value if not _is_origin(origin)]
        if bad:
            raise ValidationError(
                f"{', '.join(map(repr, bad))}: each must be an origin like https://ehr.example.org "
                "(scheme and host, optional port, no path)")

    @validates_schema
    def _one_client_authentication(self, data, **_kwargs):
        secret, jwk = data.get("client_secret"), data.get("private_key_jwk")
        if bool(secret) == bool(jwk):
            raise ValidationError("give exactly one of client_secret (client_secret_basic) or "
                                  "private_key_jwk (private_key_jwt)", "client_secret")
        if jwk is not None:
            problems = []
            if not jwk.get("kid"):
                problems.append("needs a kid")
            if jwk.get("alg") not in ASSERTION_ALGORITHMS:
                problems.append("alg must be RS384 or ES384")
            if "d" not in jwk:
                problems.append("must be a private key (no 'd' member)")
            if problems:
                raise ValidationError({"private_key_jwk": problems})
        scopes = data.get("scope", "").split()
        if "openid" in scopes and "fhirUser" not in scopes:
            raise ValidationError({"scope": ["with openid, also ask for fhirUser"]})


def _is_origin(value: str) -> bool:
    parts = urlsplit(value)
    return (parts.scheme in ("http", "https") and bool(parts.hostname)
            and parts.path in ("", "/") and not parts.query and not parts.fragment
            and not parts.username)

"""CDS Hooks 2.0 (CONTRACT §8.1): the practice's `cds_hooks` section, and the bodies of the
discovery, service and feedback endpoints (for validation and for the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime, timezone

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from schemas.base import HTTP_URL, StrictSchema

# The algorithms CDS Hooks 2.0 recommends; every other one (none, HMAC, …) is refused.
CDS_ALGORITHMS = ("RS384", "ES384")
# Members that only a private JWK has: a practice must never paste its client's private key.
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
HOOKS = ("patient-view", "encounter-start")


def key_set_problems(key_set: object) -> list[str]:
    """What is wrong with an inline JWK Set of a CDS client (empty when it can be used)."""
    if not isinstance(key_set, dict) or not isinstance(key_set.get("keys"), list) \
            or not key_set["keys"]:
        return ['must be a JWK Set: {"keys": [ … ]} with at least one key']
    problems = []
    for index, key in enumerate(key_set["keys"]):
        where = f"keys[{index}]"
        if not isinstance(key, dict):
            problems.append(f"{where}: must be a JWK object")
            continue
        if not key.get("kid"):
            problems.append(f"{where}: needs a kid (the tokens name their key by it)")
        if key.get("kty") not in ("RSA", "EC"):
            problems.append(f"{where}: kty must be RSA or EC (asymmetric keys only)")
        if key.get("alg") is not None and key["alg"] not in CDS_ALGORITHMS:
            problems.append(f"{where}: alg must be RS384 or ES384")
        if any(member in key for member in PRIVATE_MEMBERS):
            problems.append(f"{where}: holds private key material; give the public key only")
    return problems


class CdsClient(StrictSchema):
    """One EHR allowed to call the CDS service: its `iss` and where its public keys are."""

    iss = fields.String(required=True, validate=validate.Length(min=1, max=500))
    jwks_url = fields.String(validate=[HTTP_URL, validate.Length(max=2000)])
    jwks = fields.Dict()

    @validates_schema
    def _one_key_source(self, data, **_kwargs):
        given = [name for name in ("jwks_url", "jwks") if data.get(name) is not None]
        if len(given) != 1:
            raise ValidationError("give exactly one of jwks_url (fetched) and jwks (inline)",
                                  "jwks_url")
        if "jwks" in given:
            problems = key_set_problems(data["jwks"])
            if problems:
                raise ValidationError(problems, "jwks")


class CdsHooksSection(StrictSchema):
    clients = fields.List(fields.Nested(CdsClient), required=True,
                          validate=validate.Length(min=1))
    info_cards = fields.Boolean(load_default=True)

    @validates_schema
    def _distinct_issuers(self, data, **_kwargs):
        issuers = [client["iss"] for client in data.get("clients") or []]
        if len(set(issuers)) != len(issuers):
            raise ValidationError("each iss may be listed once", "clients")


# --- the endpoints' bodies ---------------------------------------------------------------------


class Tolerant(Schema):
    """What EHRs send: members we do not use are ignored (CDS Hooks lets clients add them)."""

    class Meta:
        unknown = EXCLUDE


# What we store or look up: PostgreSQL text cannot hold NUL, SQLite cannot bind a lone surrogate.
STORABLE = validate.Regexp(r"\A[^\x00-\x1f\x7f\ud800-\udfff]*\Z",
                           error="must not contain control characters or unpaired surrogates")
IDENTIFIER = [validate.Length(min=1, max=200), STORABLE]


class HookContext(Tolerant):
    patientId = fields.String(required=True, validate=IDENTIFIER)
    userId = fields.String(validate=[validate.Length(max=300), STORABLE])  # in the audit log
    encounterId = fields.String(validate=validate.Length(max=300))


class HookRequest(Tolerant):
    hook = fields.String(required=True, validate=validate.OneOf(HOOKS))
    hookInstance = fields.String(required=True, validate=validate.Length(min=1, max=100))
    context = fields.Nested(HookContext, required=True)
    # Accepted and never used: the cards come from stored state, the service calls no EHR.
    fhirServer = fields.String()
    fhirAuthorization = fields.Dict(allow_none=True)
    prefetch = fields.Dict(allow_none=True)


class Coding(Tolerant):
    code = fields.String(required=True, validate=[validate.Length(min=1, max=200), STORABLE])
    system = fields.String(validate=[validate.Length(max=500), STORABLE])
    display = fields.String(validate=validate.Length(max=500))


class OverrideReason(Tolerant):
    reason = fields.Nested(Coding)
    userComment = fields.String(validate=validate.Length(max=4000))


class AcceptedSuggestion(Tolerant):
    id = fields.String(required=True, validate=[validate.Length(min=1, max=100), STORABLE])


class FeedbackItem(Tolerant):
    card = fields.String(required=True, validate=[validate.Length(min=1, max=100), STORABLE])
    outcome = fields.String(required=True, validate=validate.OneOf(["accepted", "overridden"]))
    acceptedSuggestions = fields.List(fields.Nested(AcceptedSuggestion))
    overrideReason = fields.Nested(OverrideReason)
    # Bounded, so converting to UTC can never leave the calendar (year 1 at +05:00 would).
    outcomeTimestamp = fields.AwareDateTime(required=True, format="iso", validate=validate.Range(
        datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(9999, 1, 1, tzinfo=timezone.utc)))


class FeedbackRequest(Tolerant):
    feedback = fields.List(fields.Nested(FeedbackItem), required=True,
                           validate=validate.Length(min=1, max=100))


class FeedbackStored(Schema):
    stored = fields.Integer(metadata={"description": "feedback items received"})
    acknowledged = fields.Integer(
        metadata={"description": "items that acknowledged a rupture card shown now"})


class ServiceDescription(Schema):
    hook = fields.String(metadata={"enum": list(HOOKS)})
    id = fields.String()
    title = fields.String()
    description = fields.String()
    prefetch = fields.Dict(keys=fields.String(), values=fields.String())


class Discovery(Schema):
    services = fields.List(fields.Nested(ServiceDescription))


class CardSource(Schema):
    label = fields.String(metadata={"example": "alliance-feedback"})
    url = fields.String()


class CardLink(Schema):
    label = fields.String()
    url = fields.String()
    type = fields.String(metadata={"enum": ["smart", "absolute"]})


class OverrideChoice(Schema):
    code = fields.String()
    system = fields.String()
    display = fields.String()


class Card(Schema):
    uuid = fields.String()
    summary = fields.String(metadata={"description": "under 140 characters"})
    detail = fields.String(metadata={"description": "GitHub-flavoured markdown"})
    indicator = fields.String(metadata={"enum": ["info", "warning", "critical"]})
    source = fields.Nested(CardSource)
    overrideReasons = fields.List(fields.Nested(OverrideChoice))
    links = fields.List(fields.Nested(CardLink))


class Cards(Schema):
    cards = fields.List(fields.Nested(Card))


class TokenProblem(Schema):
    """A refused token: RFC 9457 problem details naming the check that failed."""

    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    check = fields.String(metadata={"enum": [
        "authorization", "token", "alg", "kid", "iss", "jku", "jwks", "signature", "aud",
        "exp", "iat", "nbf", "jti"]})

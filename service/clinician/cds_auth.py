"""Trusting CDS clients (CDS Hooks 2.0, CONTRACT §8.1): the bearer JWT on every request.

Checks, in order, each refusal naming the check that failed: a bearer token; a JWT; `alg` RS384
or ES384 (`none`, every HMAC and every other algorithm refused before any key is looked at); a
`kid`; `iss` one of the practice's clients; a `jku` header, when given, equal to that client's
`jwks_url`; the `kid` in the client's key set, of the type `alg` needs; the signature (PyJWT);
`aud` the exact URL called (a string, or an array holding it); `exp` in the future; `iat` and
`nbf` not in the future, with SKEW for the clocks. The caller then remembers the `jti` (a
replayed one is refused: service/clinician/cds_service.py, in the database).

The time checks use our clock, not PyJWT's (which reads the wall clock and cannot be given one).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache

import jwt
from jwt.exceptions import (
    InvalidAudienceError,
    InvalidIssuerError,
    InvalidJTIError,
    InvalidKeyError,
    InvalidSignatureError,
    InvalidTokenError,
    MissingRequiredClaimError,
    PyJWKError,
)

from service.clinician.jwks import KeySets, KeySetUnavailable, UnknownKey

# alg → the JWK key type it needs (and, for EC, the curve RFC 7518 pairs it with).
ALGORITHMS = {"RS384": ("RSA", None), "ES384": ("EC", "P-384")}
SKEW = timedelta(seconds=60)
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]
MIN_RSA_BITS = 2048
UNREGISTERED_ISS = "the token's iss is not a CDS client registered for this practice"


class TokenRefused(Exception):
    """The request is not trusted; `check` names what failed, `detail` says it in words."""

    def __init__(self, check: str, detail: str):
        super().__init__(f"{check}: {detail}")
        self.check, self.detail = check, detail


@dataclass(frozen=True)
class VerifiedToken:
    iss: str
    jti: str
    expires_at: datetime
    claims: Mapping


def bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRefused("authorization",
                           "send the CDS client's JWT as 'Authorization: Bearer …'")
    return token.strip()


def verify_cds_token(token: str, *, clients: Sequence[Mapping], audience: str, now: datetime,
                     key_sets: KeySets) -> VerifiedToken:
    """The verified token, or TokenRefused naming the failed check."""
    header, unverified = _unverified(token)
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise TokenRefused("alg", f"alg {_shown(alg)} is not accepted: only RS384 and ES384")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenRefused("kid", "the token header names no kid")
    client = _client(clients, unverified.get("iss"))
    jku = header.get("jku")
    if jku is not None and jku != client.get("jwks_url"):
        raise TokenRefused("jku", "the jku header is not the key set URL registered for this iss")
    key = _public_key(client, kid, alg, key_sets)
    claims = _signed_claims(token, key, alg, audience, client["iss"])
    expires_at = _check_times(claims, now)
    if not claims["jti"]:
        raise TokenRefused("jti", "the jti claim is empty")
    return VerifiedToken(client["iss"], claims["jti"], expires_at, claims)


def _unverified(token: str) -> tuple[dict, dict]:
    try:
        unverified = jwt.decode_complete(token, options={"verify_signature": False})
    except InvalidTokenError:
        raise TokenRefused("token", "the bearer token is not a JWT") from None
    return unverified["header"], unverified["payload"]


def _client(clients: Sequence[Mapping], iss: object) -> Mapping:
    for client in clients:
        if isinstance(iss, str) and client["iss"] == iss:
            return client
    raise TokenRefused("iss", UNREGISTERED_ISS)


def _public_key(client: Mapping, kid: str, alg: str, key_sets: KeySets):
    try:
        jwk = key_sets.key(client, kid)
    except UnknownKey:
        raise TokenRefused("kid", "no key with this kid in the client's key set") from None
    except KeySetUnavailable as error:
        raise TokenRefused("jwks", f"the client's key set is unavailable: {error}") from None
    kty, curve = ALGORITHMS[alg]
    if jwk.get("kty") != kty or (curve and jwk.get("crv") != curve) \
            or jwk.get("alg", alg) != alg or jwk.get("use", "sig") != "sig":
        raise TokenRefused("kid", f"the key with this kid is not an {alg} signing key")
    try:
        key = _key_object(json.dumps(jwk, sort_keys=True), alg)
    except (PyJWKError, InvalidKeyError, ValueError, TypeError):
        raise TokenRefused("kid", "the key with this kid cannot be read") from None
    if kty == "RSA" and key.key_size < MIN_RSA_BITS:
        raise TokenRefused("kid", f"the RSA key is shorter than {MIN_RSA_BITS} bits")
    return key


@lru_cache(maxsize=256)
def _key_object(jwk_json: str, alg: str):
    """The public key of a JWK, parsed once per process (keys are few and change rarely)."""
    return jwt.PyJWK(json.loads(jwk_json), algorithm=alg).key


def _signed_claims(token: str, key, alg: str, audience: str, iss: str) -> dict:
    options = {"require": REQUIRED_CLAIMS, "verify_exp": False, "verify_iat": False,
               "verify_nbf": False}
    try:
        return jwt.decode(token, key, algorithms=[alg], audience=audience, issuer=iss,
                          options=options)
    except InvalidSignatureError:
        raise TokenRefused("signature",
                           "the signature does not verify with the client's key") from None
    except InvalidAudienceError:
        raise TokenRefused("aud", f"aud must be the URL called: {audience}") from None
    except MissingRequiredClaimError as error:
        raise TokenRefused(error.claim, f"the token has no {error.claim} claim") from None
    except InvalidIssuerError:
        raise TokenRefused("iss", UNREGISTERED_ISS) from None
    except InvalidJTIError:
        raise TokenRefused("jti", "the jti claim must be a string") from None
    except InvalidTokenError as error:
        raise TokenRefused("token",
                           f"the token cannot be verified ({type(error).__name__})") from None


def _check_times(claims: Mapping, now: datetime) -> datetime:
    exp = _instant(claims, "exp")
    if now >= exp:
        raise TokenRefused("exp", "the token has expired")
    if _instant(claims, "iat") > now + SKEW:
        raise TokenRefused("iat", "the token is issued in the future (iat)")
    if "nbf" in claims and _instant(claims, "nbf") > now + SKEW:
        raise TokenRefused("nbf", "the token is not valid yet (nbf)")
    return exp


def _instant(claims: Mapping, name: str) -> datetime:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TokenRefused(name, f"{name} must be a number of seconds since 1970")
    try:
        return datetime.fromtimestamp(value, timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise TokenRefused(name, f"{name} is out of range") from None


def _shown(alg: object) -> str:
    return repr(alg)[:40] if not isinstance(alg, str) else repr(alg[:20])

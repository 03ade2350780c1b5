"""Playing the EHR's part of CDS Hooks: signed requests to our own CDS service.

Used by the tests, the benchmark and the demo (the demo EHR page and `alliance demo cds-hook`).
A request is signed as CDS Hooks 2.0 "Trusting CDS Clients" asks: a JWT with `alg` and `kid`
from the client's private JWK, `typ` JWT, `iss`, `aud` the exact URL, `exp`, `iat` and a fresh
`jti`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from service.clinician.cards import ACKNOWLEDGED, OVERRIDE_SYSTEM
from service.clinician.cds_service import SERVICES as HOOK_OF_SERVICE
from service.config import Settings

SERVICES = {hook: service_id for service_id, hook in HOOK_OF_SERVICE.items()}  # hook → id
LIFETIME = timedelta(minutes=5)
DEMO_CLIENT_FILE = Path(__file__).with_name("demo-ehr-cds-client.json")
PUBLIC_MEMBERS = ("kty", "kid", "use", "alg", "crv", "x", "y", "n", "e")


@dataclass(frozen=True)
class SignedRequest:
    method: str
    url: str
    headers: dict
    body: dict | None = None


def sign_cds_jwt(private_jwk: Mapping, *, iss: str, aud: str | list[str],
                 now: datetime | None = None, lifetime: timedelta = LIFETIME,
                 jti: str | None = None, jku: str | None = None, **claims) -> str:
    """A CDS client's bearer JWT; extra keyword arguments become extra claims (e.g. nbf)."""
    now = now or datetime.now(timezone.utc)
    payload = {"iss": iss, "aud": aud, "exp": int((now + lifetime).timestamp()),
               "iat": int(now.timestamp()), "jti": jti or str(uuid.uuid4()), **claims}
    header = {"kid": private_jwk["kid"], "typ": "JWT"}
    if jku:
        header["jku"] = jku
    return jwt.encode(payload, _signing_key(json.dumps(private_jwk, sort_keys=True)),
                      algorithm=private_jwk["alg"], headers=header)


@lru_cache(maxsize=16)
def _signing_key(private_jwk_json: str):
    # Loading an RSA private key checks it, which costs far more than signing with it.
    return jwt.PyJWK(json.loads(private_jwk_json)).key


def service_url(base_url: str, practice_id: str, service_id: str | None = None) -> str:
    url = f"{base_url.rstrip('/')}/cds/{practice_id}/cds-services"
    return f"{url}/{service_id}" if service_id else url


def discovery_request(base_url: str, practice_id: str, private_jwk: Mapping, iss: str,
                      **token) -> SignedRequest:
    url = service_url(base_url, practice_id)
    return SignedRequest("GET", url, _headers(private_jwk, iss, url, token))


def hook_request(base_url: str, practice_id: str, patient_id: str, private_jwk: Mapping,
                 iss: str, *, hook: str = "patient-view", user_id: str = "Practitioner/demo",
                 encounter_id: str | None = None, **token) -> SignedRequest:
    """A `patient-view` or `encounter-start` call for one patient, signed."""
    url = service_url(base_url, practice_id, SERVICES[hook])
    context = {"userId": user_id, "patientId": patient_id}
    if hook == "encounter-start" or encounter_id:
        context["encounterId"] = encounter_id or f"enc-{uuid.uuid4().hex[:8]}"
    body = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context}
    return SignedRequest("POST", url, _headers(private_jwk, iss, url, token), body)


def feedback_request(base_url: str, practice_id: str, service_id: str, card_uuid: str,
                     private_jwk: Mapping, iss: str, *, outcome: str = "overridden",
                     reason_code: str | None = ACKNOWLEDGED["code"], comment: str | None = None,
                     when: datetime | None = None, **token) -> SignedRequest:
    url = service_url(base_url, practice_id, service_id) + "/feedback"
    item: dict = {"card": card_uuid, "outcome": outcome,
                  "outcomeTimestamp": (when or datetime.now(timezone.utc)).isoformat()}
    if outcome == "overridden" and (reason_code or comment):
        item["overrideReason"] = {}
        if reason_code:
            item["overrideReason"]["reason"] = {"code": reason_code, "system": OVERRIDE_SYSTEM}
        if comment:
            item["overrideReason"]["userComment"] = comment
    return SignedRequest("POST", url, _headers(private_jwk, iss, url, token), {"feedback": [item]})


def _headers(private_jwk: Mapping, iss: str, url: str, token: dict) -> dict:
    return {"Authorization": f"Bearer {sign_cds_jwt(private_jwk, iss=iss, aud=url, **token)}",
            "Accept": "application/json"}


# --- keys -------------------------------------------------------------------------------------


def generate_private_jwk(alg: str = "ES384", kid: str | None = None) -> dict:
    """A new signing key as a private JWK (ES384 on P-384, or RS384 with 2048 bits)."""
    if alg == "ES384":
        jwk = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP384R1()), as_dict=True)
    elif alg == "RS384":
        jwk = RSAAlgorithm.to_jwk(rsa.generate_private_key(public_exponent=65537, key_size=2048),
                                  as_dict=True)
    else:
        raise ValueError(f"CDS clients sign with RS384 or ES384, not {alg}")
    return {**jwk, "kid": kid or uuid.uuid4().hex[:16], "alg": alg, "use": "sig"}


def public_jwk(private_jwk: Mapping) -> dict:
    return {name: private_jwk[name] for name in PUBLIC_MEMBERS if name in private_jwk}


def public_key_set(*private_jwks: Mapping) -> dict:
    return {"keys": [public_jwk(jwk) for jwk in private_jwks]}


# --- the demo EHR -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoCdsClient:
    iss: str
    private_jwk: dict


def demo_cds_client(settings: Settings) -> DemoCdsClient:
    """The demo EHR's CDS client: only with ALLIANCE_DEMO=1. Its public key is in
    deploy/demo-practice.json, so it is trusted by the demo practice and by nothing else; its
    `iss` is the demo EHR's FHIR base on this server, as the practice document names it."""
    if not settings.demo:
        raise RuntimeError("the demo CDS client key is for ALLIANCE_DEMO=1 only")
    document = json.loads(DEMO_CLIENT_FILE.read_text())
    return DemoCdsClient(f"{settings.public_url}/demo/fhir", document["private_jwk"])

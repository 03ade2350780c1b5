"""CDS Hooks "Trusting CDS Clients" over HTTP: signed JWTs from the spec's published P-384 key and
from keys made here (ES384, RS384) are accepted; every forged, misdirected, stale or replayed
token gets a 401 problem that names the failed check and says nothing about the patient — and
the request never reaches the cards."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import jwt
import pytest
from cds_support import (
    ISS,
    PATIENT_VIEW,
    Ehr,
    client_key,
    default_clients,
    hook_body,
    save_practice,
    spec_key_set,
    spec_private_key,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from service.bootstrap import bootstrap
from service.clinician.cds_client import public_jwk, sign_cds_jwt
from service.persistence.db import make_engine
from service.web import create_app

PATIENT = "pat-secret-4711"


@pytest.fixture
def ehr(services):
    save_practice(services)
    return Ehr(services)


def token(ehr: Ehr, key: dict | None = None, *, aud: str | list | None = None, **options) -> str:
    options.setdefault("now", ehr.services.clock())
    return sign_cds_jwt(key or client_key("ES384"), iss=options.pop("iss", ISS),
                        aud=aud if aud is not None else ehr.url(PATIENT_VIEW), **options)


def call(ehr: Ehr, raw_token: str, practice_id: str = "northside"):
    return ehr.post(f"/cds/{practice_id}/cds-services/{PATIENT_VIEW}", raw_token,
                    hook_body(PATIENT))


def assert_refused(answer, check: str) -> None:
    assert answer.status_code == 401, answer.get_data(as_text=True)
    assert answer.mimetype == "application/problem+json"
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    problem = answer.get_json()
    assert problem["check"] == check, problem
    assert problem["detail"].startswith(f"{check}: ")
    assert PATIENT not in answer.get_data(as_text=True)
    assert "cards" not in problem


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict, claims: dict, signature: bytes = b"") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}.{b64(signature)}"


def claims(ehr: Ehr, **changes) -> dict:
    now = int(ehr.services.clock().timestamp())
    return {"iss": ISS, "aud": ehr.url(PATIENT_VIEW), "exp": now + 300, "iat": now,
            "jti": f"jti-{now}-{len(changes)}", **changes}


# --- accepted -------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_tokens_signed_with_generated_keys_are_accepted(ehr, alg):
    answer = call(ehr, token(ehr, client_key(alg)))
    assert answer.status_code == 200 and answer.get_json() == {"cards": []}


def test_a_token_signed_with_the_specs_published_p384_key_is_accepted(services):
    save_practice(services, [{"iss": "https://fhir-ehr.example.com/", "jwks": spec_key_set()}])
    ehr = Ehr(services, key=spec_private_key(), iss="https://fhir-ehr.example.com/")
    assert ehr.hook(PATIENT).status_code == 200
    assert ehr.discovery().status_code == 200


def test_epic_style_extra_claims_and_an_audience_array_are_accepted(ehr):
    now = ehr.services.clock()
    raw = token(ehr, aud=["https://other.example/cds", ehr.url(PATIENT_VIEW)],
                sub="epic-client-id", nbf=int((now - timedelta(minutes=5)).timestamp()),
                tenant="2ddd6c3a")
    assert call(ehr, raw).status_code == 200


def test_clocks_may_differ_by_a_minute(ehr):
    now = ehr.services.clock()
    assert call(ehr, token(ehr, now=now + timedelta(seconds=50))).status_code == 200


def test_a_jku_equal_to_the_registered_key_set_url_is_accepted(services, httpserver):
    key_set_url = httpserver.url_for("/jwks")
    httpserver.expect_request("/jwks").respond_with_json(
        {"keys": [public_jwk(client_key("ES384"))]})
    save_practice(services, [{"iss": ISS, "jwks_url": key_set_url}])
    ehr = Ehr(services)
    assert call(ehr, token(ehr, jku=key_set_url)).status_code == 200


# --- refused, each naming its check -----------------------------------------------------------


def test_no_bearer_token(ehr):
    answer = ehr.client.post(f"/cds/northside/cds-services/{PATIENT_VIEW}", json=hook_body(PATIENT))
    assert_refused(answer, "authorization")
    answer = ehr.client.post(f"/cds/northside/cds-services/{PATIENT_VIEW}", json=hook_body(PATIENT),
                             headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_refused(answer, "authorization")


def test_a_bearer_token_that_is_not_a_jwt(ehr):
    assert_refused(call(ehr, "not-a-jwt"), "token")
    assert_refused(call(ehr, "a.b.c"), "token")


def test_alg_none_is_refused(ehr):
    raw = hand_made({"alg": "none", "typ": "JWT", "kid": "test-es384"}, claims(ehr))
    assert_refused(call(ehr, raw), "alg")
    raw = hand_made({"alg": "NONE", "typ": "JWT", "kid": "test-es384"}, claims(ehr))
    assert_refused(call(ehr, raw), "alg")


def test_hs256_keyed_with_the_clients_public_key_is_refused(ehr):
    """The classic key-confusion attack: HMAC with the public key (which anyone can read)."""
    public = jwt.PyJWK(public_jwk(client_key("RS384"))).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    for secret in (public, json.dumps(public_jwk(client_key("RS384"))).encode()):
        header = {"alg": "HS256", "typ": "JWT", "kid": "test-rs384"}
        unsigned = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims(ehr)).encode())}"
        signature = hmac.new(secret, unsigned.encode(), hashlib.sha256).digest()
        assert_refused(call(ehr, f"{unsigned}.{b64(signature)}"), "alg")


@pytest.mark.parametrize("alg", ["HS384", "HS512", "RS256", "ES256", "PS384", "EdDSA"])
def test_every_other_algorithm_is_refused(ehr, alg):
    raw = hand_made({"alg": alg, "typ": "JWT", "kid": "test-es384"}, claims(ehr), b"sig")
    assert_refused(call(ehr, raw), "alg")


def test_a_token_for_another_url_is_refused(ehr):
    assert_refused(call(ehr, token(ehr, aud=ehr.url("alliance-encounter-start"))), "aud")
    assert_refused(call(ehr, token(ehr, aud=ehr.url())), "aud")  # the discovery URL
    assert_refused(call(ehr, token(ehr, aud="https://surveys.test/cds/other/cds-services/"
                                            f"{PATIENT_VIEW}")), "aud")
    assert_refused(call(ehr, token(ehr, aud=[ehr.url(PATIENT_VIEW) + "/"])), "aud")


def test_an_expired_token_is_refused(ehr):
    now = ehr.services.clock()
    assert_refused(call(ehr, token(ehr, now=now - timedelta(minutes=10))), "exp")
    assert_refused(call(ehr, token(ehr, lifetime=timedelta(0))), "exp")


def test_a_token_issued_in_the_future_is_refused(ehr):
    now = ehr.services.clock()
    assert_refused(call(ehr, token(ehr, now=now + timedelta(minutes=2))), "iat")


def test_a_token_not_valid_yet_is_refused(ehr):
    nbf = int((ehr.services.clock() + timedelta(minutes=2)).timestamp())
    assert_refused(call(ehr, token(ehr, nbf=nbf)), "nbf")


@pytest.mark.parametrize("claim", ["exp", "iat", "jti", "aud"])
def test_a_token_without_a_required_claim_is_refused(ehr, claim):
    payload = claims(ehr)
    del payload[claim]
    key = client_key("ES384")
    raw = jwt.encode(payload, jwt.PyJWK(key).key, algorithm="ES384",
                     headers={"kid": key["kid"], "typ": "JWT"})
    assert_refused(call(ehr, raw), claim)


def test_a_replayed_jti_is_refused(ehr):
    raw = token(ehr)
    assert call(ehr, raw).status_code == 200
    assert_refused(call(ehr, raw), "jti")
    # the same jti in a new, validly signed token is still a replay
    again = token(ehr, jti=jwt.decode(raw, options={"verify_signature": False})["jti"])
    assert_refused(call(ehr, again), "jti")


def test_a_replay_is_refused_by_another_web_process_on_the_same_database(
        database, settings_for, clock, ehr):
    """Two app instances with their own engines (as two gunicorn workers or hosts have)."""
    url, _engine = database
    other_engine = make_engine(url)
    try:
        other = Ehr(bootstrap(settings_for(url), engine=other_engine, clock=clock))
        raw = token(ehr)
        assert call(ehr, raw).status_code == 200
        assert_refused(call(other, raw), "jti")
        fresh = token(ehr)
        assert call(other, fresh).status_code == 200
        assert_refused(call(ehr, fresh), "jti")
    finally:
        other_engine.dispose()


def test_an_issuer_the_practice_does_not_know_is_refused(ehr):
    assert_refused(call(ehr, token(ehr, iss="https://ehr.evil.test/fhir")), "iss")
    assert_refused(call(ehr, token(ehr, iss=ISS + "/")), "iss")


def test_a_foreign_jku_is_refused(ehr):
    assert_refused(call(ehr, token(ehr, jku="https://ehr.evil.test/jwks")), "jku")


def test_a_kid_not_in_the_set_is_refused(ehr):
    stranger = dict(client_key("ES384", kid="not-registered"))
    assert_refused(call(ehr, token(ehr, stranger)), "kid")
    raw = hand_made({"alg": "ES384", "typ": "JWT"}, claims(ehr), b"x" * 96)
    assert_refused(call(ehr, raw), "kid")


def test_a_kid_of_the_wrong_key_type_is_refused(ehr):
    """ES384 in the header, but the kid names the client's RSA key."""
    key = client_key("ES384")
    raw = jwt.encode(claims(ehr), jwt.PyJWK(key).key, algorithm="ES384",
                     headers={"kid": "test-rs384", "typ": "JWT"})
    assert_refused(call(ehr, raw), "kid")


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_a_short_rsa_key_is_refused(services):
    weak = RSAAlgorithm.to_jwk(rsa.generate_private_key(public_exponent=65537, key_size=1024),
                               as_dict=True)
    weak.update(kid="weak", alg="RS384")
    save_practice(services, [{"iss": ISS, "jwks": {"keys": [public_jwk(weak)]}}])
    ehr = Ehr(services)
    assert_refused(call(ehr, token(ehr, weak)), "kid")


def test_a_signature_from_another_key_or_over_other_claims_is_refused(ehr):
    impostor = dict(client_key("ES384", kid="impostor"), kid="test-es384")
    assert_refused(call(ehr, token(ehr, impostor)), "signature")
    header, _payload, signature = token(ehr).split(".")
    forged = b64(json.dumps(claims(ehr, iss=ISS, jti="forged")).encode())
    assert_refused(call(ehr, f"{header}.{forged}.{signature}"), "signature")


def test_an_unknown_practice_answers_exactly_like_an_unregistered_issuer(ehr):
    unknown = ehr.post(f"/cds/nowhere/cds-services/{PATIENT_VIEW}", token(ehr), hook_body(PATIENT))
    assert_refused(unknown, "iss")
    stranger = call(ehr, token(ehr, iss="https://ehr.evil.test/fhir"))
    assert unknown.get_json() == stranger.get_json()
    assert_refused(ehr.post("/cds/NOT..valid/cds-services/x", token(ehr), hook_body()), "iss")


def test_a_practice_without_a_cds_section_refuses_every_token(services):
    from service import practices
    from support import practice_document

    document = practices.validate_document(practice_document())
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=services.clock())
    ehr = Ehr(services)
    assert_refused(call(ehr, token(ehr)), "iss")


def test_discovery_and_feedback_need_a_token_too(ehr):
    assert_refused(ehr.client.get("/cds/northside/cds-services"), "authorization")
    answer = ehr.post(f"/cds/northside/cds-services/{PATIENT_VIEW}/feedback", token(ehr),
                      {"feedback": []})
    assert_refused(answer, "aud")  # a token for the service URL is not one for its feedback
    assert ehr.discovery().status_code == 200


def test_a_refused_request_changes_nothing(ehr, services):
    from service.persistence.tables import cds_feedback, cds_token_ids

    before = _count(services, cds_token_ids)
    assert_refused(call(ehr, token(ehr, aud=ehr.url())), "aud")
    answer = ehr.post(f"/cds/northside/cds-services/{PATIENT_VIEW}/feedback",
                      token(ehr, aud="https://elsewhere.test/feedback"),
                      {"feedback": [{"card": "x", "outcome": "accepted",
                                     "outcomeTimestamp": "2026-11-26T15:00:00Z"}]})
    assert_refused(answer, "aud")
    assert _count(services, cds_token_ids) == before
    assert _count(services, cds_feedback) == 0


def _count(services, table) -> int:
    from sqlalchemy import func, select

    with services.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_refusals_are_logged_with_the_check_and_no_patient_data(services, capsys):
    save_practice(services)
    ehr = Ehr(services, app=create_app(services=services))  # logging bound to captured stdout
    capsys.readouterr()
    assert_refused(call(ehr, token(ehr, aud=ehr.url())), "aud")
    assert ehr.hook(PATIENT).status_code == 200
    logged = capsys.readouterr().out
    assert '"check": "aud"' in logged
    assert PATIENT not in logged and ISS not in logged


def test_default_clients_hold_public_keys_only():
    for key in default_clients()[0]["jwks"]["keys"]:
        assert "d" not in key and "p" not in key

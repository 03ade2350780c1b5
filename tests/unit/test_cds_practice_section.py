"""The practice document's `cds_hooks` section, and the demo EHR's CDS client."""

from __future__ import annotations

import json

import jwt
import pytest

from service import practices
from service.clinician.cds_client import (
    DEMO_CLIENT_FILE,
    demo_cds_client,
    generate_private_jwk,
    public_jwk,
    public_key_set,
    sign_cds_jwt,
)
from service.config import Settings
from support import ROOT, TEST_SECRET_KEY, practice_document

KEY = generate_private_jwk("ES384", kid="k1")


def problems(section) -> list[str]:
    with pytest.raises(practices.InvalidPractice) as refused:
        practices.validate_document(practice_document(cds_hooks=section))
    return refused.value.problems


def test_a_section_with_a_key_set_url_or_an_inline_set_is_accepted():
    document = practices.validate_document(practice_document(cds_hooks={"clients": [
        {"iss": "https://ehr.example.org", "jwks_url": "https://ehr.example.org/jwks"},
        {"iss": "https://other.example.org", "jwks": public_key_set(KEY)}]}))
    assert document["cds_hooks"]["info_cards"] is True
    assert practices.validate_document(practice_document())["cds_hooks"] is None


@pytest.mark.parametrize("client, expected", [
    ({"iss": "https://e.test"}, "cds_hooks.clients.0.jwks_url: give exactly one of jwks_url"),
    ({"iss": "https://e.test", "jwks_url": "https://e.test/jwks", "jwks": public_key_set(KEY)},
     "cds_hooks.clients.0.jwks_url: give exactly one of jwks_url"),
    ({"iss": "https://e.test", "jwks_url": "ftp://e.test/jwks"}, "cds_hooks.clients.0.jwks_url"),
    ({"iss": "", "jwks_url": "https://e.test/jwks"}, "cds_hooks.clients.0.iss"),
    ({"iss": "https://e.test", "jwks": {"keys": [KEY]}},
     "keys[0]: holds private key material; give the public key only"),
    ({"iss": "https://e.test", "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}},
     "keys[0]: kty must be RSA or EC"),
    ({"iss": "https://e.test", "jwks": {"keys": [dict(public_jwk(KEY), alg="HS256")]}},
     "alg must be RS384 or ES384"),
    ({"iss": "https://e.test", "jwks": {"keys": [{"kty": "EC", "crv": "P-384"}]}},
     "keys[0]: needs a kid"),
    ({"iss": "https://e.test", "jwks": {"keys": []}}, "must be a JWK Set"),
    ({"iss": "https://e.test", "jwks_url": "https://e.test/jwks", "extra": 1},
     "cds_hooks.clients.0.extra: Unknown field."),
])
def test_a_wrong_client_is_refused_naming_the_field(client, expected):
    assert any(expected in line for line in problems({"clients": [client]})), problems(
        {"clients": [client]})


def test_clients_are_required_and_each_issuer_listed_once():
    assert any("cds_hooks.clients" in line for line in problems({"info_cards": True}))
    same = {"iss": "https://e.test", "jwks_url": "https://e.test/jwks"}
    twice = problems({"clients": [same, same]})
    assert any("each iss may be listed once" in line for line in twice)


def test_the_demo_practice_trusts_exactly_the_demo_ehr_key(tmp_path):
    document = practices.validate_document(
        json.loads((ROOT / "deploy" / "demo-practice.json").read_text()))
    demo = demo_cds_client(Settings.from_env({  # make run's settings
        "ALLIANCE_VAR_DIR": str(tmp_path), "ALLIANCE_SECRET_KEY": TEST_SECRET_KEY,
        "ALLIANCE_DEMO": "1"}))
    (client,) = document["cds_hooks"]["clients"]
    assert client["iss"] == demo.iss == "http://127.0.0.1:8000/demo/fhir"
    assert client["jwks"] == public_key_set(demo.private_jwk)
    assert json.loads(DEMO_CLIENT_FILE.read_text())["private_jwk"] == demo.private_jwk
    token = sign_cds_jwt(demo.private_jwk, iss=demo.iss, aud="https://x.test")
    (public,) = client["jwks"]["keys"]
    assert jwt.decode(token, jwt.PyJWK(public).key, algorithms=["ES384"], audience="https://x.test")


def test_the_demo_key_is_only_handed_out_in_demo_mode(tmp_path):
    env = {"ALLIANCE_VAR_DIR": str(tmp_path), "ALLIANCE_SECRET_KEY": TEST_SECRET_KEY}
    with pytest.raises(RuntimeError, match="ALLIANCE_DEMO=1"):
        demo_cds_client(Settings.from_env(env))
    client = demo_cds_client(Settings.from_env({**env, "ALLIANCE_DEMO": "1"}))
    assert client.private_jwk["alg"] == "ES384" and "d" in client.private_jwk

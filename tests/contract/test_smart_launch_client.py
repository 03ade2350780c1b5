"""The SMART launch client against an EHR's endpoints played by pytest-httpserver: discovery
(checked, cached), the token request (PKCE, client_secret_basic or private_key_jwt, no
redirects followed), and the id_token check."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from werkzeug import Request, Response

from integrations.ehr.smart_launch import SmartLaunchClient, SmartLaunchError
from support import PAYLOADS, loopback_network

CLIENT_ID = "alliance-trend"
APP = {"client_id": CLIENT_ID, "client_secret": "s3cret-value",
       "scope": "launch openid fhirUser patient/Patient.rs"}
SMART = PAYLOADS / "smart-backend"


def private_jwk(alg: str) -> dict:
    (key,) = [k for k in json.loads((SMART / f"{alg}.private.json").read_text())["keys"]
              if "d" in k]
    return key


def public_key(alg: str):
    (key,) = json.loads((SMART / f"{alg}.public.json").read_text())["keys"]
    return jwt.PyJWK(key).key


@pytest.fixture
def configuration(httpserver):
    document = {
        "issuer": httpserver.url_for("/fhir"),
        "jwks_uri": httpserver.url_for("/jwks"),
        "authorization_endpoint": httpserver.url_for("/authorize"),
        "token_endpoint": httpserver.url_for("/token"),
        "code_challenge_methods_supported": ["S256"],
    }
    httpserver.expect_request("/fhir/.well-known/smart-configuration").respond_with_json(document)
    return document


@pytest.fixture
def client():
    return SmartLaunchClient(network=loopback_network())


class SigningKey:
    def __init__(self, kid: str = "k1"):
        self.kid = kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {**public, "kid": self.kid, "alg": "RS256"}

    def id_token(self, issuer: str, **claims) -> str:
        now = int(time.time())
        body = {"iss": issuer, "sub": "u1", "aud": CLIENT_ID, "iat": now, "exp": now + 300,
                "nonce": "n-1", "fhirUser": "Practitioner/p1", **claims}
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": self.kid})


def test_discovery_is_checked_and_cached(httpserver, configuration, client):
    first = client.discover(httpserver.url_for("/fhir"))
    second = client.discover(httpserver.url_for("/fhir"))

    assert first == second
    assert first.token_endpoint == configuration["token_endpoint"]
    assert len([r for r, _ in httpserver.log if "smart-configuration" in r.path]) == 1


@pytest.mark.parametrize("change, problem", [
    ({"code_challenge_methods_supported": ["plain"]}, "PKCE with S256"),
    ({"token_endpoint": "http://ehr.example.org/token"}, "no usable token_endpoint"),
    ({"authorization_endpoint": None}, "no usable authorization_endpoint"),
])
def test_a_configuration_the_app_cannot_use_safely_is_refused(httpserver, client, change,
                                                              problem):
    document = {"authorization_endpoint": httpserver.url_for("/authorize"),
                "token_endpoint": httpserver.url_for("/token"), **change}
    httpserver.expect_request("/fhir/.well-known/smart-configuration").respond_with_json(document)

    with pytest.raises(SmartLaunchError) as refused:
        client.discover(httpserver.url_for("/fhir"))
    assert refused.value.status == 502 and problem in refused.value.message


def test_an_unreachable_configuration_is_a_clear_error(httpserver, client):
    httpserver.expect_request("/fhir/.well-known/smart-configuration").respond_with_data(
        "<html>gateway</html>", status=503)

    with pytest.raises(SmartLaunchError, match="answered 503"):
        client.discover(httpserver.url_for("/fhir"))


def test_the_authorize_url_carries_pkce_aud_launch_and_nonce(httpserver, configuration, client):
    config = client.discover(httpserver.url_for("/fhir"))

    # RFC 7636 appendix B: this verifier's S256 challenge is E9Melhoa2Ow…
    url = client.authorization_url(config, APP, redirect_uri="https://app.test/cb", state="st",
                                   code_verifier="dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
                                   nonce="n-1", launch="L1")

    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query == {"response_type": "code", "client_id": CLIENT_ID,
                     "redirect_uri": "https://app.test/cb", "scope": APP["scope"],
                     "state": "st", "aud": config.iss, "launch": "L1", "nonce": "n-1",
                     "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                     "code_challenge_method": "S256"}


def test_the_code_is_exchanged_with_the_verifier_and_basic_client_auth(httpserver, configuration,
                                                                      client):
    key = SigningKey()
    httpserver.expect_request("/jwks").respond_with_json({"keys": [key.jwk()]})
    seen = {}

    def token(request: Request) -> Response:
        seen.update(form=request.form.to_dict(), auth=request.authorization)
        return Response(json.dumps({"access_token": "at", "token_type": "Bearer",
                                    "patient": "pat-17", "id_token": key.id_token(
                                        configuration["issuer"])}),
                        content_type="application/json")

    httpserver.expect_request("/token", method="POST").respond_with_handler(token)
    config = client.discover(httpserver.url_for("/fhir"))

    grant = client.exchange_code(config, APP, redirect_uri="https://app.test/cb", code="c1",
                                 code_verifier="v" * 64, nonce="n-1")

    assert (grant.patient, grant.fhir_user) == ("pat-17", "Practitioner/p1")
    assert seen["form"] == {"grant_type": "authorization_code", "code": "c1",
                            "code_verifier": "v" * 64, "redirect_uri": "https://app.test/cb"}
    assert (seen["auth"].username, seen["auth"].password) == (CLIENT_ID, "s3cret-value")


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_private_key_jwt_signs_a_short_lived_assertion(httpserver, configuration, client, alg):
    seen = {}

    def token(request: Request) -> Response:
        seen.update(form=request.form.to_dict(), auth=request.headers.get("Authorization"))
        return Response(json.dumps({"access_token": "at", "token_type": "Bearer",
                                    "patient": "pat-17"}), content_type="application/json")

    httpserver.expect_request("/token", method="POST").respond_with_handler(token)
    app = {"client_id": CLIENT_ID, "private_key_jwk": private_jwk(alg), "scope": "launch"}
    config = client.discover(httpserver.url_for("/fhir"))

    client.exchange_code(config, app, redirect_uri="https://app.test/cb", code="c1",
                         code_verifier="v" * 64, nonce="n-1")

    form = seen["form"]
    assert seen["auth"] is None and "client_secret" not in form
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    header = jwt.get_unverified_header(form["client_assertion"])
    assert header["alg"] == alg and header["kid"] == private_jwk(alg)["kid"]
    claims = jwt.decode(form["client_assertion"], public_key(alg), algorithms=[alg],
                        audience=configuration["token_endpoint"])
    assert claims["iss"] == claims["sub"] == CLIENT_ID and claims["jti"]
    assert 0 < claims["exp"] - claims["iat"] <= 300


def test_a_redirect_from_the_token_endpoint_is_not_followed(httpserver, configuration, client):
    httpserver.expect_request("/token", method="POST").respond_with_data(
        "", status=302, headers={"Location": httpserver.url_for("/elsewhere")})
    config = client.discover(httpserver.url_for("/fhir"))

    with pytest.raises(SmartLaunchError, match="answered 302"):
        client.exchange_code(config, APP, redirect_uri="https://app.test/cb", code="c1",
                             code_verifier="v" * 64, nonce="n-1")
    assert not [r for r, _ in httpserver.log if r.path == "/elsewhere"]


def test_an_oauth_error_names_the_error(httpserver, configuration, client):
    httpserver.expect_request("/token", method="POST").respond_with_json(
        {"error": "invalid_grant"}, status=400)
    config = client.discover(httpserver.url_for("/fhir"))

    with pytest.raises(SmartLaunchError) as refused:
        client.exchange_code(config, APP, redirect_uri="https://app.test/cb", code="c1",
                             code_verifier="v" * 64, nonce="n-1")
    assert refused.value.status == 400 and "invalid_grant" in refused.value.message


def hostile_tokens(issuer: str, key: SigningKey) -> dict:
    public_pem = key.key.public_key().public_bytes(encoding=Encoding.PEM,
                                                   format=PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    claims = {"iss": issuer, "sub": "u1", "aud": CLIENT_ID, "iat": now, "exp": now + 300,
              "nonce": "n-1"}
    return {
        "other audience": key.id_token(issuer, aud="someone-else"),
        "other issuer": key.id_token("https://evil.example"),
        "expired": key.id_token(issuer, iat=now - 900, exp=now - 600),
        "issued in the future": key.id_token(issuer, iat=now + 900, exp=now + 1200),
        "wrong nonce": key.id_token(issuer, nonce="n-2"),
        "unknown kid": SigningKey("k9").id_token(issuer),
        "forged with another key": jwt.encode(claims, SigningKey().key, algorithm="RS256",
                                              headers={"kid": key.kid}),
        "alg none": jwt.encode(claims, None, algorithm="none", headers={"kid": key.kid}),
        "HS256 keyed with the public key": _hs256_with(public_pem, claims, key.kid),
    }


def _hs256_with(secret: bytes, claims: dict, kid: str) -> str:
    """What PyJWT refuses to make: an HS256 token keyed with the issuer's public key."""

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    signing_input = f"{part({'alg': 'HS256', 'kid': kid, 'typ': 'JWT'})}.{part(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def test_every_forged_or_foreign_id_token_is_refused(httpserver, configuration, client):
    key = SigningKey()
    httpserver.expect_request("/jwks").respond_with_json({"keys": [key.jwk()]})
    config = client.discover(httpserver.url_for("/fhir"))

    for case, token in hostile_tokens(configuration["issuer"], key).items():
        with pytest.raises(SmartLaunchError, match="id_token failed verification"):
            client.verify_id_token(token, config, CLIENT_ID, "n-1")
        assert case  # (named cases, for the reader)
    good = key.id_token(configuration["issuer"])
    assert client.verify_id_token(good, config, CLIENT_ID, "n-1")["fhirUser"] == "Practitioner/p1"


def test_a_rotated_key_is_found_by_reading_the_key_set_once_more(httpserver, configuration,
                                                                 client):
    old, new = SigningKey("old"), SigningKey("new")
    httpserver.expect_oneshot_request("/jwks").respond_with_json({"keys": [old.jwk()]})
    httpserver.expect_oneshot_request("/jwks").respond_with_json({"keys": [new.jwk()]})
    config = client.discover(httpserver.url_for("/fhir"))

    assert client.verify_id_token(old.id_token(configuration["issuer"]), config, CLIENT_ID, "n-1")
    assert client.verify_id_token(new.id_token(configuration["issuer"]), config, CLIENT_ID, "n-1")
    assert len([r for r, _ in httpserver.log if r.path == "/jwks"]) == 2

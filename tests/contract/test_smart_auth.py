"""SMART Backend Services against a token endpoint played by pytest-httpserver, with the
published example keys."""

from __future__ import annotations

import json

import jwt
import pytest
from werkzeug import Request, Response

from integrations.ehr.auth import (
    CLIENT_ASSERTION_TYPE,
    BearerAuth,
    NoAuth,
    SmartBackendAuth,
    build_auth,
    load_signing_key,
)
from integrations.ehr.errors import EhrAuthError, EhrTransientError
from integrations.ehr.fhir_client import FhirGateway
from integrations.http import build_session
from support import PAYLOADS, loopback_network

SMART = PAYLOADS / "smart-backend"
NOW = 1_790_000_000.0
CLIENT_ID = "alliance-feedback-northside"
SCOPE = "system/Observation.cu system/QuestionnaireResponse.cu system/Flag.cru"


def jwks(name: str) -> dict:
    return json.loads((SMART / name).read_text(encoding="utf-8"))


def private_jwk(alg: str) -> dict:
    (key,) = [k for k in jwks(f"{alg}.private.json")["keys"] if "d" in k]
    return key


def public_key(alg: str):
    (key,) = jwks(f"{alg}.public.json")["keys"]
    return jwt.PyJWK(key).key


EXAMPLE_TOKEN_RESPONSE = jwks("example-token-response.json")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class TokenEndpoint:
    """Records each token request's form and answers with queued token responses."""

    def __init__(self, *answers: tuple[int, dict]) -> None:
        self.answers = list(answers)
        self.forms: list[dict] = []
        self.content_types: list[str] = []

    def __call__(self, request: Request) -> Response:
        self.forms.append(request.form.to_dict())
        self.content_types.append(request.headers.get("Content-Type", ""))
        status, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return Response(json.dumps(body), status=status, content_type="application/json")

    @property
    def assertions(self) -> list[str]:
        return [form["client_assertion"] for form in self.forms]


def token(value: str, expires_in: int = 3600) -> tuple[int, dict]:
    return 200, {**EXAMPLE_TOKEN_RESPONSE, "access_token": value, "expires_in": expires_in}


@pytest.fixture
def clock() -> Clock:
    return Clock()


def smart_auth(httpserver, endpoint: TokenEndpoint, clock: Clock, alg: str = "RS384"):
    httpserver.expect_request("/auth/token", method="POST").respond_with_handler(endpoint)
    return SmartBackendAuth(
        token_url=httpserver.url_for("/auth/token"),
        client_id=CLIENT_ID,
        private_key_jwk=private_jwk(alg),
        scope=SCOPE,
        session=build_session(network=loopback_network()),
        clock=clock,
    )


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_token_request_carries_a_verifiable_client_assertion(httpserver, clock, alg):
    endpoint = TokenEndpoint((200, EXAMPLE_TOKEN_RESPONSE))
    auth = smart_auth(httpserver, endpoint, clock, alg)

    headers = auth.headers()

    assert headers == {"Authorization": f"Bearer {EXAMPLE_TOKEN_RESPONSE['access_token']}"}
    (form,) = endpoint.forms
    assert endpoint.content_types[0] == "application/x-www-form-urlencoded"
    assert form["grant_type"] == "client_credentials"
    assert form["scope"] == SCOPE
    assert form["client_assertion_type"] == CLIENT_ASSERTION_TYPE
    header = jwt.get_unverified_header(form["client_assertion"])
    assert header == {"alg": alg, "kid": private_jwk(alg)["kid"], "typ": "JWT"}
    claims = jwt.decode(
        form["client_assertion"],
        public_key(alg),
        algorithms=[alg],
        audience=httpserver.url_for("/auth/token"),
        options={"verify_exp": False, "verify_iat": False},  # the test clock is not wall time
    )
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert NOW < claims["exp"] <= NOW + 300
    assert claims["jti"]


def test_the_token_is_cached_until_60_seconds_before_expiry(httpserver, clock):
    endpoint = TokenEndpoint(token("first", expires_in=3600), token("second"))
    auth = smart_auth(httpserver, endpoint, clock)

    assert auth.headers()["Authorization"] == "Bearer first"
    clock.now = NOW + 3539
    assert auth.headers()["Authorization"] == "Bearer first"
    assert len(endpoint.forms) == 1
    clock.now = NOW + 3540
    assert auth.headers()["Authorization"] == "Bearer second"
    assert len(endpoint.forms) == 2
    first_jti, second_jti = (jwt.decode(a, options={"verify_signature": False})["jti"]
                             for a in endpoint.assertions)
    assert first_jti != second_jti


def test_a_short_lived_token_is_still_reused_for_half_its_life(httpserver, clock):
    endpoint = TokenEndpoint(token("short", expires_in=30), token("next"))
    auth = smart_auth(httpserver, endpoint, clock)

    auth.headers()
    clock.now = NOW + 14
    assert auth.headers()["Authorization"] == "Bearer short"
    clock.now = NOW + 15
    assert auth.headers()["Authorization"] == "Bearer next"


def test_invalidate_forces_a_new_token(httpserver, clock):
    endpoint = TokenEndpoint(token("first"), token("second"))
    auth = smart_auth(httpserver, endpoint, clock)
    auth.headers()

    auth.invalidate()

    assert auth.headers()["Authorization"] == "Bearer second"


def test_a_token_response_without_expires_in_lasts_300_seconds(httpserver, clock):
    endpoint = TokenEndpoint((200, {"access_token": "a", "token_type": "bearer"}), token("b"))
    auth = smart_auth(httpserver, endpoint, clock)
    auth.headers()

    clock.now = NOW + 239
    assert auth.headers()["Authorization"] == "Bearer a"
    clock.now = NOW + 240
    assert auth.headers()["Authorization"] == "Bearer b"


@pytest.mark.parametrize(
    ("answer", "error", "text"),
    [
        ((400, {"error": "invalid_client"}), EhrAuthError, "invalid_client"),
        ((401, {"error": "invalid_client"}), EhrAuthError, "invalid_client"),
        ((200, {"token_type": "bearer"}), EhrAuthError, "without an access_token"),
        ((503, {}), EhrTransientError, "503"),
        ((429, {}), EhrTransientError, "429"),
    ],
)
def test_token_endpoint_failures(httpserver, clock, answer, error, text):
    auth = smart_auth(httpserver, TokenEndpoint(answer), clock)

    with pytest.raises(error, match=text):
        auth.headers()


def test_token_endpoint_retry_after_is_reported(httpserver, clock):
    httpserver.expect_request("/auth/token").respond_with_data(
        "", status=429, headers={"Retry-After": "12"}
    )
    auth = SmartBackendAuth(
        httpserver.url_for("/auth/token"), CLIENT_ID, private_jwk("ES384"), SCOPE,
        build_session(network=loopback_network()), clock,
    )

    with pytest.raises(EhrTransientError) as raised:
        auth.headers()

    assert raised.value.retry_after == 12.0


def test_fhir_401_fetches_a_new_token_once(httpserver, clock):
    endpoint = TokenEndpoint(token("revoked"), token("fresh"))
    auth = smart_auth(httpserver, endpoint, clock)
    httpserver.expect_request(
        "/fhir/Patient/pat-17", headers={"Authorization": "Bearer revoked"}
    ).respond_with_data("", status=401)
    httpserver.expect_request(
        "/fhir/Patient/pat-17", headers={"Authorization": "Bearer fresh"}
    ).respond_with_json({"resourceType": "Patient", "id": "pat-17"})
    gateway = FhirGateway(httpserver.url_for("/fhir"), auth, network=loopback_network())

    assert gateway.read("Patient", "pat-17")["id"] == "pat-17"
    assert len(endpoint.forms) == 2
    assert gateway.read("Patient", "pat-17")["id"] == "pat-17"
    assert len(endpoint.forms) == 2, "the fresh token is cached"


def test_our_key_loading_reproduces_the_published_rs384_assertion():
    # RS384 (PKCS#1 v1.5) is deterministic, so the spec's worked example must come out exactly.
    vector = jwks("rs384-client-assertion-vector.json")
    key = load_signing_key(jwks("RS384.private.json"))

    signed = jwt.encode(
        vector["jwt_payload"],
        key.key,
        algorithm=key.algorithm_name,
        headers={"kid": key.key_id, "typ": "JWT"},
    )

    assert signed == vector["signed_jwt"]


def test_build_auth_kinds(clock):
    session = build_session(network=loopback_network())
    smart = build_auth(
        {
            "type": "smart-backend",
            "token_url": "https://ehr.example.org/token",
            "client_id": CLIENT_ID,
            "private_key_jwk": private_jwk("ES384"),
            "scope": SCOPE,
        },
        session,
        clock,
    )

    assert isinstance(build_auth({"type": "none"}, session), NoAuth)
    assert build_auth({"type": "bearer", "token": "t"}, session).headers() == {
        "Authorization": "Bearer t"
    }
    assert isinstance(smart, SmartBackendAuth)


SMART_BASE = {
    "type": "smart-backend",
    "token_url": "https://ehr.example.org/token",
    "client_id": CLIENT_ID,
    "scope": SCOPE,
}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"private_key_jwk": None}, "missing: private_key_jwk"),
        ({"private_key_jwk": private_jwk("RS384"), "token_url": ""}, "missing: token_url"),
        ({"private_key_jwk": {**private_jwk("RS384"), "alg": "HS256"}}, "alg"),
        ({"private_key_jwk": {**private_jwk("RS384"), "kid": ""}}, "kid"),
        ({"private_key_jwk": jwks("ES384.public.json")["keys"][0]}, "private key"),
        ({"private_key_jwk": jwks("ES384.public.json")}, "exactly one private key"),
    ],
)
def test_build_auth_refuses_bad_smart_configs(changes, message):
    with pytest.raises(ValueError, match=message):
        build_auth({**SMART_BASE, **changes}, build_session())


def test_a_jwks_with_one_private_key_is_accepted():
    key = load_signing_key(jwks("ES384.private.json"))

    assert (key.algorithm_name, key.key_id) == ("ES384", "cd520211e5661dbba2256f67f6d53f97")


def test_static_providers_ignore_invalidate():
    bearer = BearerAuth("t")
    bearer.invalidate()
    NoAuth().invalidate()

    assert bearer.headers() == {"Authorization": "Bearer t"}
    assert NoAuth().headers() == {}

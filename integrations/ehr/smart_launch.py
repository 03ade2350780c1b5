"""SMART App Launch 2.x for the trend app: discovery, the authorize URL with PKCE, the code
exchange and the id_token check. OAuth is authlib's (requests client); JOSE is PyJWT's."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import jwt
import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.jwk import ECKey, RSAKey

from integrations.http import build_session, guard
from integrations.network import DestinationRefused
from integrations.settings import PUBLIC_ONLY, NetworkSettings

# Discovery documents and key sets are re-read at most this often per issuer.
METADATA_TTL_SECONDS = 300.0
MAX_CACHED_DOCUMENTS = 256
HTTP_TIMEOUT = (3.05, 5.0)
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "ES256", "ES384"]  # asymmetric only; SHALL: RS256
CLOCK_SKEW_SECONDS = 60
ASSERTION_LIFETIME_SECONDS = 240  # SMART: a client assertion lives at most 5 minutes


class SmartLaunchError(Exception):
    """The launch cannot go on; `status` is 400 (bad request) or 502 (the EHR's side failed)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class SmartConfiguration:
    """The parts of `{iss}/.well-known/smart-configuration` the app uses."""

    iss: str
    authorization_endpoint: str
    token_endpoint: str
    issuer: str | None
    jwks_uri: str | None


@dataclass(frozen=True)
class TokenGrant:
    """What the app keeps from a token response: the launch context, never the tokens."""

    patient: str
    fhir_user: str | None


class _TimedCache:
    """A small per-process cache of fetched JSON documents with a bounded lifetime."""

    def __init__(self, ttl: float = METADATA_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.ttl, self.clock = ttl, clock
        self._items: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, load: Callable[[], object]) -> object:
        now = self.clock()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and now - hit[0] < self.ttl:
                return hit[1]
        value = load()  # outside the lock: a slow issuer must not stall the others
        with self._lock:
            if len(self._items) >= MAX_CACHED_DOCUMENTS:
                self._items.clear()
            self._items[key] = (now, value)
        return value

    def forget(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


class SmartLaunchClient:
    """One per process: holds the HTTP session and the discovery and key-set caches."""

    def __init__(self, session: requests.Session | None = None,
                 clock: Callable[[], float] = time.time,
                 network: NetworkSettings = PUBLIC_ONLY) -> None:
        self.session = session or build_session(HTTP_TIMEOUT, network=network)
        self.clock = clock
        self.network = network
        self._documents = _TimedCache()

    def discover(self, iss: str) -> SmartConfiguration:
        """The issuer's SMART configuration (cached), checked for what an EHR launch needs."""
        url = iss.rstrip("/") + "/.well-known/smart-configuration"
        document = self._documents.get(url, lambda: self._fetch_json(url, "smart-configuration"))
        return _configuration(iss, document)

    def authorization_url(self, config: SmartConfiguration, app: Mapping, *, redirect_uri: str,
                          state: str, code_verifier: str, nonce: str,
                          launch: str | None) -> str:
        """The authorize redirect of SMART App Launch (PKCE S256, aud = iss)."""
        scope = app["scope"] if launch else _standalone_scope(app["scope"])
        extra = {"aud": config.iss, "launch": launch} if launch else {"aud": config.iss}
        if "openid" in scope.split():
            extra["nonce"] = nonce
        client = OAuth2Session(app["client_id"], scope=scope, redirect_uri=redirect_uri,
                               code_challenge_method="S256")
        url, _state = client.create_authorization_url(
            config.authorization_endpoint, state=state, code_verifier=code_verifier, **extra)
        return url

    def exchange_code(self, config: SmartConfiguration, app: Mapping, *, redirect_uri: str,
                      code: str, code_verifier: str, nonce: str) -> TokenGrant:
        """Trade the code for a token response; keep only its patient and verified fhirUser."""
        body = self._token_response(config, app, redirect_uri, code, code_verifier)
        patient = body.get("patient")
        if not isinstance(patient, str) or not patient:
            raise SmartLaunchError(502, "the EHR granted no patient context for this launch")
        fhir_user = None
        if body.get("id_token"):
            claims = self.verify_id_token(body["id_token"], config, app["client_id"], nonce)
            fhir_user = claims.get("fhirUser") or claims.get("profile")
        if not isinstance(fhir_user, str):
            fhir_user = None
        return TokenGrant(patient=patient, fhir_user=fhir_user)

    def verify_id_token(self, token: str, config: SmartConfiguration, client_id: str,
                        nonce: str) -> dict:
        """OpenID Connect checks: signature by the issuer's key set, iss, aud, exp, iat, nonce."""
        issuer, jwks_uri = self._openid_issuer(config)
        try:
            header = jwt.get_unverified_header(token)
            key = self._signing_key(jwks_uri, header.get("kid"))
            claims = jwt.decode(token, key, algorithms=ID_TOKEN_ALGORITHMS, audience=client_id,
                                issuer=issuer, leeway=CLOCK_SKEW_SECONDS,
                                options={"require": ["iss", "aud", "exp", "iat", "sub"]})
        except jwt.PyJWTError as error:
            raise SmartLaunchError(
                502, f"the EHR's id_token failed verification: {error}") from None
        if claims["iat"] > self.clock() + CLOCK_SKEW_SECONDS:
            raise SmartLaunchError(502, "the EHR's id_token failed verification: iat in the future")
        if claims.get("nonce") != nonce:
            raise SmartLaunchError(502, "the EHR's id_token failed verification: wrong nonce")
        return claims

    def _token_response(self, config: SmartConfiguration, app: Mapping, redirect_uri: str,
                        code: str, code_verifier: str) -> dict:
        client = _oauth_client(app, config.token_endpoint)
        guard(client, self.network)  # the same destination rules as every other call
        client.register_compliance_hook("access_token_response", _refuse_non_json_answers)
        try:
            token = client.fetch_token(
                config.token_endpoint, grant_type="authorization_code", code=code,
                code_verifier=code_verifier, redirect_uri=redirect_uri,
                allow_redirects=False, timeout=HTTP_TIMEOUT)
        except OAuthError as error:
            raise SmartLaunchError(
                400, f"the EHR refused the authorization code: {error.error}") from error
        except requests.RequestException as error:
            raise SmartLaunchError(
                502, f"the EHR's token endpoint failed: {type(error).__name__}") from None
        except DestinationRefused as error:
            raise SmartLaunchError(502, f"the EHR's token endpoint was not called: {error}") \
                from None
        finally:
            client.close()
        return dict(token)

    def _openid_issuer(self, config: SmartConfiguration) -> tuple[str, str]:
        if config.issuer and config.jwks_uri:
            return config.issuer, config.jwks_uri
        issuer = config.issuer or config.iss
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = self._documents.get(url, lambda: self._fetch_json(url, "openid-configuration"))
        jwks_uri = document.get("jwks_uri") if isinstance(document, dict) else None
        if not isinstance(jwks_uri, str) or not _acceptable_endpoint(jwks_uri):
            raise SmartLaunchError(502, "the EHR sent an id_token but publishes no jwks_uri")
        return document.get("issuer") or issuer, jwks_uri

    def _signing_key(self, jwks_uri: str, kid: str | None):
        keys = self._key_set(jwks_uri)
        if kid not in keys:
            # A rotated key: read the set again, once, before refusing.
            self._documents.forget(jwks_uri)
            keys = self._key_set(jwks_uri)
        if kid not in keys:
            raise jwt.InvalidTokenError(f"no key {kid!r} in the issuer's key set")
        return keys[kid]

    def _key_set(self, jwks_uri: str) -> dict:
        document = self._documents.get(jwks_uri, lambda: self._fetch_json(jwks_uri, "JWK Set"))
        try:
            key_set = jwt.PyJWKSet.from_dict(document)
        except (jwt.PyJWTError, TypeError, ValueError, KeyError):
            raise SmartLaunchError(502, "the EHR's JWK Set cannot be read") from None
        return {key.key_id: key for key in key_set.keys}

    def _fetch_json(self, url: str, what: str) -> dict:
        try:
            answer = self.session.get(url, headers={"Accept": "application/json"},
                                      allow_redirects=False)
        except requests.RequestException as error:
            raise SmartLaunchError(
                502, f"the EHR's {what} could not be read: {type(error).__name__}") from None
        except DestinationRefused as error:
            raise SmartLaunchError(502, f"the EHR's {what} was not read: {error}") from None
        if answer.status_code != 200:
            raise SmartLaunchError(502, f"the EHR's {what} answered {answer.status_code}")
        try:
            document = answer.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise SmartLaunchError(502, f"the EHR's {what} is not a JSON object")
        return document


def _configuration(iss: str, document: Mapping) -> SmartConfiguration:
    endpoints = {}
    for name in ("authorization_endpoint", "token_endpoint"):
        url = document.get(name)
        if not isinstance(url, str) or not _acceptable_endpoint(url):
            raise SmartLaunchError(502, f"the EHR's smart-configuration has no usable {name}")
        endpoints[name] = url
    methods = document.get("code_challenge_methods_supported")
    # athena once omitted the list while PKCE worked; a list without S256 is a refusal.
    if isinstance(methods, list) and "S256" not in methods:
        raise SmartLaunchError(502, "the EHR does not support PKCE with S256")
    jwks_uri = document.get("jwks_uri")
    issuer = document.get("issuer")
    return SmartConfiguration(
        iss=iss, issuer=issuer if isinstance(issuer, str) else None,
        jwks_uri=jwks_uri if isinstance(jwks_uri, str) and _acceptable_endpoint(jwks_uri) else None,
        **endpoints)


def _acceptable_endpoint(url: str) -> bool:
    """https, or plain http on the loopback interface only (the demo and the tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and is_loopback(parts.hostname)


def is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _standalone_scope(scope: str) -> str:
    """Without an EHR's launch id, ask for the patient to be picked at the EHR."""
    words = [("launch/patient" if word == "launch" else word) for word in scope.split()]
    if "launch/patient" not in words:
        words.append("launch/patient")
    return " ".join(dict.fromkeys(words))


class _ShortLivedPrivateKeyJWT(PrivateKeyJWT):
    """authlib's private_key_jwt with the JWK's own alg and kid and a SMART-length lifetime."""

    def __init__(self, token_endpoint: str, jwk: Mapping):
        super().__init__(token_endpoint, headers={"kid": jwk["kid"], "typ": "JWT"},
                         alg=jwk["alg"])
        key_class = ECKey if jwk.get("kty") == "EC" else RSAKey
        self.key = key_class.import_key(dict(jwk))

    def sign(self, auth, token_endpoint):
        from authlib.oauth2.rfc7523.assertion import private_key_jwt_sign

        return private_key_jwt_sign(self.key, client_id=auth.client_id,
                                    token_endpoint=token_endpoint, header=dict(self.headers),
                                    alg=self.alg, expires_in=ASSERTION_LIFETIME_SECONDS)


def _oauth_client(app: Mapping, token_endpoint: str) -> OAuth2Session:
    jwk = app.get("private_key_jwk")
    if jwk:
        client = OAuth2Session(app["client_id"], "unused",
                               token_endpoint_auth_method="private_key_jwt")
        client.register_client_auth_method(_ShortLivedPrivateKeyJWT(token_endpoint, jwk))
        return client
    return OAuth2Session(app["client_id"], app["client_secret"],
                         token_endpoint_auth_method="client_secret_basic")


def _refuse_non_json_answers(response: requests.Response) -> requests.Response:
    # A redirect or an HTML error page from a token endpoint is a failure, never a token.
    if response.status_code != 200 and not _is_oauth_error(response):
        raise SmartLaunchError(502, f"the EHR's token endpoint answered {response.status_code}")
    return response


def _is_oauth_error(response: requests.Response) -> bool:
    if response.status_code not in (400, 401):
        return False
    try:
        return isinstance(response.json(), dict)
    except ValueError:
        return False

"""How FHIR requests authenticate: none, a static bearer token, or SMART Backend Services."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Protocol

import jwt
import requests

from integrations.ehr.errors import EhrAuthError, EhrTransientError, refused_destination
from integrations.http import parse_retry_after
from integrations.network import DestinationRefused

Clock = Callable[[], float]

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SIGNING_ALGORITHMS = ("RS384", "ES384")
# SMART allows exp at most 5 minutes ahead; staying under it tolerates a token server whose
# clock runs a little behind ours.
ASSERTION_LIFETIME_SECONDS = 240
REFRESH_MARGIN_SECONDS = 60
# SMART recommends 300 s tokens; used when a server omits expires_in.
DEFAULT_TOKEN_LIFETIME_SECONDS = 300


class AuthProvider(Protocol):
    """Supplies the headers that authenticate one FHIR request."""

    def headers(self) -> dict[str, str]:
        """Return the authentication headers for the next request."""
        ...

    def invalidate(self) -> None:
        """Forget any cached credential (the server answered 401)."""
        ...


class NoAuth:
    """For open FHIR endpoints (the embedded demo, test servers)."""

    def headers(self) -> dict[str, str]:
        """Return no headers."""
        return {}

    def invalidate(self) -> None:
        """Nothing cached, nothing to forget."""


class BearerAuth:
    """A static bearer token issued to the practice out of band."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("ehr.auth.token must not be empty")
        self._token = token

    def headers(self) -> dict[str, str]:
        """Return the Authorization header with the static token."""
        return {"Authorization": f"Bearer {self._token}"}

    def invalidate(self) -> None:
        """A static token cannot be refreshed; the retry simply repeats it."""


class SmartBackendAuth:
    """SMART Backend Services: client_credentials grant with a signed JWT client assertion."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        private_key_jwk: Mapping,
        scope: str,
        session: requests.Session,
        clock: Clock = time.time,
    ) -> None:
        self._token_url = token_url
        self._client_id = client_id
        self._scope = scope
        self._session = session
        self._clock = clock
        self._signing_key = load_signing_key(private_key_jwk)
        self._access_token: str | None = None
        self._refresh_at = 0.0

    def headers(self) -> dict[str, str]:
        """Return a bearer header, requesting a new access token when the cached one is due."""
        if self._access_token is None or self._clock() >= self._refresh_at:
            self._request_token()
        return {"Authorization": f"Bearer {self._access_token}"}

    def invalidate(self) -> None:
        """Drop the cached token so the next request fetches a fresh one."""
        self._access_token = None

    def client_assertion(self) -> str:
        """Sign a fresh, single-use client assertion JWT for the token endpoint."""
        now = int(self._clock())
        claims = {
            "iss": self._client_id,
            "sub": self._client_id,
            "aud": self._token_url,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECONDS,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(
            claims,
            self._signing_key.key,
            algorithm=self._signing_key.algorithm_name,
            headers={"kid": self._signing_key.key_id, "typ": "JWT"},
        )

    def _request_token(self) -> None:
        requested_at = self._clock()
        form = {
            "grant_type": "client_credentials",
            "scope": self._scope,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": self.client_assertion(),
        }
        try:
            # Never follow a redirect: a 307 would re-post the signed client assertion to
            # whatever host the Location names. A redirect is refused as an answer.
            response = self._session.post(
                self._token_url, data=form, headers={"Accept": "application/json"},
                allow_redirects=False,
            )
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise EhrTransientError(f"token endpoint unreachable: {type(exc).__name__}") from exc
        except DestinationRefused as exc:
            raise refused_destination("SMART token request", exc) from None
        _raise_for_token_status(response, requested_at)
        body = _json_or_none(response) or {}
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise EhrAuthError(
                "token endpoint answered without an access_token", response.status_code
            )
        lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME_SECONDS)
        # Short-lived tokens would otherwise never be reused: keep at least half their life.
        margin = min(REFRESH_MARGIN_SECONDS, lifetime / 2)
        self._access_token = token
        self._refresh_at = requested_at + lifetime - margin


class SigningKey:
    """A private JWK prepared for PyJWT: key object, algorithm and kid."""

    def __init__(self, jwk: Mapping) -> None:
        algorithm = jwk.get("alg")
        if algorithm not in SIGNING_ALGORITHMS:
            raise ValueError(f"private_key_jwk.alg must be one of {SIGNING_ALGORITHMS}")
        if not jwk.get("kid"):
            raise ValueError("private_key_jwk.kid is required")
        if "d" not in jwk:
            raise ValueError("private_key_jwk must be a private key (no 'd' member)")
        self.key = jwt.PyJWK(dict(jwk), algorithm).key
        self.algorithm_name: str = algorithm
        self.key_id: str = jwk["kid"]


def load_signing_key(jwk_or_jwks: Mapping) -> SigningKey:
    """Load a private JWK; a JWKS (as the SMART examples publish) yields its private key."""
    if "keys" in jwk_or_jwks:
        private_keys = [key for key in jwk_or_jwks["keys"] if "d" in key]
        if len(private_keys) != 1:
            raise ValueError("private_key_jwk as a JWKS must hold exactly one private key")
        return SigningKey(private_keys[0])
    return SigningKey(jwk_or_jwks)


def build_auth(
    auth_config: Mapping, session: requests.Session, clock: Clock = time.time
) -> AuthProvider:
    """Build the AuthProvider for a practice's ehr.auth block (CONTRACT §2)."""
    kind = auth_config.get("type", "none")
    if kind == "none":
        return NoAuth()
    if kind == "bearer":
        return BearerAuth(auth_config.get("token", ""))
    if kind == "smart-backend":
        missing = [
            name
            for name in ("token_url", "client_id", "private_key_jwk", "scope")
            if not auth_config.get(name)
        ]
        if missing:
            raise ValueError(f"ehr.auth (smart-backend) is missing: {', '.join(missing)}")
        return SmartBackendAuth(
            token_url=auth_config["token_url"],
            client_id=auth_config["client_id"],
            private_key_jwk=auth_config["private_key_jwk"],
            scope=auth_config["scope"],
            session=session,
            clock=clock,
        )
    raise ValueError(f"ehr.auth.type must be none, bearer or smart-backend, not {kind!r}")


def _raise_for_token_status(response: requests.Response, now: float) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
        raise EhrTransientError(f"token endpoint answered {status}", retry_after)
    if 300 <= status < 400:
        raise EhrAuthError(f"token endpoint redirected ({status}); redirects are not followed: "
                           "set ehr.auth.token_url to the endpoint itself", status)
    error = (_json_or_none(response) or {}).get("error", "unknown error")
    raise EhrAuthError(f"token request refused ({status}): {error}", status)


def _json_or_none(response: requests.Response) -> dict | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None

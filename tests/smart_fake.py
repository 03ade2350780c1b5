"""An EHR's SMART authorization server on pytest-httpserver, strict as a real one: registered
client and redirect URI, PKCE S256 checked at the token endpoint, single-use codes that
expire, `state` required and echoed, `aud` equal to the FHIR base, and an RS256 id_token."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug import Request, Response

CLIENT_ID = "alliance-trend"
CLIENT_SECRET = "trend-secret-0123456789"
CODE_LIFETIME = 60
KID = "fake-ehr-1"


@dataclass
class Issued:
    client_id: str
    redirect_uri: str
    challenge: str
    patient: str
    nonce: str | None
    scope: str
    issued_at: float
    used: bool = False


@dataclass
class FakeSmartServer:
    """Serves /fhir/.well-known/smart-configuration, /auth/authorize, /auth/token, /auth/jwks,
    and (for the browser tests) /ehr, an EHR page that frames the app."""

    httpserver: object
    redirect_uri: str
    patient: str = "pat-17"
    fhir_user: str = "Practitioner/dr-ana"
    client_secret: str = CLIENT_SECRET
    token_answer: dict | None = None  # replaces the token response when set
    id_token_claims: dict = field(default_factory=dict)  # merged into the id_token
    launches: dict = field(default_factory=dict)  # launch id → patient
    codes: dict = field(default_factory=dict)
    refusals: list = field(default_factory=list)  # what the server refused, for assertions
    token_requests: list = field(default_factory=list)
    consent_page: bool = False  # answer authorize with an "Allow" link instead of a redirect

    def __post_init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        server = self.httpserver
        server.expect_request("/fhir/.well-known/smart-configuration").respond_with_json(
            self.configuration())
        server.expect_request("/auth/authorize").respond_with_handler(self._authorize)
        server.expect_request("/auth/token", method="POST").respond_with_handler(self._token)
        server.expect_request("/auth/jwks").respond_with_json(self.jwks())

    @property
    def iss(self) -> str:
        return self.httpserver.url_for("/fhir")

    @property
    def origin(self) -> str:
        return self.httpserver.url_for("/").rstrip("/")

    def configuration(self) -> dict:
        return {
            "issuer": self.iss,
            "jwks_uri": self.httpserver.url_for("/auth/jwks"),
            "authorization_endpoint": self.httpserver.url_for("/auth/authorize"),
            "token_endpoint": self.httpserver.url_for("/auth/token"),
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "capabilities": ["launch-ehr", "launch-standalone", "client-confidential-symmetric",
                             "context-ehr-patient", "sso-openid-connect", "permission-v2"],
        }

    def jwks(self) -> dict:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": KID, "alg": "RS256", "use": "sig"}]}

    def new_launch(self, patient: str | None = None) -> str:
        """What the EHR does before it opens the app: a launch id bound to a patient."""
        launch = secrets.token_urlsafe(12)
        self.launches[launch] = patient or self.patient
        return launch

    def launch_url(self, app_base: str, practice_id: str, launch: str | None = None) -> str:
        query = {"iss": self.iss, "launch": launch or self.new_launch()}
        return f"{app_base}/smart/{practice_id}/launch?{urlencode(query)}"

    # -- endpoints --------------------------------------------------------------------------

    def _authorize(self, request: Request) -> Response:
        args = request.args
        if args.get("client_id") != CLIENT_ID or args.get("redirect_uri") != self.redirect_uri:
            return self._refuse("unknown client or redirect_uri", 400)
        problem = self._authorize_problem(args)
        if problem:
            self.refusals.append(problem)
            query = {"error": "invalid_request", "error_description": problem}
            if args.get("state"):
                query["state"] = args["state"]
            return _redirect(f"{self.redirect_uri}?{urlencode(query)}")
        code = secrets.token_urlsafe(24)
        launch = args.get("launch")
        self.codes[code] = Issued(CLIENT_ID, self.redirect_uri, args["code_challenge"],
                                  self.launches[launch] if launch else self.patient,
                                  args.get("nonce"), args["scope"], time.time())
        back = f"{self.redirect_uri}?{urlencode({'code': code, 'state': args['state']})}"
        if self.consent_page:
            return Response(f'<!doctype html><title>Allow</title><a id="allow" href="{back}">'
                            'Allow</a>', content_type="text/html")
        return _redirect(back)

    def _authorize_problem(self, args) -> str | None:
        if args.get("response_type") != "code":
            return "response_type must be code"
        if len(args.get("state", "")) < 22:  # SMART: at least 122 bits of entropy
            return "state missing or too short"
        if args.get("aud") != self.iss:
            return "aud must be the FHIR base URL"
        if args.get("code_challenge_method") != "S256" or len(args.get("code_challenge", "")) != 43:
            return "PKCE S256 required"
        if "launch" in args and args["launch"] not in self.launches:
            return "unknown launch"
        if "openid" in args.get("scope", "").split() and not args.get("nonce"):
            return "nonce required with openid"
        return None

    def _token(self, request: Request) -> Response:
        form = request.form.to_dict()
        self.token_requests.append({"form": form, "authorization": request.headers.get(
            "Authorization", "")})
        if request.authorization is None or (request.authorization.username,
                                             request.authorization.password) != (
                CLIENT_ID, self.client_secret):
            return self._refuse("invalid_client", 401)
        issued = self.codes.get(form.get("code", ""))
        if form.get("grant_type") != "authorization_code" or issued is None:
            return self._refuse("invalid_grant", 400)
        if issued.used or time.time() - issued.issued_at > CODE_LIFETIME:
            return self._refuse("invalid_grant", 400)
        issued.used = True
        if form.get("redirect_uri") != issued.redirect_uri:
            return self._refuse("invalid_grant", 400)
        if _s256(form.get("code_verifier", "")) != issued.challenge:
            return self._refuse("invalid_grant", 400, "PKCE verifier does not match")
        answer = self.token_answer or self._token_body(issued)
        return Response(json.dumps(answer), status=200, content_type="application/json",
                        headers={"Cache-Control": "no-store"})

    def _token_body(self, issued: Issued) -> dict:
        now = int(time.time())
        claims = {"iss": self.iss, "sub": "dr-ana", "aud": CLIENT_ID, "iat": now,
                  "exp": now + 300, "fhirUser": self.fhir_user}
        if issued.nonce:
            claims["nonce"] = issued.nonce
        claims.update(self.id_token_claims)
        id_token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": KID})
        return {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer",
                "expires_in": 3600, "scope": issued.scope, "patient": issued.patient,
                "id_token": id_token}

    def _refuse(self, error: str, status: int, detail: str | None = None) -> Response:
        self.refusals.append(detail or error)
        return Response(json.dumps({"error": error.split()[0] if " " not in error else
                                    "invalid_request", "error_description": detail or error}),
                        status=status, content_type="application/json")


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(
        b"=").decode()


def _redirect(location: str) -> Response:
    return Response("", status=302, headers={"Location": location})

"""DEMO ONLY (ALLIANCE_DEMO=1): a page that plays the EHR, and the EHR's SMART authorization
server, in the same process, so a newcomer sees what a clinician sees.

The page shows the demo patient, asks the CDS Hooks service for cards with a signed
`patient-view` request (when that service is installed), and its "Alliance trend" link makes a
real SMART EHR launch into an iframe: the app reads `/demo/fhir/.well-known/smart-configuration`,
is sent to `/demo/ehr/authorize` (which approves the demo clinician at once and binds the code
to the PKCE challenge), and exchanges the code at `/demo/ehr/token` for a token response with
the patient and an RS256 `id_token` carrying `fhirUser`, verified against `/demo/ehr/jwks`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Blueprint, current_app, jsonify, redirect, render_template, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from service import practices
from service.crypto import KeyRing

PRACTICE_ID = "demo"
DEMO_PATIENT = "pat-17"  # the README's patient
DEMO_CLINICIAN = "Practitioner/demo-clinician"
KID = "demo-ehr-rs256"
LAUNCH_SECONDS = 600
CODE_SECONDS = 60
PAGE_CSP = ("default-src 'none'; style-src 'self'; frame-src 'self'; form-action 'self'; "
            "base-uri 'none'; frame-ancestors 'none'")


def create_demo_ehr_blueprint(var_dir: Path) -> Blueprint:
    """The demo EHR (page and authorization server); mounted at / by the app in demo mode."""
    server = DemoAuthorizationServer(var_dir / "demo-ehr")
    bp = Blueprint("demo_ehr", __name__)

    @bp.get("/demo/ehr/")
    def page():
        """The EHR's chart of one patient: cards and the Alliance trend app."""
        services = _services()
        wanted = urlsplit(services.settings.public_url)
        if request.host != wanted.netloc:  # cookies and frame-ancestors name one origin
            return redirect(f"{services.settings.public_url}/demo/ehr/", 302)
        patient = _patient_id(request.args.get("patient"))
        practice = _practice()
        launch = server.new_launch(patient)
        trend = (f"{services.settings.public_url}/smart/{PRACTICE_ID}/launch?"
                 + urlencode({"iss": server.issuer(), "launch": launch}))
        cards, note = _cards(services.settings, practice, patient)
        response = current_app.make_response(render_template(
            "demo_ehr.html", patient=patient, trend_url=trend, cards=cards, cards_note=note,
            launch_params=urlencode({"iss": server.issuer(), "launch": launch}),
            has_app=bool(practice and practice.smart_app)))
        response.headers.update({"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"})
        return response

    @bp.get("/demo/fhir/.well-known/smart-configuration")
    def smart_configuration():
        return jsonify(server.configuration())

    @bp.get("/demo/ehr/authorize")
    def authorize():
        return server.authorize(request.args)

    @bp.post("/demo/ehr/token")
    def token():
        answer, status = server.token(request.form, request.authorization)
        response = jsonify(answer)
        response.status_code = status
        response.headers["Cache-Control"] = "no-store"
        return response

    @bp.get("/demo/ehr/jwks")
    def jwks():
        return jsonify(server.jwks())

    return bp


class DemoAuthorizationServer:
    """Auto-approves the demo clinician; codes are signed, short-lived and single-use."""

    def __init__(self, folder: Path) -> None:
        self.key = _signing_key(folder)
        self._used_codes: set[str] = set()
        self._lock = threading.Lock()

    def issuer(self) -> str:
        return f"{_services().settings.public_url}/demo/fhir"

    def configuration(self) -> dict:
        base = _services().settings.public_url
        return {
            "issuer": self.issuer(), "jwks_uri": f"{base}/demo/ehr/jwks",
            "authorization_endpoint": f"{base}/demo/ehr/authorize",
            "token_endpoint": f"{base}/demo/ehr/token",
            "grant_types_supported": ["authorization_code"],
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "scopes_supported": ["launch", "launch/patient", "openid", "fhirUser",
                                 "patient/Patient.rs"],
            "capabilities": ["launch-ehr", "launch-standalone", "client-confidential-symmetric",
                             "context-ehr-patient", "sso-openid-connect", "permission-v2"],
        }

    def jwks(self) -> dict:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": KID, "alg": "RS256", "use": "sig"}]}

    def new_launch(self, patient: str) -> str:
        return _serializer("launch").dumps({"patient": patient})

    def authorize(self, args):
        """Check the request as an EHR would; approve the demo clinician; code → redirect."""
        app = (_practice() or _no_practice()).smart_app or {}
        redirect_uri = f"{_services().settings.public_url}/smart/{PRACTICE_ID}/callback"
        registered = (app.get("client_id"), redirect_uri)
        if (args.get("client_id"), args.get("redirect_uri")) != registered:
            return jsonify(error="invalid_request",
                           error_description="unknown client_id or redirect_uri"), 400
        problem = self._authorize_problem(args)
        if problem:
            return redirect(f"{redirect_uri}?" + urlencode(
                {"error": "invalid_request", "error_description": problem,
                 "state": args.get("state", "")}), 302)
        patient = DEMO_PATIENT
        if args.get("launch"):
            patient = _serializer("launch").loads(args["launch"], max_age=LAUNCH_SECONDS)["patient"]
        code = _serializer("code").dumps({
            "patient": patient, "challenge": args["code_challenge"], "nonce": args.get("nonce"),
            "scope": args["scope"], "redirect_uri": redirect_uri, "id": secrets.token_hex(8)})
        return redirect(f"{redirect_uri}?" + urlencode({"code": code, "state": args["state"]}), 302)

    def _authorize_problem(self, args) -> str | None:
        if args.get("response_type") != "code" or not args.get("state") or not args.get("scope"):
            return "response_type=code, state and scope are required"
        if args.get("aud") != self.issuer():
            return "aud must be this EHR's FHIR base URL"
        if args.get("code_challenge_method") != "S256" or not args.get("code_challenge"):
            return "PKCE with S256 is required"
        if args.get("launch"):
            try:
                _serializer("launch").loads(args["launch"], max_age=LAUNCH_SECONDS)
            except BadSignature:
                return "unknown or expired launch"
        return None

    def token(self, form, authorization) -> tuple[dict, int]:
        """The code exchange: client_secret_basic, a fresh single-use code, PKCE S256."""
        app = (_practice() or _no_practice()).smart_app or {}
        if authorization is None or not hmac.compare_digest(
                f"{authorization.username}:{authorization.password}",
                f"{app.get('client_id')}:{app.get('client_secret')}"):
            return {"error": "invalid_client"}, 401
        try:
            code = _serializer("code").loads(form.get("code", ""), max_age=CODE_SECONDS)
        except BadSignature:
            return {"error": "invalid_grant", "error_description": "unknown or expired code"}, 400
        if form.get("grant_type") != "authorization_code" or not self._first_use(code["id"]):
            return {"error": "invalid_grant", "error_description": "code already used"}, 400
        if form.get("redirect_uri") != code["redirect_uri"] or \
                _s256(form.get("code_verifier", "")) != code["challenge"]:
            return {"error": "invalid_grant", "error_description": "PKCE verifier mismatch"}, 400
        return self._token_response(app["client_id"], code), 200

    def _first_use(self, code_id: str) -> bool:
        with self._lock:
            if code_id in self._used_codes:
                return False
            self._used_codes.add(code_id)
            return True

    def _token_response(self, client_id: str, code: dict) -> dict:
        now = int(time.time())
        claims = {"iss": self.issuer(), "sub": "demo-clinician", "aud": client_id, "iat": now,
                  "exp": now + 300, "fhirUser": DEMO_CLINICIAN}
        if code.get("nonce"):
            claims["nonce"] = code["nonce"]
        return {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer",
                "expires_in": 3600, "scope": code["scope"], "patient": code["patient"],
                "need_patient_banner": False,
                "id_token": jwt.encode(claims, self.key, algorithm="RS256",
                                       headers={"kid": KID})}


def _cards(settings, practice, patient: str) -> tuple[list[dict], str | None]:
    """The cards the CDS Hooks service gives for this patient, asked as the EHR asks."""
    try:
        from service.clinician.cds_client import demo_cds_client, hook_request
    except ImportError:
        return [], "The CDS Hooks service is not installed in this build: its cards show here."
    if practice is None or not practice.document.get("cds_hooks"):
        return [], "The demo practice has no cds_hooks section: no cards to ask for."
    client = demo_cds_client(settings)
    signed = hook_request(settings.public_url, PRACTICE_ID, patient, client.private_jwk,
                          client.iss, user_id=DEMO_CLINICIAN)
    try:
        answer = requests.request(signed.method, signed.url, json=signed.body,
                                  headers=signed.headers, timeout=5, allow_redirects=False)
        cards = answer.json().get("cards", []) if answer.status_code == 200 else None
    except (requests.RequestException, ValueError):
        cards = None
    if cards is None:
        return [], "The CDS Hooks service did not answer: no cards."
    return cards, None if cards else "No cards for this patient."


def _patient_id(value: str | None) -> str:
    value = (value or "").strip()
    ok = value and len(value) <= 64 and all(c.isalnum() or c in "-." for c in value)
    return value if ok else DEMO_PATIENT


def _practice():
    services = _services()
    with services.engine.connect() as conn:
        return practices.load(conn, services.box, PRACTICE_ID)


def _no_practice():
    raise RuntimeError("the demo practice is not applied (make run applies it)")


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    keys = KeyRing(_services().settings.secret_keys).derive(f"demo-ehr-{purpose}".encode())
    return URLSafeTimedSerializer(keys[0], salt=f"demo-ehr-{purpose}")


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _signing_key(folder: Path) -> rsa.RSAPrivateKey:
    """The demo EHR's id_token key, made once and kept under var/ (several processes share it)."""
    path = folder / "signing-key.pem"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
        except FileExistsError:
            pass
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def _services():
    return current_app.extensions["alliance"]

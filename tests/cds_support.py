"""Helpers for the CDS Hooks tests: client keys, a practice that trusts them, and an EHR that
signs its calls (through service.clinician.cds_client, as the demo and the benchmark do)."""

from __future__ import annotations

import json
from functools import cache

from service import practices
from service.clinician import cds_client
from service.web import create_app
from support import PAYLOADS, practice_document

ISS = "https://ehr.northside.test/fhir"
PATIENT_VIEW = "alliance-patient-view"
ENCOUNTER_START = "alliance-encounter-start"


@cache
def client_key(alg: str = "ES384", kid: str | None = None) -> dict:
    """A generated private JWK, the same for the whole run (RSA keys take a moment to make)."""
    return cds_client.generate_private_jwk(alg, kid=kid or f"test-{alg.lower()}")


def spec_private_key() -> dict:
    """The P-384 key published with the CDS Hooks 2.0.1 specification."""
    return json.loads((PAYLOADS / "cds-hooks" / "jwk-private.json").read_text())


def spec_key_set() -> dict:
    return json.loads((PAYLOADS / "cds-hooks" / "jwks-public.json").read_text())


def default_clients() -> list[dict]:
    return [{"iss": ISS, "jwks": cds_client.public_key_set(client_key("ES384"),
                                                           client_key("RS384"))}]


def save_practice(services, clients: list[dict] | None = None, **extra) -> dict:
    """Store northside with a cds_hooks section (validated), plus raw extra sections."""
    section = {"clients": clients if clients is not None else default_clients(),
               "info_cards": extra.pop("info_cards", True)}
    document = practices.validate_document(practice_document(cds_hooks=section))
    document.update(extra)  # e.g. smart_app, whose schema another module adds
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=services.clock())
    services._practices.clear()  # the per-process practice cache
    return document


class Ehr:
    """Plays the EHR: signs each call with a fresh jti at the services' clock."""

    def __init__(self, services, key: dict | None = None, iss: str = ISS, app=None,
                 practice_id: str = "northside"):
        self.services, self.iss, self.practice_id = services, iss, practice_id
        self.key = key or client_key("ES384")
        self.base = services.settings.public_url
        self.client = (app or create_app(services=services)).test_client()

    def _token(self, token: dict) -> dict:
        return {"now": self.services.clock(), **token}

    def discovery(self, **token):
        call = cds_client.discovery_request(self.base, self.practice_id, self.key, self.iss,
                                            **self._token(token))
        return self.client.get(self._path(call.url), headers=call.headers)

    def hook(self, patient_id: str, hook: str = "patient-view", **token):
        call = cds_client.hook_request(self.base, self.practice_id, patient_id, self.key,
                                       self.iss, hook=hook, **self._token(token))
        return self.client.post(self._path(call.url), headers=call.headers, json=call.body)

    def cards(self, patient_id: str, hook: str = "patient-view") -> list[dict]:
        answer = self.hook(patient_id, hook)
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()["cards"]

    def feedback(self, card_uuid: str, service_id: str = PATIENT_VIEW, **options):
        token = {name: options.pop(name) for name in ("jti", "lifetime") if name in options}
        call = cds_client.feedback_request(self.base, self.practice_id, service_id, card_uuid,
                                           self.key, self.iss, when=self.services.clock(),
                                           **options, **self._token(token))
        return self.client.post(self._path(call.url), headers=call.headers, json=call.body)

    def post(self, path: str, token: str, body, **headers):
        """A call with a token made by the test itself (hostile or hand-built)."""
        return self.client.post(path, json=body,
                                headers={"Authorization": f"Bearer {token}", **headers})

    def url(self, service_id: str | None = None) -> str:
        return cds_client.service_url(self.base, self.practice_id, service_id)

    def _path(self, url: str) -> str:
        return url[len(self.base):]


def hook_body(patient_id: str = "pat-17", hook: str = "patient-view") -> dict:
    return {"hook": hook, "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "context": {"userId": "Practitioner/example", "patientId": patient_id}}

"""Healthie's signed webhooks: `POST /webhooks/{practice_id}/healthie` (CONTRACT §10).

verify (digest, then signature) → parse → arrival → record, all before the answer and without
calling Healthie: the appointment is read by the worker. Every check that does not need the
practice runs first, and an unknown practice is refused exactly as a bad signature is, so an
unsigned caller learns neither which practices exist nor anything about the parser.
"""

from __future__ import annotations

import hashlib

import structlog
from flask import Blueprint, current_app, request

from service.handlers.events import record_arrival
from service.intake.healthie import read_healthie_webhook
from service.intake.healthie_signature import NOT_SIGNED, check_headers_and_digest, verify_signature
from service.intake.standard_webhooks import SignatureRefused
from service.web.problems import Problem
from service.web.webhooks import EVENT_REFUSALS, answer, read_body, read_door

log = structlog.get_logger(__name__)

bp = Blueprint("healthie", __name__)


@bp.post("/webhooks/<practice_id>/healthie")
def healthie_webhook(practice_id: str):
    """Receive a signed Healthie webhook (thin: ids and the event type only)."""
    services = current_app.extensions["alliance"]
    body = read_body(("application/json",))
    headers = _refused_unless(lambda: check_headers_and_digest(request.headers, body))
    practice = services.practice(practice_id)  # None, refused as a bad signature, if unknown
    secret = practice.healthie.get("webhook_secret") if practice else None
    if not secret:
        _refuse(SignatureRefused(NOT_SIGNED))
    _refused_unless(
        lambda: verify_signature(
            secret,
            request.headers,
            method=request.method,
            path=request.script_root + request.path,
            query=request.query_string.decode("latin-1"),
            body=body,
        )
    )
    arrival = read_door(lambda: read_healthie_webhook(body, delivery_id(headers, body)),
                        EVENT_REFUSALS)
    return answer(record_arrival(services, practice, arrival))


def delivery_id(headers: dict[str, str], body: bytes) -> str:
    """Healthie sends no delivery id: a repeat is the same Signature-Input and body.

    The signed string carries no timestamp, so a byte-identical request cannot be told from a
    replay; if Healthie's Signature-Input holds a `created` or `nonce`, distinct deliveries of
    equal bodies stay distinct.
    """
    digest = hashlib.sha256(headers["Signature-Input"].encode("utf-8") + b"\n" + body)
    return f"sha256:{digest.hexdigest()}"


def _refused_unless(check):
    try:
        return check()
    except SignatureRefused as refused:
        _refuse(refused)


def _refuse(refused: SignatureRefused):
    # The id in the URL is not ours to log until it is known to be a practice's.
    log.info("webhook refused", route="healthie", reason="signature")
    raise Problem(401, "Bad signature", str(refused), slug="bad-signature") from None

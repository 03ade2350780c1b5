"""`POST /webhooks/{practice_id}/hl7v2`: one HL7 v2 message (ER7) over HTTP, answered with its
ACK (HL7 over HTTP). The door itself is `service/handlers/hl7v2.py`."""

from __future__ import annotations

import structlog
from flask import Blueprint, Response, current_app, request

from service.handlers.hl7v2 import UNAVAILABLE, receive_http
from service.intake.hl7v2 import MAX_MESSAGE, Hl7Refusal, ack

ER7 = "x-application/hl7-v2+er7"
MEDIA_TYPES = (ER7, "application/hl7-v2", "text/plain")
log = structlog.get_logger(__name__)
bp = Blueprint("hl7v2", __name__)


@bp.post("/webhooks/<practice_id>/hl7v2")
def hl7v2_message(practice_id: str):
    """Every answer carries an ACK: AA stored, AE malformed (named), AR not authorised."""
    services = current_app.extensions["alliance"]
    if request.mimetype not in MEDIA_TYPES:
        refusal = Hl7Refusal(
            "AE", f"send the message as {ER7}, not {request.mimetype or 'nothing'}"
        )
        return _answer(ack(None, "AE", refusal.text, refusal), 415)
    if request.content_length is not None and request.content_length > MAX_MESSAGE:
        refusal = Hl7Refusal("AE", f"the message is over {MAX_MESSAGE // 1024} KiB")
        return _answer(ack(None, "AE", refusal.text, refusal), 413)
    raw = request.stream.read(MAX_MESSAGE + 1)
    try:
        answer = receive_http(services, practice_id, request.headers.get("Authorization"), raw)
    except Exception:  # the database is down, or a bug: still an ACK, and never AA
        log.exception("hl7v2 message failed")
        refusal = Hl7Refusal("AR", UNAVAILABLE)
        return _answer(ack(None, "AR", refusal.text, refusal), 503)
    return _answer(answer.ack, answer.status)


def _answer(body: bytes, status: int) -> Response:
    return Response(body, status=status, content_type=f"{ER7}; charset=utf-8")

"""The HL7 v2 door: verify → parse into the arrival → record it → answer with an ACK.

An application service like the other handlers: the HTTP view (`service/web/hl7v2.py`) and
the MLLP listener (`alliance mllp`) are its two entry points; parsing is `service/intake/hl7v2.py`.

Shared by `POST /webhooks/{practice_id}/hl7v2` and the MLLP listener (`alliance mllp`). The
ACK `AA` is only sent once the arrival is committed, so an acknowledged message is never lost.
An unknown practice and a wrong token get the same `AR` (and take the same path), so a sender
without the token learns nothing about which practices exist.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

import hl7
import structlog
from sqlalchemy.exc import SQLAlchemyError

from schemas.practice import PRACTICE_ID
from service.handlers.events import Recorded, record_arrival
from service.handlers.ports import Ports
from service.intake.hl7v2 import MAX_MESSAGE, Hl7Refusal, ack, arrival_from, header, parse
from service.practices import Practice

log = structlog.get_logger(__name__)

NOT_AUTHORISED = "not authorised: unknown practice or wrong channel token"
UNAVAILABLE = "the message could not be stored just now; nothing was kept: send it again"
# Compared against when the practice is unknown, so both refusals cost the same.
_NO_TOKEN = "-" * 32


@dataclass(frozen=True)
class Hl7Answer:
    ack: bytes
    code: str  # AA | AE | AR
    status: int  # what the HTTP route answers with
    recorded: Recorded | None = None


def receive_http(
    services: Ports, practice_id: str, authorization: str | None, raw: bytes
) -> Hl7Answer:
    """HTTP: the practice is in the URL and the token in the Authorization header, so the
    sender is checked before the body is read as HL7."""
    token = _bearer(authorization)
    practice = _authorised(services, practice_id, token)
    if practice is None:
        return _refused(_best_effort(raw), Hl7Refusal("AR", NOT_AUTHORISED), 401)
    try:
        message = parse(raw)
        header(message)
    except Hl7Refusal as refusal:
        return _refused(_best_effort(raw), refusal, 413 if len(raw) > MAX_MESSAGE else 400)
    return _accept(services, practice, message)


def receive_mllp(services: Ports, raw: bytes, pinned_practice: str | None = None) -> Hl7Answer:
    """MLLP: no headers, so the practice is MSH-6 (or the listener's own) and the token MSH-8."""
    try:
        message = parse(raw)
        head = header(message)
    except Hl7Refusal as refusal:
        return _refused(_best_effort(raw), refusal, 400)
    practice = _authorised(services, pinned_practice or head.receiving_facility, head.security)
    if practice is None:
        return _refused(message, Hl7Refusal("AR", NOT_AUTHORISED), 401)
    return _accept(services, practice, message)


def _accept(services: Ports, practice: Practice, message: hl7.Message) -> Hl7Answer:
    try:
        arrival = arrival_from(message)
    except Hl7Refusal as refusal:
        log.info("hl7v2 refused", practice_id=practice.id, reason=refusal.error_code)
        return _refused(message, refusal, 400)
    try:
        recorded = record_arrival(services, practice, arrival)
    except SQLAlchemyError as error:
        # Not AA: the sender keeps the message and sends it again (HL7 v2 §2.9: AR for a
        # reason unrelated to the message's content, e.g. a database that is down).
        log.error("hl7v2 not stored", practice_id=practice.id, error=type(error).__name__)
        return _refused(message, Hl7Refusal("AR", UNAVAILABLE), 503)
    text = _outcome_text(recorded)
    return Hl7Answer(ack(message, "AA", text), "AA", 200, recorded)


def _authorised(services: Ports, practice_id: str | None, token: str | None) -> Practice | None:
    practice = None
    if practice_id and PRACTICE_ID.match(practice_id):
        practice = services.practice(practice_id)
    expected = (practice.hl7v2.channel_token if practice and practice.hl7v2 else None) or _NO_TOKEN
    given = token or ""
    matches = hmac.compare_digest(given.encode(), expected.encode())
    if practice is None or expected == _NO_TOKEN or not matches:
        log.info("hl7v2 refused", reason="authentication")
        return None
    return practice


def _bearer(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _best_effort(raw: bytes) -> hl7.Message | None:
    """The message, if it parses far enough to address the ACK to its sender."""
    try:
        return parse(raw)
    except Hl7Refusal:
        return None


def _refused(message: hl7.Message | None, refusal: Hl7Refusal, status: int) -> Hl7Answer:
    return Hl7Answer(ack(message, refusal.code, refusal.text, refusal), refusal.code, status)


def _outcome_text(recorded: Recorded) -> str:
    if recorded.outcome == "duplicate-delivery":
        return "duplicate: this message was received before"
    if recorded.outcome == "duplicate-session":
        return "accepted; this visit already has its survey"
    if recorded.outcome == "ignored":
        return f"accepted; no survey: {recorded.reason}"
    return "accepted"


def mllp_callbacks(services: Ports, pinned_practice: str | None):
    """(on_message, on_too_large) for the MLLP listener: bytes in, ACK bytes out, never raising
    (a failure answers AR, so the engine keeps the message and sends it again)."""

    def on_message(raw: bytes) -> bytes:
        try:
            return receive_mllp(services, raw, pinned_practice).ack
        except Exception:  # a bug must not take the connection down without an answer
            log.exception("hl7v2 message failed")
            return _refused(_best_effort(raw), Hl7Refusal("AR", UNAVAILABLE), 503).ack

    def on_too_large(head: bytes) -> bytes:
        refusal = Hl7Refusal("AE", f"the message is over {MAX_MESSAGE // 1024} KiB", "207")
        return _refused(_best_effort(head.split(b"\r", 1)[0]), refusal, 413).ack

    return on_message, on_too_large

"""Consent pages and the SMS keyword webhook: a client opts out of surveys, or back in.

The link token identifies the client; it changes consent only while it is the client's current
invitation (open, not expired, the latest), and never undoes an SMS STOP
(`service/handlers/consent.py`). Inbound SMS is authenticated by Twilio's X-Twilio-Signature,
acted on once per MessageSid, and an unknown practice is answered as a bad signature is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

import structlog
from flask import Blueprint, Response, request

from service.handlers.consent import opt_in, opt_out, sms_keyword
from service.web.problems import Problem
from service.web.surveys import (
    CSRF_FIELD,
    csrf_for,
    csrf_valid,
    link_client,
    message_page,
    page_language,
    post_allowed,
    render_page,
    services,
)

log = structlog.get_logger(__name__)
bp = Blueprint("consent", __name__)

OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "PARAR"})
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP", "YES"})
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
# Checked against when the practice is unknown or has no SMS settings, so every refusal takes
# the same path and answers the same words.
_NO_TOKEN = "-" * 32
MAX_SID = 64


# ---- pages ----------------------------------------------------------------------------------

@bp.get("/s/<token>/unsubscribe")
def unsubscribe_page(token: str):
    """Ask before opting out; a client who already opted out sees the opt-in button instead."""
    survey_id, client = link_client(token)
    language = page_language(client.locale if client else None)
    if client is None:
        return message_page(404, language)
    if not client.current:
        return _consent_page(token, survey_id, client, language, "stale", 410)
    return _consent_page(token, survey_id, client, language, _standing(client))


@bp.post("/s/<token>/unsubscribe")
def unsubscribe(token: str):
    """Opt the client out; the result page offers to opt in again."""
    return _change(token, opt_out, "opted_out")


@bp.post("/s/<token>/resubscribe")
def resubscribe(token: str):
    """Opt the client back in."""
    return _change(token, opt_in, "opted_in")


def _change(token: str, action, state: str):
    survey_id, client = link_client(token)
    language = page_language(client.locale if client else None)
    if not post_allowed(token):
        return message_page(429, language)
    if client is None:
        return message_page(404, language)
    if not csrf_valid(survey_id, "consent"):
        return message_page(400, language)
    if not client.current:  # an old link: nothing changes
        return _consent_page(token, survey_id, client, language, "stale", 410)
    if action is opt_in and client.opted_out and not client.link_may_opt_in:
        return _consent_page(token, survey_id, client, language, "opted_out_sms", 409)
    action(services(), client.practice_id, client.patient_id, source="link")
    return _consent_page(token, survey_id, client, language, state)


def _standing(client) -> str:
    """What the page offers: to opt out, to opt back in, or (after an SMS STOP) to text START."""
    if not client.opted_out:
        return "confirm"
    return "opted_out" if client.link_may_opt_in else "opted_out_sms"


def _consent_page(token: str, survey_id: str, client, language: str, state: str,
                  status: int = 200):
    return render_page("consent.html", language, status, state=state, token=token,
                       practice_name=client.practice_name, csrf_field=CSRF_FIELD,
                       csrf_token=csrf_for(survey_id, "consent"))


# ---- SMS keywords (Twilio inbound webhook) --------------------------------------------------

@bp.post("/webhooks/<practice_id>/sms/inbound")
def sms_inbound(practice_id: str):
    """STOP-like keywords opt the sender out, START-like ones opt back in; always empty TwiML."""
    wired = services()
    practice = wired.practice(practice_id)
    sms = practice.delivery.sms if practice else None
    url = wired.settings.public_url + request.full_path.rstrip("?")
    given = request.headers.get("X-Twilio-Signature", "")
    params = request.form.items(multi=True)
    # An unknown practice is refused exactly as a bad signature is (same check, same words):
    # an unsigned caller learns nothing about which practices exist.
    if not signature_valid(sms.auth_token if sms else _NO_TOKEN, url, params, given) or not sms:
        raise Problem(401, "Bad signature", "the X-Twilio-Signature does not match this request",
                      slug="bad-signature")
    action = keyword_action(request.form.get("Body", ""))
    if action:
        _act_once(wired, practice.id, action)
    return Response(EMPTY_TWIML, status=200, mimetype="text/xml")


def _act_once(wired, practice_id: str, action: str) -> None:
    """Act on a keyword once per MessageSid: a replayed signed request changes nothing."""
    sid = (request.form.get("MessageSid") or request.form.get("SmsSid") or "").strip()
    if not sid or len(sid) > MAX_SID or not sid.isalnum():
        log.info("sms keyword ignored", practice_id=practice_id, reason="no MessageSid")
        return
    clients = sms_keyword(wired, practice_id, sid, request.form.get("From", ""), action)
    log.info("sms keyword", practice_id=practice_id, action=action,
             clients=clients or 0, duplicate=clients is None)


def keyword_action(body: str) -> str | None:
    """'opt-out', 'opt-in' or None for an SMS body (the whole message is the keyword)."""
    word = body.strip().strip(".!").strip().upper()
    if word in OPT_OUT_KEYWORDS:
        return "opt-out"
    if word in OPT_IN_KEYWORDS:
        return "opt-in"
    return None


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Base64 HMAC-SHA1 of the URL followed by each form field's name and value, sorted
    (as Twilio does: by name, then by value, each pair once)."""
    data = url + "".join(name + value for name, value in sorted(set(params)))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signature_valid(auth_token: str, url: str, params: Iterable[tuple[str, str]],
                    given: str) -> bool:
    """Constant-time check of an X-Twilio-Signature header."""
    expected = twilio_signature(auth_token, url, params)
    return bool(given) and hmac.compare_digest(expected.encode(), given.encode())


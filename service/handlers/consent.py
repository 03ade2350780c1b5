"""Consent: a client opts out of surveys (or back in) by link or by SMS keyword.

The survey handlers read `clients.opted_out_at` and send nothing to a client who opted out.
Two rules close finding 5 of the security review:
- a consent link acts only while it is the client's current invitation: its survey open
  (scheduled or sent, not expired) and the client's latest. An old link changes nothing;
- an SMS STOP wins: a link never undoes an opt-out made by SMS (or one made before the way
  was recorded); only a START from the client's phone does. Each inbound SMS acts once, by
  its MessageSid, so a replayed signed STOP or START changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog

from integrations.delivery.contact import normalize_phone
from service.handlers.ports import Ports
from service.persistence.queries import clients, events, inbound_sms, surveys
from service.persistence.queries.clients import BY_LINK, BY_SMS

log = structlog.get_logger(__name__)

__all__ = ["BY_LINK", "BY_SMS", "SurveyClient", "client_of_survey", "opt_in", "opt_out",
           "sms_keyword"]


@dataclass(frozen=True)
class SurveyClient:
    """The client a survey link belongs to, as the consent pages need it."""

    practice_id: str
    practice_name: str
    patient_id: str
    locale: str | None
    opted_out_at: datetime | None
    opted_out_by: str | None
    current: bool  # the link is the client's open, latest invitation: it may change consent

    @property
    def opted_out(self) -> bool:
        return self.opted_out_at is not None

    @property
    def link_may_opt_in(self) -> bool:
        """Only an opt-out made by link can be undone by a link."""
        return self.opted_out and self.opted_out_by == BY_LINK


def client_of_survey(ports: Ports, survey_id: str) -> SurveyClient | None:
    """The client behind a survey, whatever the survey's state; None for an unknown survey."""
    with ports.engine.begin() as conn:
        row = surveys.client_of(conn, survey_id)
        if row is None:
            return None
        current = _open_now(row, ports.clock()) and not surveys.newer_exists(
            conn, row["practice_id"], row["patient_id"], row["created_at"], survey_id)
    return SurveyClient(row["practice_id"], row["name"], row["patient_id"], row["locale"],
                        row["opted_out_at"], row["opted_out_by"], current)


def _open_now(row: dict, now: datetime) -> bool:
    expires_at = row["expires_at"]
    return row["status"] in surveys.OPEN and (expires_at is None or expires_at > now)


def opt_out(ports: Ports, practice_id: str, patient_id: str, source: str) -> bool:
    """Stop surveys to the client and delete their contact details (the phone's keyed hash
    stays, so a START finds them); True if the opt-out changed (the first time stays)."""
    with ports.engine.begin() as conn:
        changed = clients.opt_out(conn, practice_id, patient_id, ports.clock(), source)
        events.forget_contact(conn, ports.vault, practice_id, patient_id=patient_id)
    log.info("client opted out", practice_id=practice_id, source=source, changed=changed)
    return changed


def opt_in(ports: Ports, practice_id: str, patient_id: str, source: str) -> bool:
    """Send surveys to the client again; True if it changed anything (a link cannot undo an
    opt-out made by SMS)."""
    with ports.engine.begin() as conn:
        changed = clients.opt_in(conn, practice_id, patient_id, ports.clock(), source)
    log.info("client opted in", practice_id=practice_id, source=source, changed=changed)
    return changed


def sms_keyword(ports: Ports, practice_id: str, message_sid: str, phone: str,
                action: str) -> int | None:
    """Act on a STOP ('opt-out') or START ('opt-in') from `phone`, once per message: the
    number of clients it applied to, or None for a message already acted on."""
    wanted = normalize_phone(phone)
    now = ports.clock()
    with ports.engine.begin() as conn:
        if not inbound_sms.first_time(conn, practice_id, message_sid, now):
            return None
        patients = clients.with_phone(conn, ports.vault, practice_id, wanted) if wanted else []
        change = clients.opt_out if action == "opt-out" else clients.opt_in
        for patient_id in patients:
            change(conn, practice_id, patient_id, now, BY_SMS)
            if action == "opt-out":  # the contact details go with the opt-out, everywhere
                events.forget_contact(conn, ports.vault, practice_id, patient_id=patient_id)
    return len(patients)

"""Consent: a client opts out of surveys (or back in) by link or by SMS keyword.

The survey handlers read `clients.opted_out_at` and send nothing to a client who opted out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import select, update

from integrations.delivery.sms_twilio import normalize_phone
from service.bootstrap import Services
from service.persistence.tables import clients, practices, surveys

log = structlog.get_logger(__name__)

# Matching by the last digits first keeps the scan small; the full E.164 comparison decides.
_PHONE_SUFFIX_DIGITS = 7


@dataclass(frozen=True)
class SurveyClient:
    """The client a survey link belongs to, as the consent pages need it."""

    practice_id: str
    practice_name: str
    patient_id: str
    locale: str | None
    opted_out_at: datetime | None

    @property
    def opted_out(self) -> bool:
        return self.opted_out_at is not None


def client_of_survey(services: Services, survey_id: str) -> SurveyClient | None:
    """The client behind a survey, whatever the survey's state; None for an unknown survey."""
    with services.engine.begin() as conn:
        row = conn.execute(
            select(surveys.c.practice_id, surveys.c.patient_id, practices.c.name,
                   clients.c.locale, clients.c.opted_out_at)
            .join(practices, practices.c.id == surveys.c.practice_id)
            .outerjoin(clients, (clients.c.practice_id == surveys.c.practice_id)
                       & (clients.c.patient_id == surveys.c.patient_id))
            .where(surveys.c.id == survey_id)
        ).mappings().first()
    if row is None:
        return None
    return SurveyClient(row["practice_id"], row["name"], row["patient_id"], row["locale"],
                        row["opted_out_at"])


def opt_out(services: Services, practice_id: str, patient_id: str, source: str) -> bool:
    """Stop surveys to the client; True if this changed anything (the first opt-out time stays)."""
    with services.engine.begin() as conn:
        changed = conn.execute(update(clients).where(
            clients.c.practice_id == practice_id, clients.c.patient_id == patient_id,
            clients.c.opted_out_at.is_(None),
        ).values(opted_out_at=services.clock(), updated_at=services.clock())).rowcount
    log.info("client opted out", practice_id=practice_id, source=source, changed=bool(changed))
    return bool(changed)


def opt_in(services: Services, practice_id: str, patient_id: str, source: str) -> bool:
    """Send surveys to the client again; True if the client had opted out."""
    with services.engine.begin() as conn:
        changed = conn.execute(update(clients).where(
            clients.c.practice_id == practice_id, clients.c.patient_id == patient_id,
            clients.c.opted_out_at.is_not(None),
        ).values(opted_out_at=None, updated_at=services.clock())).rowcount
    log.info("client opted in", practice_id=practice_id, source=source, changed=bool(changed))
    return bool(changed)


def patients_with_phone(services: Services, practice_id: str, phone: str) -> list[str]:
    """Patient ids of the practice's clients whose phone is this number (in any spelling)."""
    wanted = normalize_phone(phone)
    if wanted is None:
        return []
    with services.engine.begin() as conn:
        rows = conn.execute(select(clients.c.patient_id, clients.c.phone).where(
            clients.c.practice_id == practice_id,
            clients.c.phone.like(f"%{_spaced_suffix(wanted)}"),
        )).all()
    return [patient_id for patient_id, stored in rows if normalize_phone(stored) == wanted]


def _spaced_suffix(e164: str) -> str:
    """A LIKE pattern for the last digits, allowing punctuation between them ('1%2%3…')."""
    return "%".join(e164[-_PHONE_SUFFIX_DIGITS:])

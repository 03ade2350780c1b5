"""Consent: a client opts out of surveys (or back in) by link or by SMS keyword.

The survey handlers read `clients.opted_out_at` and send nothing to a client who opted out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog

from integrations.delivery.contact import normalize_phone
from service.handlers.ports import Ports
from service.persistence.queries import clients, surveys

log = structlog.get_logger(__name__)


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


def client_of_survey(ports: Ports, survey_id: str) -> SurveyClient | None:
    """The client behind a survey, whatever the survey's state; None for an unknown survey."""
    with ports.engine.begin() as conn:
        row = surveys.client_of(conn, survey_id)
    if row is None:
        return None
    return SurveyClient(row["practice_id"], row["name"], row["patient_id"], row["locale"],
                        row["opted_out_at"])


def opt_out(ports: Ports, practice_id: str, patient_id: str, source: str) -> bool:
    """Stop surveys to the client; True if this changed anything (the first opt-out time stays)."""
    with ports.engine.begin() as conn:
        changed = clients.opt_out(conn, practice_id, patient_id, ports.clock())
    log.info("client opted out", practice_id=practice_id, source=source, changed=changed)
    return changed


def opt_in(ports: Ports, practice_id: str, patient_id: str, source: str) -> bool:
    """Send surveys to the client again; True if the client had opted out."""
    with ports.engine.begin() as conn:
        changed = clients.opt_in(conn, practice_id, patient_id, ports.clock())
    log.info("client opted in", practice_id=practice_id, source=source, changed=changed)
    return changed


def patients_with_phone(ports: Ports, practice_id: str, phone: str) -> list[str]:
    """Patient ids of the practice's clients whose phone is this number (in any spelling)."""
    wanted = normalize_phone(phone)
    if wanted is None:
        return []
    with ports.engine.begin() as conn:
        return clients.with_phone(conn, practice_id, wanted)

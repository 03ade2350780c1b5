"""What arrived, whatever door it came through: plain values, decided before anything is stored.

Every door (native events, FHIR notifications, and later HL7 v2, Healthie, FHIR polling, a
Canvas plugin) turns a verified request into one `Arrival`. Its `outcome` is one of three values:

- `Completed(facts)`: a completed session; `facts` is everything the survey needs.
- `Ignored(reason)`: recorded, causes nothing (a no-show, another event type, an id we cannot
  store); the reason is shown by `alliance events list`.
- `NeedsRead(read)`: the door only named the session (FHIR id-only); the worker reads it from
  the EHR and decides then.

The same `SessionFacts` travel from the door through the event log (one schema:
`service/intake/payload.py`) to the survey: no dicts, no marker keys, no re-parsed datetimes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from integrations.delivery.port import Contact

__all__ = [
    "MAX_ID", "UNSTORABLE_IDS", "Arrival", "Completed", "Contact", "EhrRead", "Ignored",
    "NeedsRead", "Outcome", "Refused", "SessionFacts", "clip", "storable_ids",
]

MAX_ID = 200  # the delivery_id, session_id and patient_id columns
UNSTORABLE_IDS = (f"the session or patient id is longer than {MAX_ID} characters "
                  "or holds control characters")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class SessionFacts:
    """A completed session, as the survey needs it. `contact` is already checked and capped
    (`service/intake/contact.py`); without it the worker reads the Patient from the EHR."""

    session_id: str
    patient_id: str
    practitioner_id: str | None = None
    ended_at: datetime | None = None  # timezone-aware
    contact: Contact | None = None
    # Every key naming this visit ("session:enc-1", "Encounter/enc-1", "Appointment/a-9"): a
    # second completion claiming any of them is the same session and sends no second survey.
    dedupe_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class EhrRead:
    """What the worker must read from the EHR before it knows whether a session was completed:
    a resource by type and id, or (athenahealth) by an identifier."""

    resource_type: str
    resource_id: str | None = None
    identifier: tuple[str | None, str] | None = None  # (system, value)
    topic: str | None = None  # the notification topic, which can decide completion


@dataclass(frozen=True)
class Completed:
    facts: SessionFacts


@dataclass(frozen=True)
class Ignored:
    reason: str
    # Shown in the event log when known (a native no-show names its session).
    session_id: str | None = None
    patient_id: str | None = None


@dataclass(frozen=True)
class NeedsRead:
    read: EhrRead
    patient_id: str | None = None
    session_id: str | None = None  # when the door names the session already (Healthie)


Outcome = Completed | Ignored | NeedsRead


@dataclass(frozen=True)
class Arrival:
    """One verified event from one door, ready to be stored."""

    source: str  # the door: native | fhir | … (at most 16 characters: the event log's column)
    delivery_id: str  # the door's id of this delivery: repeats are recognised by it
    event_type: str
    outcome: Outcome

    @property
    def session_id(self) -> str | None:
        if isinstance(self.outcome, Completed):
            return self.outcome.facts.session_id
        return self.outcome.session_id

    @property
    def patient_id(self) -> str | None:
        if isinstance(self.outcome, Completed):
            return self.outcome.facts.patient_id
        return self.outcome.patient_id


class Refused(Exception):
    """The request is not an event we can take; nothing is stored.

    `kind` is "unparseable" (not JSON, not UTF-8, …) or "invalid" (parsed, but a field is
    wrong); each door maps it to its own answer (HTTP 400/422, an HL7 AR/AE, …).
    """

    def __init__(self, kind: str, detail: str, errors: dict[str, str] | None = None):
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.errors = errors or {}


def storable_ids(*identifiers: str | None) -> bool:
    """Whether ids fit their columns as they are: short enough, no NUL (PostgreSQL refuses it)
    and no other control characters (they would corrupt logs and the command line)."""
    return all(value is None or (len(value) <= MAX_ID and not _CONTROL.search(value))
               for value in identifiers)


def clip(text: str | None, length: int) -> str | None:
    """Fit free text (topics, reasons) to its column, control characters replaced."""
    if text is None:
        return None
    text = _CONTROL.sub(" ", text)
    return text if len(text) <= length else text[: length - 1] + "…"

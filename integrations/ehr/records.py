"""The values the write-back hands to a record writer (FHIR or webhook), and what it gets back.

Both the resource builders (`resources.py`) and the writers (`writer.py`, `webhook_sink.py`)
import these; keeping them here is what lets the builders not import the writer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class AnswerItem:
    """One answered item: its linkId, the item text shown, and the value given."""

    link_id: str
    text: str
    value: object  # int | float | bool | str


@dataclass(frozen=True)
class AllianceRecord:
    """Everything written back for one scored survey response.

    The scores are the ones stored when the client answered, written as a person reads them
    (36, not 36.0; at most two decimals): the caller formats them, the builders copy them.
    """

    practice_id: str
    patient_id: str
    session_id: str
    response_id: str  # our opaque uuid, stable per response: the idempotency key
    instrument_url: str
    instrument_version: str
    instrument_title: str
    authored: datetime
    answers: tuple[AnswerItem, ...]
    total: float
    total_max: float
    subscales: Mapping[str, float]
    pomp: float
    decision: str
    reasons: tuple[str, ...]
    interpretation: str | None  # 'low' | 'watch' | 'check-in' | None


@dataclass(frozen=True)
class FlagRef:
    """Where a rupture Flag lives in the EHR; identifier is its episode id under FLAG_SYSTEM."""

    id: str
    version_id: str | None
    identifier: str


@dataclass(frozen=True)
class WrittenScores:
    """Ids of the resources holding one scored response."""

    questionnaire_response_id: str
    observation_id: str


@dataclass(frozen=True)
class AlertDocument:
    """A rupture written as a document (alerts.write document): a one-page PDF of the trend.

    `identifier` is `{episode id}.{number}` under DOCUMENT_REFERENCE_SYSTEM (one per episode and
    version of the document); `replaces` is the id of the DocumentReference it supersedes.
    """

    identifier: str
    title: str
    description: str
    pdf: bytes
    created: datetime
    replaces: str | None = None


@dataclass(frozen=True)
class DocumentRef:
    """Where an alert document lives in the EHR."""

    id: str
    version_id: str | None
    identifier: str


@dataclass(frozen=True)
class TaskRequest:
    """A Task about one rupture episode: the alert itself (`kind` "alert", alerts.write `task`)
    or its escalation to a supervisor ("escalation"). Each kind has its own identifier system,
    with the episode id as value, so a retried create finds the Task it made."""

    kind: str  # "alert" | "escalation"
    episode_id: str
    patient_id: str
    description: str
    owner: str | None  # "Practitioner/{id}", or nobody
    flag_id: str | None  # the episode's Flag in the EHR, the Task's focus, when written
    authored: datetime


@dataclass(frozen=True)
class TaskRef:
    """Where a Task lives in the EHR, at which version."""

    id: str
    version_id: str | None

"""Writes scored responses, the rupture Flag lifecycle and the alert documents to the EHR,
idempotently."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from integrations.ehr.errors import EhrConflict
from integrations.ehr.port import EhrGateway
from integrations.ehr.records import (
    AlertDocument,
    AllianceRecord,
    AnswerItem,
    DocumentRef,
    FlagRef,
    TaskRef,
    TaskRequest,
    WrittenScores,
)
from integrations.ehr.resources import (
    DOCUMENT_REFERENCE_SYSTEM,
    FLAG_SYSTEM,
    OBSERVATION_SYSTEM,
    QUESTIONNAIRE_RESPONSE_SYSTEM,
    TASK_SYSTEMS,
    IdentifierSystems,
    build_document_reference,
    build_flag,
    build_observation,
    build_questionnaire_response,
    build_task,
    completed_task,
    flag_with_text,
    identifier_query,
    resolved_flag,
    superseded_document,
)

# Each conflict means someone else changed the Flag meanwhile; a few re-reads settle it. If they
# do not, EhrConflict reaches the job, which is retried later with backoff (not dead-lettered).
MAX_UPDATE_ATTEMPTS = 3

__all__ = [
    "AlertDocument",
    "AllianceRecord",
    "AllianceRecordWriter",
    "AnswerItem",
    "DocumentRef",
    "FlagRef",
    "TaskRef",
    "TaskRequest",
    "WrittenScores",
]


class AllianceRecordWriter:
    """Writes QuestionnaireResponse, Observation, Flag, DocumentReference and Task through an
    EhrGateway."""

    QUESTIONNAIRE_RESPONSE_IDENTIFIER_SYSTEM = QUESTIONNAIRE_RESPONSE_SYSTEM
    OBSERVATION_IDENTIFIER_SYSTEM = OBSERVATION_SYSTEM
    FLAG_IDENTIFIER_SYSTEM = FLAG_SYSTEM

    def __init__(self, gateway: EhrGateway, systems: IdentifierSystems | None = None) -> None:
        self._gateway = gateway
        self._systems = systems or IdentifierSystems()

    def write_scores(self, record: AllianceRecord) -> WrittenScores:
        """Create the QuestionnaireResponse, then the Observation derived from it; both once."""
        response = self._gateway.create(
            build_questionnaire_response(record, self._systems),
            if_none_exist=identifier_query(QUESTIONNAIRE_RESPONSE_SYSTEM, record.response_id),
        )
        observation = self._gateway.create(
            build_observation(record, response.id, self._systems),
            if_none_exist=identifier_query(OBSERVATION_SYSTEM, record.response_id),
        )
        return WrittenScores(response.id, observation.id)

    def raise_flag(self, record: AllianceRecord, text: str, episode_id: str) -> FlagRef:
        """Create the active rupture Flag for an episode (once, however often called)."""
        written = self._gateway.create(
            build_flag(record, text, episode_id, self._systems),
            if_none_exist=identifier_query(FLAG_SYSTEM, episode_id),
        )
        return FlagRef(written.id, written.version_id, episode_id)

    def update_flag_text(self, flag: FlagRef, text: str) -> FlagRef:
        """Replace what the Flag says (an unresolved rupture), version-aware."""
        return self._change_flag(flag, lambda current: flag_with_text(current, text))

    def resolve_flag(self, flag: FlagRef, ended_at: datetime) -> FlagRef:
        """Set the Flag inactive with period.end (the alliance was repaired), version-aware."""
        return self._change_flag(flag, lambda current: resolved_flag(current, ended_at))

    def write_document(self, record: AllianceRecord, document: AlertDocument) -> DocumentRef:
        """Create the alert's DocumentReference (once, however often called)."""
        written = self._gateway.create(
            build_document_reference(record, document, self._systems),
            if_none_exist=identifier_query(DOCUMENT_REFERENCE_SYSTEM, document.identifier),
        )
        return DocumentRef(written.id, written.version_id, document.identifier)

    def supersede_document(self, document: DocumentRef) -> DocumentRef:
        """Set an alert's DocumentReference superseded (a newer one replaces it), version-aware."""
        version = self._change("DocumentReference", document.id, superseded_document)
        return DocumentRef(document.id, version, document.identifier)

    def create_task(self, request: TaskRequest) -> TaskRef:
        """Create a rupture's Task (once per episode and kind, however often called)."""
        written = self._gateway.create(
            build_task(request, self._systems),
            if_none_exist=identifier_query(TASK_SYSTEMS[request.kind], request.episode_id),
        )
        return TaskRef(written.id, written.version_id)

    def complete_task(self, task: TaskRef, completed_at: datetime) -> TaskRef:
        """Set the Task completed, version-aware (a 412 re-reads and tries again)."""
        version = self._change("Task", task.id,
                               lambda current: completed_task(current, completed_at))
        return TaskRef(task.id, version)

    def _change_flag(self, flag: FlagRef, change: Callable[[dict], dict]) -> FlagRef:
        return FlagRef(flag.id, self._change("Flag", flag.id, change), flag.identifier)

    def _change(self, resource_type: str, resource_id: str,
                change: Callable[[dict], dict]) -> str | None:
        """Read, change and write back with If-Match, re-reading when someone else wrote
        meanwhile (412/409); the version it is at after. A change already made writes nothing."""
        attempt = 1
        while True:
            current = self._gateway.read(resource_type, resource_id)
            version = (current.get("meta") or {}).get("versionId")
            changed = change(current)
            if changed == current:
                return version  # a replay: already done
            try:
                written = self._gateway.update(changed, if_match=version)
            except EhrConflict:
                if attempt >= MAX_UPDATE_ATTEMPTS:
                    raise
                attempt += 1
                continue
            return written.version_id

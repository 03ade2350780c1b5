"""Assess a returned (or missed) survey against the client's history and write the result
into the EHR: QuestionnaireResponse + Observation, and the alerts the practice writes for an
open rupture (`alerts.write`): a Flag that follows the alliance, a DocumentReference with the
trend as PDF (`alert_documents`), a Task. An assessment that finds the rupture unresolved
schedules its escalation (`service/handlers/escalation.py`), due from the outbox.

What to write is decided by `service.domain.writeback.plan_write_back`; this handler loads what
the plan needs, applies its effects through the practice's record writer, and maps the EHR's
errors to retry-later or dead-letter.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import NamedTuple

import structlog
from sqlalchemy import Connection

from integrations.ehr.records import (
    AlertDocument,
    AllianceRecord,
    AnswerItem,
    DocumentRef,
    FlagRef,
    TaskRef,
    TaskRequest,
)
from service import practices
from service.clinician import clinician_state
from service.crypto import ClientVault
from service.domain.episodes import RuptureEpisode, assign_episode
from service.domain.escalation import ALERT_TASK, REQUESTED, escalation_due
from service.domain.instruments import Instrument
from service.domain.ruptures import RuptureRules, SessionObservation, assess_series
from service.domain.scoring import Scores, plain_number
from service.domain.writeback import (
    AssessedSurvey,
    CompleteTask,
    Effect,
    RaiseFlag,
    RaiseTask,
    ResolveFlag,
    StoredTask,
    SupersedeDocument,
    UpdateFlagText,
    WriteBackPlan,
    WriteDocument,
    WriteScores,
    plan_write_back,
)
from service.handlers.alert_documents import alert_documents
from service.handlers.runner import JobContext, PermanentFailure, ehr_call
from service.persistence.queries import assessments, episodes, escalations, responses
from service.practices import Practice

log = structlog.get_logger(__name__)


def assess_and_write_back(ctx: JobContext) -> None:
    """Jobs `response.writeback` and `survey.missed`."""
    services = ctx.services
    with services.engine.begin() as conn:
        survey = assessments.survey(conn, ctx.job.payload["survey_id"])
        if survey is None:
            raise PermanentFailure("survey no longer exists")
        practice = practices.load(conn, services.box, survey["practice_id"])
        instrument = services.instruments()[survey["instrument_id"]]
        assessment = _assessment(conn, services.vault, survey, practice, instrument,
                                 services.clock())
        response = responses.for_survey(conn, services.vault, survey["id"])
        episode = episodes.load(conn, assessment["episode_id"])
        alert_task = _alert_task(conn, episode)
        escalate_at = _escalation(conn, practice, assessment["decision"], episode)
    assessed = AssessedSurvey(survey["id"], assessment["decision"], assessment["flag_text"],
                              answered=response is not None)
    plan = plan_write_back(assessed, episode, services.clock(), practice.alerts.write,
                           practice.alerts.escalate_to, alert_task)
    record = _record(practice, instrument, survey, response, assessment)
    documents = alert_documents(services, practice, instrument, plan, record, plan.episode)
    _write(ctx, _Target(services.writer_for(practice.ehr), record, documents), plan, episode,
           escalate_at)


def _alert_task(conn: Connection, episode: RuptureEpisode | None) -> StoredTask | None:
    """The episode's alert Task (alerts.write `task`), if one was written."""
    stored = episode and escalations.task(conn, episode.id, ALERT_TASK)
    return StoredTask(stored["task_id"], stored["task_version"]) if stored else None


def _escalation(conn: Connection, practice: Practice, decision: str,
                episode: RuptureEpisode | None) -> datetime | None:
    """When an unresolved rupture is escalated (alerts.escalate_to): its first unresolved
    assessment + alerts.escalate_after_hours; None when it is not to be escalated."""
    if not (practice.alerts.escalates and decision == "unresolved" and episode
            and episode.is_open):
        return None
    since = escalations.unresolved_since(conn, episode.id)
    return since and escalation_due(since, practice.alerts.escalate_after_hours)


def _assessment(conn: Connection, vault: ClientVault, survey: Mapping, practice: Practice,
                instrument: Instrument, now: datetime) -> dict:
    """The stored decision for this survey, computed once (retries reuse it)."""
    stored = assessments.stored(conn, survey["id"])
    if stored:
        return stored
    history = [stored_observation(row, instrument)
               for row in assessments.client_history(conn, vault, survey)]
    rules = RuptureRules.from_overrides(practice.rupture_rules)
    result = assess_series(history, instrument, rules)[-1]
    opening = RuptureEpisode.opened(str(uuid.uuid4()), survey["practice_id"],
                                    survey["patient_id"], survey["id"], result.flag_text, now)
    open_now = episodes.open_for_client(conn, survey["practice_id"], survey["patient_id"])
    episode, is_new = assign_episode(result.decision, open_now, opening)
    if is_new:
        episodes.insert(conn, episode)
    row = {"survey_id": survey["id"], "decision": result.decision,
           "reasons": list(result.reasons), "flag_text": result.flag_text,
           "interpretation": result.interpretation, "episode_id": episode and episode.id,
           "assessed_at": now}
    assessments.insert(conn, row)
    clinician_state.refresh(conn, survey["practice_id"], survey["patient_id"], now)
    log.info("survey assessed", survey_id=survey["id"], decision=result.decision)
    return row


def stored_observation(row: Mapping, instrument: Instrument) -> SessionObservation:
    """One session of the history, with the scores stored when its answers arrived."""
    scores = None if row["answers"] is None else Scores.stored(
        instrument, row["total"], row["subscales"], row["pomp"])
    return SessionObservation(row["session_id"], row["session_ended_at"], row["answers"], scores)


class _Target(NamedTuple):
    """Where the effects go: the practice's record writer, and the record they write."""

    writer: object  # AllianceRecordWriter or WebhookRecordSink
    record: AllianceRecord
    documents: dict[str, AlertDocument]  # the plan's PDF documents, by identifier


def _write(ctx: JobContext, target: _Target, plan: WriteBackPlan,
           before: RuptureEpisode | None, escalate_at: datetime | None) -> None:
    episode, tasks = plan.episode, []
    for effect in plan.effects:
        written = _apply(target, effect, episode)
        if isinstance(effect, RaiseTask | CompleteTask):
            tasks.append((effect, written))
        elif written is not None:
            episode = effect.settle(episode, written.id, written.version_id)
    with ctx.services.engine.begin() as conn:
        ctx.complete(conn)
        if episode != before:
            episodes.save(conn, episode)
        _store_tasks(conn, episode, tasks, ctx.services.clock())
        if escalate_at is not None and episode.is_open:
            ctx.enqueue(conn, "escalation.due", {"episode_id": episode.id},
                        available_at=escalate_at, dedupe_key=f"escalate:{episode.id}")
    log.info("written back", survey_id=ctx.job.payload["survey_id"],
             effects=[type(effect).__name__ for effect in plan.effects])


def _store_tasks(conn: Connection, episode: RuptureEpisode,
                 tasks: list[tuple[Effect, TaskRef]], now: datetime) -> None:
    """Where the EHR put the episode's alert Task, and when it was completed."""
    for effect, written in tasks:
        if isinstance(effect, RaiseTask):
            escalations.record_task(conn, {
                "episode_id": episode.id, "kind": ALERT_TASK, "practice_id": episode.practice_id,
                "task_id": written.id, "task_version": written.version_id,
                "status": REQUESTED, "created_at": now})
        else:
            escalations.completed(conn, episode.id, ALERT_TASK, written.version_id, now)


def _apply(target: _Target, effect: Effect,
           episode: RuptureEpisode | None) -> FlagRef | DocumentRef | TaskRef | None:
    """One effect through the record writer; the EHR's answer mapped to what the job does next."""
    where = {"resource_type": effect.resource_type, "session_id": target.record.session_id}
    return ehr_call(lambda: _call(target, effect, episode), effect.resource_type, where)


def _call(target: _Target, effect: Effect,
          episode: RuptureEpisode | None) -> FlagRef | DocumentRef | TaskRef | None:
    writer, record = target.writer, target.record
    match effect:
        case RaiseTask(episode_id=episode_id, text=text, owner=owner, raised_at=raised_at):
            return writer.create_task(TaskRequest(
                ALERT_TASK, episode_id, record.patient_id, text, owner,
                episode.flag_id if episode else None, raised_at))
        case CompleteTask(task_id=task_id, task_version=version, completed_at=completed_at):
            return writer.complete_task(TaskRef(task_id, version), completed_at)
        case WriteScores():
            writer.write_scores(record)
            return None
        case RaiseFlag(episode_id=episode_id, text=text):
            return writer.raise_flag(record, text, episode_id)
        case UpdateFlagText(episode_id=episode_id, flag_id=flag_id, flag_version=version,
                            text=text):
            return writer.update_flag_text(FlagRef(flag_id, version, episode_id), text)
        case ResolveFlag(episode_id=episode_id, flag_id=flag_id, flag_version=version):
            return writer.resolve_flag(FlagRef(flag_id, version, episode_id), effect.ended_at)
        case WriteDocument():
            return writer.write_document(record, target.documents[effect.identifier])
        case SupersedeDocument(document_id=document_id, document_version=version):
            writer.supersede_document(DocumentRef(document_id, version, effect.episode_id))
            return None  # the episode keeps the document that replaced it
    raise TypeError(f"no way to apply {effect!r}")


def _record(practice: Practice, instrument: Instrument, survey: Mapping,
            response: Mapping | None, assessment: Mapping) -> AllianceRecord:
    """What is written back: the stored scores, or only the context (a survey not returned)."""
    if response is None:
        answers, scores, response_id = (), None, survey["id"]
        authored = survey["expires_at"] or survey["created_at"]
    else:
        answers = tuple(AnswerItem(link_id, instrument.item(link_id).text, value)
                        for link_id, value in response["answers"].items() if value is not None)
        scores = Scores.stored(instrument, response["total"], response["subscales"],
                               response["pomp"])
        response_id, authored = response["id"], response["submitted_at"]
    return AllianceRecord(
        practice_id=practice.id, patient_id=survey["patient_id"], session_id=survey["session_id"],
        response_id=response_id, instrument_url=instrument.url,
        instrument_version=instrument.version, instrument_title=instrument.title,
        authored=authored, answers=answers, **_shown(scores),
        decision=assessment["decision"], reasons=tuple(assessment["reasons"]),
        interpretation=assessment["interpretation"])


def _shown(scores: Scores | None) -> dict:
    """The scores as the record shows them (36, not 36.0); zeros when there are none."""
    if scores is None:
        return {"total": 0, "total_max": 0, "subscales": {}, "pomp": 0}
    return {"total": plain_number(scores.total), "total_max": plain_number(scores.max_total),
            "subscales": {name: plain_number(value) for name, value in scores.subscales.items()},
            "pomp": plain_number(scores.pomp)}

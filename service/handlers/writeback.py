"""Assess a returned (or missed) survey against the client's history and write the result
into the EHR: QuestionnaireResponse + Observation, and a Flag that follows the alliance."""

from __future__ import annotations

import uuid
from datetime import datetime

import structlog
from sqlalchemy import Connection, and_, or_, select, update

from service import practices
from service.domain.instruments import Instrument
from service.domain.ruptures import RuptureRules, SessionObservation, assess_series
from service.handlers.runner import JobContext, PermanentFailure, RetryLater
from service.persistence.tables import assessments, responses, rupture_episodes, surveys
from service.practices import Practice

log = structlog.get_logger(__name__)

FLAG_RAISING = ("rupture", "unresolved")


def assess_and_write_back(ctx: JobContext) -> None:
    """Jobs `response.writeback` and `survey.missed`."""
    survey_id = ctx.job.payload["survey_id"]
    services = ctx.services
    with services.engine.begin() as conn:
        survey = conn.execute(select(surveys).where(surveys.c.id == survey_id)).mappings().first()
        if survey is None:
            raise PermanentFailure("survey no longer exists")
        practice = practices.load(conn, services.box, survey["practice_id"])
        instrument = services.instruments()[survey["instrument_id"]]
        assessment = _assessment(conn, survey, practice, instrument, services.clock())
        response = conn.execute(select(responses).where(
            responses.c.survey_id == survey_id)).mappings().first()
        episode = _episode(conn, assessment["episode_id"])
    _write(ctx, practice, instrument, dict(survey), response and dict(response), assessment, episode)


def _assessment(conn: Connection, survey, practice: Practice, instrument: Instrument, now: datetime) -> dict:
    """The stored decision for this survey, computed once (retries reuse it)."""
    stored = conn.execute(select(assessments).where(
        assessments.c.survey_id == survey["id"])).mappings().first()
    if stored:
        return dict(stored)
    history = _history(conn, survey)
    rules = RuptureRules.from_overrides(practice.rupture_rules)
    result = assess_series(history, instrument, rules)[-1]
    episode_id = _track_episode(conn, survey, result.decision, result.flag_text, now)
    row = dict(survey_id=survey["id"], decision=result.decision, reasons=list(result.reasons),
               flag_text=result.flag_text, interpretation=result.interpretation,
               episode_id=episode_id, assessed_at=now)
    conn.execute(assessments.insert().values(**row))
    log.info("survey assessed", survey_id=survey["id"], decision=result.decision)
    return row


def _history(conn: Connection, survey) -> list[SessionObservation]:
    """The client's assessed sessions up to this one, in session order, ending with this one."""
    rows = conn.execute(
        select(surveys.c.id, surveys.c.session_id, surveys.c.session_ended_at,
               surveys.c.created_at, responses.c.answers)
        .outerjoin(responses, responses.c.survey_id == surveys.c.id)
        .where(surveys.c.practice_id == survey["practice_id"],
               surveys.c.patient_id == survey["patient_id"],
               surveys.c.instrument_id == survey["instrument_id"],
               # answered, or reached the client and not returned (expired, or closed by the
               # next session); never-sent surveys are not the client's silence
               or_(surveys.c.status.in_(["answered", "expired"]),
                   and_(surveys.c.status == "closed", surveys.c.sent_at.is_not(None))))
    ).mappings().all()

    def when(row):
        return (row["session_ended_at"] or row["created_at"], row["created_at"])

    cutoff = when(survey)
    earlier = sorted((r for r in rows if r["id"] != survey["id"] and when(r) <= cutoff), key=when)
    current = [r for r in rows if r["id"] == survey["id"]]
    return [SessionObservation(r["session_id"], r["session_ended_at"], r["answers"])
            for r in [*earlier, *current]]


def _track_episode(conn: Connection, survey, decision: str, text: str | None, now: datetime) -> str | None:
    """Open a rupture episode on the first rupture; the open one for unresolved/repaired."""
    open_episode = conn.execute(select(rupture_episodes.c.id).where(
        rupture_episodes.c.practice_id == survey["practice_id"],
        rupture_episodes.c.patient_id == survey["patient_id"],
        rupture_episodes.c.status == "open")).scalar()
    if decision in FLAG_RAISING and open_episode is None:
        episode_id = str(uuid.uuid4())
        conn.execute(rupture_episodes.insert().values(
            id=episode_id, practice_id=survey["practice_id"], patient_id=survey["patient_id"],
            status="open", flag_text=text, opened_by_survey_id=survey["id"], opened_at=now))
        return episode_id
    if decision in (*FLAG_RAISING, "repaired"):
        return open_episode
    return None


def _episode(conn: Connection, episode_id: str | None) -> dict | None:
    if episode_id is None:
        return None
    row = conn.execute(select(rupture_episodes).where(rupture_episodes.c.id == episode_id)).mappings().first()
    return dict(row) if row else None


def _write(ctx: JobContext, practice: Practice, instrument: Instrument, survey: dict,
           response: dict | None, assessment: dict, episode: dict | None) -> None:
    from integrations.ehr.errors import EhrPermanentError, EhrTransientError
    from integrations.ehr.writer import FlagRef

    writer = ctx.services.writer_for(practice.ehr)
    record = _record(practice, instrument, survey, response, assessment)
    step = "QuestionnaireResponse"
    flag_update: dict = {}
    try:
        if record is not None:
            writer.write_scores(record)
        decision = assessment["decision"]
        if episode is not None and decision in FLAG_RAISING:
            step = "Flag"
            text = assessment["flag_text"] or "Alliance rupture"
            if episode["flag_id"] is None:
                flag = writer.raise_flag(record or _flag_context(practice, survey, instrument, assessment),
                                         text, episode["id"])
            else:
                ref = FlagRef(episode["flag_id"], episode["flag_version"], episode["id"])
                flag = writer.update_flag_text(ref, text) if text != episode["flag_text"] else ref
            flag_update = dict(flag_id=flag.id, flag_version=flag.version_id, flag_text=text)
        elif episode is not None and decision == "repaired" and episode["status"] == "open":
            step = "Flag"
            if episode["flag_id"] is not None:
                ref = FlagRef(episode["flag_id"], episode["flag_version"], episode["id"])
                flag = writer.resolve_flag(ref, ctx.services.clock())
                flag_update = dict(flag_version=flag.version_id)
            flag_update.update(status="resolved", closed_by_survey_id=survey["id"],
                               closed_at=ctx.services.clock())
    except EhrTransientError as error:
        raise RetryLater(f"EHR unavailable while writing {step}", error.retry_after,
                         {"resource_type": step, "session_id": survey["session_id"]})
    except EhrPermanentError as error:
        raise PermanentFailure(f"EHR refused {step}", {
            "http_status": error.status, "resource_type": step,
            "session_id": survey["session_id"], "operation_outcome": error.operation_outcome})
    with ctx.services.engine.begin() as conn:
        ctx.complete(conn)
        if flag_update:
            conn.execute(update(rupture_episodes).where(rupture_episodes.c.id == episode["id"])
                         .values(**flag_update))
    log.info("written back", survey_id=survey["id"], decision=assessment["decision"])


def _record(practice: Practice, instrument: Instrument, survey: dict, response: dict | None,
            assessment: dict):
    from integrations.ehr.writer import AllianceRecord, AnswerItem
    from service.domain.scoring import score

    if response is None:
        return None
    scores = score(instrument, response["answers"])
    answers = tuple(AnswerItem(link_id, instrument.item(link_id).text, value)
                    for link_id, value in response["answers"].items() if value is not None)
    return AllianceRecord(
        practice_id=practice.id, patient_id=survey["patient_id"], session_id=survey["session_id"],
        response_id=response["id"], instrument_url=instrument.url,
        instrument_version=instrument.version, instrument_title=instrument.title,
        authored=response["submitted_at"], answers=answers, total=scores.total,
        total_max=scores.max_total, subscales=dict(scores.subscales), pomp=scores.pomp,
        decision=assessment["decision"], reasons=tuple(assessment["reasons"]),
        interpretation=assessment["interpretation"],
    )


def _flag_context(practice: Practice, survey: dict, instrument: Instrument, assessment: dict):
    """A record without scores, for a Flag raised by a survey that was not returned."""
    from integrations.ehr.writer import AllianceRecord

    return AllianceRecord(
        practice_id=practice.id, patient_id=survey["patient_id"], session_id=survey["session_id"],
        response_id=survey["id"], instrument_url=instrument.url, instrument_version=instrument.version,
        instrument_title=instrument.title, authored=survey["expires_at"] or survey["created_at"],
        answers=(), total=0, total_max=0, subscales={}, pomp=0, decision=assessment["decision"],
        reasons=tuple(assessment["reasons"]), interpretation=assessment["interpretation"],
    )

"""Escalation of unresolved ruptures (CONTRACT §9.1): jobs of the outbox, and the scheduler's
check that completes escalation Tasks.

- `escalation.due`, scheduled by the write-back when an assessment finds the rupture
  unresolved (dedupe `escalate:{episode}`, due at first unresolved + escalate_after_hours):
  if the episode is still open and nobody acknowledged it since it became unresolved, write
  the Task to `alerts.escalate_to` (If-None-Exist: a retry finds it), then record it, the
  `escalate` action and (with `alerts.escalate_email`) the e-mail job in one transaction.
- `escalation.complete`: set the Task `completed` (If-Match, a 412 re-read), record
  `complete-escalation`.
- `escalation.email`: the supervisor's e-mail, fixed words and a link to the SMART launch, no
  personal data. Its own job, so a retried Task write never sends it again; sent at least
  once: a worker killed between the SMTP server's "250" and the commit sends it again on the
  rerun, with the same Message-ID (SMTP cannot be asked what it accepted). A duplicate notice
  without personal data is the lesser harm than a supervisor never told.
- `schedule_completions`, run by the outbox relay every COMPLETION_CHECK_SECONDS: one query
  finds requested escalation Tasks whose episode closed (repair) or was acknowledged (from
  the SMART view, CDS feedback, or any other writer of `alert_actions`) and queues their
  completion (dedupe `complete-escalation:{episode}`). Nothing that acknowledges has to know
  about escalation.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import structlog

from integrations.delivery.errors import DeliveryPermanentError, DeliveryTemporaryError
from integrations.delivery.port import Notice
from integrations.ehr.records import TaskRef, TaskRequest
from service import practices
from service.domain.alert_actions import COMPLETE_ESCALATION, ESCALATE
from service.domain.episodes import RuptureEpisode
from service.domain.escalation import (
    ACTOR,
    ESCALATION_TASK,
    REQUESTED,
    SOURCE,
    EscalationFacts,
    completion_due,
    escalation_decision,
)
from service.handlers.ports import Ports
from service.handlers.runner import JobContext, PermanentFailure, RetryLater, ehr_call
from service.persistence import outbox
from service.persistence.queries import alert_actions, episodes, escalations
from service.practices import Practice

log = structlog.get_logger(__name__)

COMPLETION_CHECK_SECONDS = 2.0
NOTICE_SUBJECT = "Alliance feedback: an unresolved rupture needs review"


def escalate(ctx: JobContext) -> None:
    """Job `escalation.due`: write the Task to the supervisor, unless no longer needed."""
    episode, practice, since, why_not = _due_facts(ctx)
    if why_not:
        log.info("not escalated", episode_id=ctx.job.payload["episode_id"], reason=why_not)
        return
    now = ctx.services.clock()
    request = TaskRequest(ESCALATION_TASK, episode.id, episode.patient_id,
                          _description(episode, practice), practice.alerts.escalate_to,
                          episode.flag_id, now)
    writer = ctx.services.writer_for(practice.ehr)
    written = _ehr(episode.id, lambda: writer.create_task(request))
    with ctx.services.engine.begin() as conn:
        ctx.complete(conn)
        escalations.record_task(conn, {
            "episode_id": episode.id, "kind": ESCALATION_TASK, "practice_id": practice.id,
            "task_id": written.id, "task_version": written.version_id, "status": REQUESTED,
            "unresolved_since": since, "created_at": now})
        _action(conn, episode, ESCALATE, now)
        if practice.alerts.escalate_email:
            ctx.enqueue(conn, "escalation.email", {"episode_id": episode.id},
                        dedupe_key=f"escalation-email:{episode.id}")
    log.info("escalated", episode_id=episode.id, task_id=written.id)


def _due_facts(ctx: JobContext) -> tuple[RuptureEpisode | None, Practice | None,
                                         datetime | None, str | None]:
    """The episode, its practice, when it became unresolved, and why not to escalate (None)."""
    with ctx.services.engine.begin() as conn:
        episode = episodes.load(conn, ctx.job.payload["episode_id"])
        if episode is None:
            return None, None, None, "the episode no longer exists"
        practice = practices.load(conn, ctx.services.box, episode.practice_id)
        since = escalations.unresolved_since(conn, episode.id)
        facts = EscalationFacts(
            episode_open=episode.is_open,
            acknowledged=bool(since and escalations.acknowledged_since(conn, episode.id, since)),
            escalates=practice is not None and practice.alerts.escalates,
            task_written=escalations.task(conn, episode.id, ESCALATION_TASK) is not None)
    return episode, practice, since, escalation_decision(facts)


def _description(episode: RuptureEpisode, practice: Practice) -> str:
    said = (episode.flag_text or "Unresolved alliance rupture").rstrip(".")
    return (f"{said}. Not acknowledged within {practice.alerts.escalate_after_hours:g} hours "
            "of becoming unresolved.")


def complete(ctx: JobContext) -> None:
    """Job `escalation.complete`: the escalation Task completed (acknowledged or repaired)."""
    episode_id = ctx.job.payload["episode_id"]
    with ctx.services.engine.begin() as conn:
        stored = escalations.task(conn, episode_id, ESCALATION_TASK)
        episode = episodes.load(conn, episode_id)
        practice = episode and practices.load(conn, ctx.services.box, episode.practice_id)
        acknowledged = bool(stored and stored["unresolved_since"] and
                            escalations.acknowledged_since(conn, episode_id,
                                                           stored["unresolved_since"]))
    if not (stored and practice and
            completion_due(stored["status"], episode.is_open, acknowledged)):
        return
    now = ctx.services.clock()
    writer = ctx.services.writer_for(practice.ehr)
    written = _ehr(episode_id, lambda: writer.complete_task(
        TaskRef(stored["task_id"], stored["task_version"]), now))
    with ctx.services.engine.begin() as conn:
        ctx.complete(conn)
        if escalations.completed(conn, episode_id, ESCALATION_TASK, written.version_id, now):
            _action(conn, episode, COMPLETE_ESCALATION, now)
    log.info("escalation completed", episode_id=episode_id, task_id=written.id)


def send_email(ctx: JobContext) -> None:
    """Job `escalation.email`: tell the supervisor a Task is waiting (no personal data)."""
    episode_id = ctx.job.payload["episode_id"]
    with ctx.services.engine.begin() as conn:
        stored = escalations.task(conn, episode_id, ESCALATION_TASK)
        practice = practices.load(conn, ctx.services.box, stored["practice_id"]) if stored else None
    if not (stored and practice and practice.alerts.escalate_email) or stored["emailed_at"]:
        return
    channel = ctx.services.channel_for("email", practice.delivery.settings_for("email"))
    try:
        channel.send_notice(_notice(ctx.services, practice, episode_id))
    except DeliveryTemporaryError as error:
        raise RetryLater("the escalation e-mail could not be sent for now",
                         error.retry_after) from None
    except DeliveryPermanentError as error:
        raise PermanentFailure(f"the escalation e-mail was refused: {error.reason}",
                               {"episode_id": episode_id}) from None
    with ctx.services.engine.begin() as conn:
        ctx.complete(conn)
        escalations.mark_emailed(conn, episode_id, ctx.services.clock())
    log.info("escalation e-mailed", episode_id=episode_id)


def _notice(ports: Ports, practice: Practice, episode_id: str) -> Notice:
    link = f"{ports.settings.public_url}/smart/{practice.id}/launch"
    text = ("An unresolved therapeutic alliance rupture was not acknowledged in time, and a "
            "task to review it now waits for you in the EHR.\n\n"
            f"Open the alliance trend from the patient's chart in the EHR: {link}\n\n"
            "This message holds no client details on purpose.\n")
    return Notice(practice.alerts.escalate_email, NOTICE_SUBJECT, text, f"escalation:{episode_id}")


def schedule_completions(ports: Ports) -> int:
    """Queue the completion of every escalation Task whose episode was acknowledged or
    repaired (the relay calls this every COMPLETION_CHECK_SECONDS); how many were queued."""
    now = ports.clock()
    with ports.engine.begin() as conn:
        return sum(1 for episode_id, practice_id in escalations.escalations_to_complete(conn)
                   if outbox.enqueue(conn, "escalation.complete", {"episode_id": episode_id},
                                     now=now, practice_id=practice_id,
                                     dedupe_key=escalations.completion_key(episode_id)))


def _action(conn, episode: RuptureEpisode, action: str, now: datetime) -> None:
    alert_actions.add(conn, {
        "id": str(uuid.uuid4()), "practice_id": episode.practice_id, "episode_id": episode.id,
        "action": action, "actor": ACTOR, "source": SOURCE, "note": None, "at": now,
        "dedupe_key": f"{action}:{episode.id}"})


def _ehr(episode_id: str, call: Callable[[], TaskRef]) -> TaskRef:
    """A Task write (a refusal goes to the dead-letter store naming what the EHR said, and
    nothing else changes)."""
    return ehr_call(call, "the escalation Task", {"resource_type": "Task",
                                                  "episode_id": episode_id})

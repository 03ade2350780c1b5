"""The write-back planned as data: from a survey's stored assessment and its rupture episode,
the effects to apply to the client's record, in order, and the episode as it stands after.

    effect           in the EHR (FHIR; or a signed webhook event)       when
    WriteScores      QuestionnaireResponse + Observation                  the survey was returned
    RaiseFlag        the episode's Flag, active (once per episode)        rupture / unresolved, no
                                                                          Flag yet
    UpdateFlagText   the Flag's code.text restated, version-aware         rupture / unresolved, the
                                                                          words changed
    ResolveFlag      the Flag inactive, with period.end                   repaired, Flag raised
    WriteDocument    a DocumentReference with a one-page PDF of the       as the Flag: raised,
                     trend (alerts.write document), relatesTo replaces    restated, repaired
                     the episode's previous one
    SupersedeDocument  the previous DocumentReference superseded,         after WriteDocument
                     version-aware                                        replaced one
    RaiseTask        the episode's alert Task, requested (once per         rupture / unresolved, no
                     episode; alerts.write task)                          alert Task yet
    CompleteTask     the alert Task completed, version-aware               repaired, Task written

A resolved episode is never written to again: a decision that arrives after the repair (a job
retried late) writes its scores only. Nothing here does I/O; the handler applies each effect
through the record writer and folds where the EHR put the Flag or the document back into the
episode (`settle`, on the Flag effects and `WriteDocument`).

Alert effects are chosen per episode transition in `_alert_effects` ("raise", "restate",
"resolve"), for each target the practice's `alerts.write` lists (CONTRACT §9.2: flag | task |
document). Escalation to a supervisor is not an effect of the write-back: it falls due later,
from the outbox (`service/domain/escalation.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from .episodes import RuptureEpisode
from .ruptures import FLAG_DECISIONS

DEFAULT_FLAG_TEXT = "Alliance rupture"


@dataclass(frozen=True)
class AssessedSurvey:
    """What the plan needs of a survey's stored assessment."""

    survey_id: str
    decision: str
    flag_text: str | None
    answered: bool  # a response was returned (a missed survey has no scores to write)


@dataclass(frozen=True)
class WriteScores:
    """Write the scored response (QuestionnaireResponse and Observation), idempotently."""

    resource_type: ClassVar[str] = "QuestionnaireResponse"


@dataclass(frozen=True)
class RaiseFlag:
    """Create the episode's active Flag saying `text` (found again, not duplicated, on retry)."""

    episode_id: str
    text: str
    resource_type: ClassVar[str] = "Flag"

    def settle(self, episode: RuptureEpisode, flag_id: str, version: str | None) -> RuptureEpisode:
        return episode.with_flag(flag_id, version, self.text)


@dataclass(frozen=True)
class UpdateFlagText:
    """Replace what the episode's Flag says (an unresolved rupture), keeping everything else."""

    episode_id: str
    flag_id: str
    flag_version: str | None
    text: str
    resource_type: ClassVar[str] = "Flag"

    def settle(self, episode: RuptureEpisode, flag_id: str, version: str | None) -> RuptureEpisode:
        return episode.with_flag(flag_id, version, self.text)


@dataclass(frozen=True)
class ResolveFlag:
    """Set the episode's Flag inactive with period.end (the alliance was repaired)."""

    episode_id: str
    flag_id: str
    flag_version: str | None
    ended_at: datetime
    resource_type: ClassVar[str] = "Flag"

    def settle(self, episode: RuptureEpisode, flag_id: str, version: str | None) -> RuptureEpisode:
        return episode.with_flag(flag_id, version, episode.flag_text)


@dataclass(frozen=True)
class WriteDocument:
    """Create the episode's `number`th DocumentReference: a one-page PDF of the trend showing
    the rupture `open` (saying `text`) or `repaired`; it replaces `replaces` (the previous
    document's id), if any. Found again, not duplicated, on retry (its identifier is
    `{episode_id}.{number}`)."""

    episode_id: str
    number: int
    state: str  # "open" | "repaired"
    text: str
    replaces: str | None
    resource_type: ClassVar[str] = "DocumentReference"

    @property
    def identifier(self) -> str:
        return f"{self.episode_id}.{self.number}"

    def settle(self, episode: RuptureEpisode, document_id: str,
               version: str | None) -> RuptureEpisode:
        return episode.with_document(document_id, version, self.number, self.text)


@dataclass(frozen=True)
class SupersedeDocument:
    """Set the episode's previous DocumentReference `superseded` (a newer one replaces it)."""

    episode_id: str
    document_id: str
    document_version: str | None
    resource_type: ClassVar[str] = "DocumentReference"


@dataclass(frozen=True)
class StoredTask:
    """Where an episode's alert Task lives in the EHR, as the service stored it."""

    id: str
    version: str | None


@dataclass(frozen=True)
class RaiseTask:
    """Create the episode's alert Task, requested, owned by `owner` (found again, not
    duplicated, on retry); its focus is the episode's Flag when one is written by then."""

    episode_id: str
    text: str
    owner: str | None
    raised_at: datetime
    resource_type: ClassVar[str] = "Task"


@dataclass(frozen=True)
class CompleteTask:
    """Set the episode's alert Task completed (the alliance was repaired)."""

    episode_id: str
    task_id: str
    task_version: str | None
    completed_at: datetime
    resource_type: ClassVar[str] = "Task"


Effect = (WriteScores | RaiseFlag | UpdateFlagText | ResolveFlag | WriteDocument
          | SupersedeDocument | RaiseTask | CompleteTask)
FLAG, DOCUMENT, TASK = "flag", "document", "task"


@dataclass(frozen=True)
class WriteBackPlan:
    """The effects, in order, and the episode once they are applied (before the EHR's ids)."""

    effects: tuple[Effect, ...]
    episode: RuptureEpisode | None


def plan_write_back(
    survey: AssessedSurvey, episode: RuptureEpisode | None, now: datetime,
    write: tuple[str, ...] = (FLAG,), task_owner: str | None = None,
    alert_task: StoredTask | None = None,
) -> WriteBackPlan:
    """What to write for one assessed survey, given the episode its assessment belongs to,
    what the practice writes for an open rupture (`alerts.write`; a Task is owned by
    `task_owner`, alerts.escalate_to) and the episode's alert Task if one is stored."""
    scores = (WriteScores(),) if survey.answered else ()
    transition = _transition(survey, episode)
    if transition is None:
        return WriteBackPlan(scores, episode)
    text = survey.flag_text or DEFAULT_FLAG_TEXT
    after = episode.resolved(survey.survey_id, now) if transition == "resolve" else episode
    effects = _alert_effects(transition, episode, text, now, write, task_owner, alert_task)
    return WriteBackPlan(scores + effects, after)


def _transition(survey: AssessedSurvey, episode: RuptureEpisode | None) -> str | None:
    """How this decision moves the (open) episode: raise, restate, resolve, or not at all."""
    if episode is None or not episode.is_open:
        return None
    if survey.decision in FLAG_DECISIONS:
        if not episode.alerted:
            return "raise"
        text = survey.flag_text or DEFAULT_FLAG_TEXT
        return "restate" if text != episode.flag_text else None
    return "resolve" if survey.decision == "repaired" else None


def _alert_effects(
    transition: str, episode: RuptureEpisode, text: str, now: datetime, write: tuple[str, ...],
    task_owner: str | None = None, alert_task: StoredTask | None = None,
) -> tuple[Effect, ...]:
    """The effects that tell the clinician, per transition, for each target in `write`."""
    effects: tuple[Effect, ...] = ()
    if FLAG in write:
        effects += _flag_effects(transition, episode, text, now)
    if DOCUMENT in write:
        effects += _document_effects(transition, episode, text)
    if TASK in write:
        effects += _task_effects(transition, episode, text, now, task_owner, alert_task)
    return effects


def _flag_effects(
    transition: str, episode: RuptureEpisode, text: str, now: datetime
) -> tuple[Effect, ...]:
    if transition == "raise" or (transition == "restate" and not episode.flag_raised):
        return (RaiseFlag(episode.id, text),)
    if transition == "restate":
        return (UpdateFlagText(episode.id, episode.flag_id, episode.flag_version, text),)
    if episode.flag_raised:  # resolve; an episode whose Flag never got written just closes
        return (ResolveFlag(episode.id, episode.flag_id, episode.flag_version, now),)
    return ()


def _document_effects(transition: str, episode: RuptureEpisode, text: str) -> tuple[Effect, ...]:
    """A new document for each transition, replacing the episode's previous one; an episode
    that never had a document just closes on repair."""
    if transition == "resolve" and episode.document_id is None:
        return ()
    if transition == "resolve":  # the words stay those of the rupture that was repaired
        state, text = "repaired", episode.flag_text or text
    else:
        state = "open"
    written = WriteDocument(episode.id, episode.document_number + 1, state, text,
                            episode.document_id)
    if episode.document_id is None:
        return (written,)
    return (written, SupersedeDocument(episode.id, episode.document_id,
                                       episode.document_version))


def _task_effects(transition: str, episode: RuptureEpisode, text: str, now: datetime,
                  owner: str | None, alert_task: StoredTask | None) -> tuple[Effect, ...]:
    """The alert Task says what it is for once (later words go to the Flag or the document);
    it is completed on repair."""
    if transition != "resolve":
        return () if alert_task else (RaiseTask(episode.id, text, owner, now),)
    if alert_task:
        return (CompleteTask(episode.id, alert_task.id, alert_task.version, now),)
    return ()

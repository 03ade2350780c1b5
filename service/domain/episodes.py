"""A rupture episode: one rupture of one client's alliance, as the clinical record knows it.

    no episode ──rupture | unresolved──▶ open ──rupture | unresolved──▶ open
                                           │   (new words: the Flag's text is restated,
                                           │    e.g. "Unresolved alliance rupture: …")
                                           └──repaired──▶ resolved (the Flag set inactive)

The survey whose assessment first says `rupture` (or `unresolved`) while the client has no
open episode opens one; later assessments that say rupture, unresolved or repaired belong to
that open episode, and `repaired` resolves it. A client has at most one open episode. The
episode's id is its Flag's identifier in the EHR, so a retried write finds the same Flag;
`flag_id` / `flag_version` say where that Flag is once the EHR has answered; with
`alerts.write` document, `document_id` / `document_version` say where the episode's latest
DocumentReference is, and `document_number` how many it has had (each new one replaces the one
before: the identifier of the next is `{episode id}.{number}`).

This is the one model of an episode's lifecycle. The rupture engine keeps detection state of
its own while it replays a client's history (`ruptures._RepairWatch`: which scales fell, their
troughs, how far into the repair window the client is). That state is rebuilt from the
client's surveys at every assessment and never stored; the engine reports what it sees as
decisions, and only decisions move an episode (`assign_episode` here, when a survey is
assessed; `writeback.plan_write_back`, when the record is written). Keeping the two apart lets
the rules change, or a history be replayed, without a stored copy of the engine's state to
disagree with.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import NamedTuple

from .ruptures import FLAG_DECISIONS

OPEN, RESOLVED = "open", "resolved"
# Decisions that belong to the client's open episode, if there is one.
EPISODE_DECISIONS = (*FLAG_DECISIONS, "repaired")


@dataclass(frozen=True)
class RuptureEpisode:
    """One rupture of one client, from the survey that showed it to the one that showed repair."""

    id: str
    practice_id: str
    patient_id: str
    status: str  # OPEN | RESOLVED
    opened_by_survey_id: str
    opened_at: datetime
    flag_id: str | None = None  # the Flag's id in the EHR, once raised
    flag_version: str | None = None
    flag_text: str | None = None  # what the Flag says (or will say, before it is raised)
    closed_by_survey_id: str | None = None
    closed_at: datetime | None = None
    document_id: str | None = None  # the latest DocumentReference's id (alerts.write document)
    document_version: str | None = None
    document_number: int = 0  # how many documents the episode has had: the next one's number

    @classmethod
    def opened(
        cls, episode_id: str, practice_id: str, patient_id: str, survey_id: str,
        flag_text: str | None, now: datetime,
    ) -> RuptureEpisode:
        """A new open episode, its Flag not raised yet."""
        return cls(episode_id, practice_id, patient_id, OPEN, survey_id, now, flag_text=flag_text)

    @property
    def is_open(self) -> bool:
        return self.status == OPEN

    @property
    def flag_raised(self) -> bool:
        return self.flag_id is not None

    @property
    def alerted(self) -> bool:
        """Whether the EHR was told of it yet: a Flag raised or a document written."""
        return self.flag_id is not None or self.document_id is not None

    def with_flag(self, flag_id: str, flag_version: str | None, text: str) -> RuptureEpisode:
        """The episode once the EHR holds its Flag, saying `text`, at this version."""
        return replace(self, flag_id=flag_id, flag_version=flag_version, flag_text=text)

    def with_document(self, document_id: str, version: str | None, number: int,
                      text: str) -> RuptureEpisode:
        """The episode once the EHR holds its `number`th DocumentReference, saying `text`."""
        return replace(self, document_id=document_id, document_version=version,
                       document_number=number, flag_text=text)

    def resolved(self, survey_id: str, now: datetime) -> RuptureEpisode:
        """The episode closed by the survey that showed the repair."""
        return replace(self, status=RESOLVED, closed_by_survey_id=survey_id, closed_at=now)


class EpisodeAssignment(NamedTuple):
    """The episode an assessment belongs to (or None), and whether it is new (to be stored)."""

    episode: RuptureEpisode | None
    is_new: bool


def assign_episode(
    decision: str, open_episode: RuptureEpisode | None, new_episode: RuptureEpisode
) -> EpisodeAssignment:
    """Which episode a freshly assessed survey belongs to.

    A rupture or unresolved decision with no open episode opens `new_episode` (the one this
    survey would open); rupture, unresolved and repaired belong to the open episode; other
    decisions, and a repair with nothing open, belong to none.
    """
    if decision in FLAG_DECISIONS and open_episode is None:
        return EpisodeAssignment(new_episode, True)
    if decision in EPISODE_DECISIONS:
        return EpisodeAssignment(open_episode, False)
    return EpisodeAssignment(None, False)

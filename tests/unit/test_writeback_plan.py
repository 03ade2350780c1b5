"""The write-back plan and the rupture episode's lifecycle, as values: every transition, no
database, no EHR."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from service.domain.episodes import OPEN, RESOLVED, RuptureEpisode, assign_episode
from service.domain.writeback import (
    DEFAULT_FLAG_TEXT,
    AssessedSurvey,
    RaiseFlag,
    ResolveFlag,
    UpdateFlagText,
    WriteScores,
    plan_write_back,
)

OPENED_AT = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
NOW = OPENED_AT + timedelta(days=14)
RUPTURE = "Alliance rupture: bond fell from 9 to 5"
UNRESOLVED = "Unresolved alliance rupture: not repaired 3 sessions after the rupture"

NEW = RuptureEpisode.opened("ep-new", "northside", "pat-17", "survey-9", RUPTURE, NOW)
# An open episode whose Flag is not in the EHR yet, one whose Flag is, and a resolved one.
PENDING = RuptureEpisode.opened("ep-1", "northside", "pat-17", "survey-1", RUPTURE, OPENED_AT)
RAISED = PENDING.with_flag("flag-7", "1", RUPTURE)
CLOSED = RAISED.resolved("survey-4", OPENED_AT + timedelta(days=7))


def survey(decision: str, flag_text: str | None = None, answered: bool = True) -> AssessedSurvey:
    return AssessedSurvey("survey-9", decision, flag_text, answered)


@pytest.mark.parametrize(
    ("decision", "open_episode", "expected", "is_new"),
    [
        ("none", None, None, False),
        ("check-in", None, None, False),
        ("watch", None, None, False),
        ("rupture", None, NEW, True),  # the first rupture opens an episode
        ("unresolved", None, NEW, True),  # e.g. a rupture seen before the episode store existed
        ("rupture", RAISED, RAISED, False),  # while one is open, no second episode
        ("unresolved", RAISED, RAISED, False),
        ("repaired", RAISED, RAISED, False),
        ("repaired", None, None, False),  # a repair with nothing open closes nothing
        ("watch", RAISED, None, False),  # inside the repair window: no episode effect
        ("none", RAISED, None, False),
    ],
)
def test_which_episode_an_assessment_belongs_to(decision, open_episode, expected, is_new):
    assigned = assign_episode(decision, open_episode, NEW)

    assert assigned.episode == expected
    assert assigned.is_new is is_new


UPDATE = UpdateFlagText("ep-1", "flag-7", "1", UNRESOLVED)
RESOLVE = ResolveFlag("ep-1", "flag-7", "1", NOW)


@pytest.mark.parametrize(
    ("assessed", "episode", "effects", "episode_after"),
    [
        # no rupture: scores only, or nothing at all for a survey not returned
        (survey("none"), None, [WriteScores()], None),
        (survey("check-in"), None, [WriteScores()], None),
        (survey("watch", answered=False), None, [], None),
        # a rupture raises the episode's Flag, with or without scores to write
        (survey("rupture", RUPTURE), PENDING, [WriteScores(), RaiseFlag("ep-1", RUPTURE)],
         PENDING),
        (survey("unresolved", UNRESOLVED, answered=False), PENDING,
         [RaiseFlag("ep-1", UNRESOLVED)], PENDING),
        (survey("rupture", None), PENDING, [WriteScores(), RaiseFlag("ep-1", DEFAULT_FLAG_TEXT)],
         PENDING),
        # unresolved: the raised Flag says so; the same words again write nothing (a retry)
        (survey("unresolved", UNRESOLVED), RAISED, [WriteScores(), UPDATE], RAISED),
        (survey("unresolved", UNRESOLVED, answered=False), RAISED, [UPDATE], RAISED),
        (survey("rupture", RUPTURE), RAISED, [WriteScores()], RAISED),
        # repaired: the Flag is resolved and the episode closed; without a Flag, just closed
        (survey("repaired"), RAISED, [WriteScores(), RESOLVE], RAISED.resolved("survey-9", NOW)),
        (survey("repaired"), PENDING, [WriteScores()], PENDING.resolved("survey-9", NOW)),
        # a resolved episode is never written to again (a job retried after the repair)
        (survey("repaired"), CLOSED, [WriteScores()], CLOSED),
        (survey("rupture", RUPTURE), CLOSED, [WriteScores()], CLOSED),
        (survey("unresolved", UNRESOLVED), CLOSED, [WriteScores()], CLOSED),
        (survey("rupture", RUPTURE), replace(PENDING, status=RESOLVED), [WriteScores()],
         replace(PENDING, status=RESOLVED)),
        # decisions that do not move an episode leave it alone
        (survey("watch"), RAISED, [WriteScores()], RAISED),
    ],
)
def test_the_plan_for_each_transition(assessed, episode, effects, episode_after):
    plan = plan_write_back(assessed, episode, NOW)

    assert list(plan.effects) == effects
    assert plan.episode == episode_after


def test_resolving_records_who_closed_the_episode_and_when():
    plan = plan_write_back(survey("repaired"), RAISED, NOW)

    assert plan.episode.status == RESOLVED
    assert (plan.episode.closed_by_survey_id, plan.episode.closed_at) == ("survey-9", NOW)
    assert (plan.episode.opened_by_survey_id, plan.episode.flag_id) == ("survey-1", "flag-7")


@pytest.mark.parametrize(
    ("effect", "episode", "flag_id", "version", "expected"),
    [
        (RaiseFlag("ep-1", RUPTURE), PENDING, "flag-7", "1", RAISED),
        (UPDATE, RAISED, "flag-7", "2", RAISED.with_flag("flag-7", "2", UNRESOLVED)),
        (RESOLVE, RAISED.resolved("survey-9", NOW), "flag-7", "3",
         replace(RAISED.resolved("survey-9", NOW), flag_version="3")),
    ],
)
def test_what_the_ehr_answered_is_folded_into_the_episode(
    effect, episode, flag_id, version, expected
):
    assert effect.settle(episode, flag_id, version) == expected


class FakeRecord:
    """Applies plans the way the handler does, against a Flag held in a dict."""

    def __init__(self) -> None:
        self.flag: dict | None = None
        self.scores_written = 0

    def apply(self, assessed: AssessedSurvey, episode: RuptureEpisode | None, now: datetime):
        plan = plan_write_back(assessed, episode, now)
        after = plan.episode
        for effect in plan.effects:
            match effect:
                case WriteScores():
                    self.scores_written += 1
                    continue
                case RaiseFlag():
                    self.flag = {"id": "flag-1", "version": 1, "status": "active"}
                case UpdateFlagText():
                    self.flag["version"] += 1
                case ResolveFlag():
                    self.flag |= {"version": self.flag["version"] + 1, "status": "inactive"}
            self.flag["text"] = getattr(effect, "text", self.flag.get("text"))
            after = effect.settle(after, self.flag["id"], str(self.flag["version"]))
        return after


def test_a_whole_episode_rupture_unresolved_repaired():
    record = FakeRecord()
    opened = assign_episode("rupture", None, NEW).episode

    episode = record.apply(survey("rupture", RUPTURE), opened, NOW)
    assert record.flag == {"id": "flag-1", "version": 1, "status": "active", "text": RUPTURE}
    assert (episode.status, episode.flag_id, episode.flag_version) == (OPEN, "flag-1", "1")

    assert record.apply(survey("rupture", RUPTURE), episode, NOW) == episode  # replayed: no-op
    episode = record.apply(survey("unresolved", UNRESOLVED, answered=False), episode, NOW)
    assert (record.flag["text"], episode.flag_text, episode.flag_version) == (
        UNRESOLVED, UNRESOLVED, "2")

    episode = record.apply(survey("repaired"), episode, NOW + timedelta(days=7))
    assert record.flag["status"] == "inactive"
    assert (episode.status, episode.flag_version, episode.closed_by_survey_id) == (
        RESOLVED, "3", "survey-9")
    assert record.apply(survey("rupture", RUPTURE), episode, NOW) == episode
    assert record.flag["version"] == 3, "a resolved episode's Flag is not touched again"
    assert record.scores_written == 4

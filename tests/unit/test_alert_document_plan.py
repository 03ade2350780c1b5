"""The alert document in the write-back plan (alerts.write document, CONTRACT §9.2), as values:
which effects each transition plans for each combination of targets, and what the EHR's answer
folds into the episode. No database, no EHR."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.domain.episodes import RuptureEpisode
from service.domain.writeback import (
    AssessedSurvey,
    RaiseFlag,
    RaiseTask,
    ResolveFlag,
    SupersedeDocument,
    UpdateFlagText,
    WriteDocument,
    WriteScores,
    plan_write_back,
)

OPENED_AT = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
NOW = OPENED_AT + timedelta(days=14)
RUPTURE = "Alliance rupture: bond fell from 9 to 5"
UNRESOLVED = "Unresolved alliance rupture: not repaired 3 sessions after the rupture"

PENDING = RuptureEpisode.opened("ep-1", "northside", "pat-17", "survey-1", RUPTURE, OPENED_AT)
DOCUMENTED = PENDING.with_document("doc-1", "1", 1, RUPTURE)  # document only (no Flag)
BOTH = DOCUMENTED.with_flag("flag-7", "1", RUPTURE)
RESTATED = DOCUMENTED.with_document("doc-2", "1", 2, UNRESOLVED)


def survey(decision: str, flag_text: str | None = None) -> AssessedSurvey:
    return AssessedSurvey("survey-9", decision, flag_text, answered=True)


@pytest.mark.parametrize(
    ("assessed", "episode", "write", "alerts"),
    [
        # raised: one document, the episode's first, replacing nothing
        (survey("rupture", RUPTURE), PENDING, ("document",),
         [WriteDocument("ep-1", 1, "open", RUPTURE, None)]),
        (survey("rupture", RUPTURE), PENDING, ("flag", "document"),
         [RaiseFlag("ep-1", RUPTURE), WriteDocument("ep-1", 1, "open", RUPTURE, None)]),
        (survey("rupture", RUPTURE), PENDING, ("flag",), [RaiseFlag("ep-1", RUPTURE)]),
        # the task target raises a Task (tests/unit/test_escalation_rules.py has the rest)
        (survey("rupture", RUPTURE), PENDING, ("task",), [RaiseTask("ep-1", RUPTURE, None, NOW)]),
        # the same words again (a retry, or rupture after rupture): nothing new
        (survey("rupture", RUPTURE), DOCUMENTED, ("document",), []),
        # unresolved: a new document replaces the first, which is then superseded
        (survey("unresolved", UNRESOLVED), DOCUMENTED, ("document",),
         [WriteDocument("ep-1", 2, "open", UNRESOLVED, "doc-1"),
          SupersedeDocument("ep-1", "doc-1", "1")]),
        (survey("unresolved", UNRESOLVED), BOTH, ("flag", "document"),
         [UpdateFlagText("ep-1", "flag-7", "1", UNRESOLVED),
          WriteDocument("ep-1", 2, "open", UNRESOLVED, "doc-1"),
          SupersedeDocument("ep-1", "doc-1", "1")]),
        # a practice that adds the Flag while a document-only episode is open raises it then
        (survey("unresolved", UNRESOLVED), DOCUMENTED, ("flag", "document"),
         [RaiseFlag("ep-1", UNRESOLVED), WriteDocument("ep-1", 2, "open", UNRESOLVED, "doc-1"),
          SupersedeDocument("ep-1", "doc-1", "1")]),
        # repaired: a document showing the repair, in the words of the rupture it closes
        (survey("repaired"), RESTATED, ("document",),
         [WriteDocument("ep-1", 3, "repaired", UNRESOLVED, "doc-2"),
          SupersedeDocument("ep-1", "doc-2", "1")]),
        (survey("repaired"), BOTH, ("flag", "document"),
         [ResolveFlag("ep-1", "flag-7", "1", NOW),
          WriteDocument("ep-1", 2, "repaired", RUPTURE, "doc-1"),
          SupersedeDocument("ep-1", "doc-1", "1")]),
        # an episode that never had a document just closes
        (survey("repaired"), PENDING.with_flag("flag-7", "1", RUPTURE), ("flag", "document"),
         [ResolveFlag("ep-1", "flag-7", "1", NOW)]),
        (survey("repaired"), PENDING, ("document",), []),
    ],
)
def test_the_alerts_planned_for_each_transition_and_target(assessed, episode, write, alerts):
    plan = plan_write_back(assessed, episode, NOW, write)

    assert list(plan.effects) == [WriteScores(), *alerts]


def test_a_resolved_episode_gets_no_document():
    closed = RESTATED.resolved("survey-4", NOW)

    plan = plan_write_back(survey("repaired"), closed, NOW, ("document",))

    assert list(plan.effects) == [WriteScores()]


def test_each_document_of_an_episode_has_its_own_identifier():
    first = WriteDocument("ep-1", 1, "open", RUPTURE, None)
    second = WriteDocument("ep-1", 2, "open", UNRESOLVED, "doc-1")

    assert (first.identifier, second.identifier) == ("ep-1.1", "ep-1.2")


def test_what_the_ehr_answered_is_folded_into_the_episode():
    written = WriteDocument("ep-1", 2, "open", UNRESOLVED, "doc-1")

    after = written.settle(DOCUMENTED, "doc-2", "1")

    assert (after.document_id, after.document_version, after.document_number) == ("doc-2", "1", 2)
    assert after.flag_text == UNRESOLVED and after.flag_id is None
    assert after.alerted and not PENDING.alerted


def test_a_whole_episode_written_as_documents_only():
    """Raise, restate, repair, applied as the handler applies them (the EHR's ids folded in)."""
    episode, ids = PENDING, iter(["doc-1", "doc-2", "doc-3"])
    written = []
    for assessed in (survey("rupture", RUPTURE), survey("unresolved", UNRESOLVED),
                     survey("repaired")):
        plan = plan_write_back(assessed, episode, NOW, ("document",))
        episode = plan.episode
        for effect in plan.effects:
            if isinstance(effect, WriteDocument):
                written.append((effect.identifier, effect.state, effect.replaces))
                episode = effect.settle(episode, next(ids), "1")

    assert written == [("ep-1.1", "open", None), ("ep-1.2", "open", "doc-1"),
                       ("ep-1.3", "repaired", "doc-2")]
    assert episode.status == "resolved" and episode.document_id == "doc-3"

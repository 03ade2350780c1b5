"""The rules of acting on an open rupture (pure): what counts for the current stage, the
snooze in force, the practice's limits, the note's cap."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from service.clinician.alert_actions import (
    ALREADY_ACKNOWLEDGED,
    NOTE_MAX,
    ActionRefused,
    Entry,
    EpisodeActions,
    Limits,
    actor_words,
    checked_days,
    checked_note,
    decide,
)

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)
LIMITS = Limits(max_snooze_days=7, max_snoozes=2)


def state(*entries: Entry, stage_since: datetime | None = None,
          limits: Limits = LIMITS) -> EpisodeActions:
    return EpisodeActions("ep-1", entries, stage_since, limits, NOW)


def ack(days_ago: float, source: str = "smart-view") -> Entry:
    return Entry("acknowledge", "Practitioner/1", source, NOW - timedelta(days=days_ago))


def snooze(days_ago: float, days: float) -> Entry:
    at = NOW - timedelta(days=days_ago)
    return Entry("snooze", "Practitioner/1", "smart-view", at, until=at + timedelta(days=days))


def test_an_acknowledgment_counts_for_its_stage_only():
    assert decide("acknowledge", state()) is None  # store one
    assert decide("acknowledge", state(ack(2))) == ALREADY_ACKNOWLEDGED
    assert decide("acknowledge", state(ack(2, "cds-feedback"))) == ALREADY_ACKNOWLEDGED
    turned_unresolved = NOW - timedelta(days=1)
    assert state(ack(2), stage_since=turned_unresolved).acknowledgment is None
    assert decide("acknowledge", state(ack(2), stage_since=turned_unresolved)) is None


def test_the_snooze_in_force_is_the_latest_end_of_this_stage_still_ahead():
    assert state(snooze(1, 3)).snoozed_until == NOW + timedelta(days=2)
    assert state(snooze(1, 3), snooze(0.5, 1)).snoozed_until == NOW + timedelta(days=2)
    assert state(snooze(3, 2)).snoozed_until is None  # over
    assert state(snooze(1, 3), stage_since=NOW - timedelta(hours=1)).snoozed_until is None


def test_snoozes_are_counted_per_episode_across_stages():
    two = state(snooze(5, 1), snooze(1, 1), stage_since=NOW - timedelta(hours=1))
    assert two.snoozes_used == 2 and two.snoozes_left == 0
    with pytest.raises(ActionRefused) as refused:
        decide("snooze", two, 1)
    assert refused.value.status == 409 and "2 snoozes per rupture" in refused.value.detail
    assert decide("snooze", state(snooze(5, 1)), 3) == NOW + timedelta(days=3)
    with pytest.raises(ActionRefused, match="no snooze per rupture"):
        decide("snooze", state(limits=Limits(7, 0)), 1)


@pytest.mark.parametrize("text", ["8", "0", "-1", "1.5", "", None, "seven", "٣" * 30])
def test_a_snooze_length_outside_the_practices_limit_is_refused(text):
    with pytest.raises(ActionRefused) as refused:
        checked_days(text, LIMITS)
    assert refused.value.title == "Snooze for 1 to 7 days"
    assert len(refused.value.detail) < 200  # the echo is cut


def test_a_snooze_length_inside_the_limit_is_taken():
    assert [checked_days(text, LIMITS) for text in ("1", " 7 ")] == [1, 7]
    assert checked_days("1", Limits(1, 2)) == 1


def test_the_note_is_trimmed_optional_and_capped():
    assert checked_note(None) is None and checked_note("   ") is None
    assert checked_note("  ok  ") == "ok"
    assert checked_note("n" * NOTE_MAX) == "n" * NOTE_MAX
    typed = ("n" * 9 + "\n") * (NOTE_MAX // 10)  # what the textarea let through, sent as CRLF
    assert checked_note(typed.replace("\n", "\r\n")) == typed.strip()
    with pytest.raises(ActionRefused, match=f"at most {NOTE_MAX} characters; this one has"):
        checked_note("n" * (NOTE_MAX + 1))


def test_who_and_what_in_words():
    zone = ZoneInfo("America/Chicago")
    assert actor_words("Practitioner/7") == "Practitioner/7"
    assert actor_words("cds-client:https://ehr.test") == \
        "a clinician in the EHR (CDS Hooks feedback)"
    assert "the launch named no user" in actor_words("smart-launch:https://ehr.test/fhir")
    assert actor_words("service") == "the service"
    assert ack(0, "cds-feedback").what(zone) == "Acknowledged in the EHR (CDS Hooks card)"
    assert snooze(0, 2).what(zone) == "Snoozed until 22 Nov 2026, 09:00 (CST)"
    assert Entry("escalate", "service", "escalation", NOW).what(zone) == \
        "Escalated to the supervisor"
    assert Entry("something-new", "service", "x", NOW).what(zone) == "something-new"

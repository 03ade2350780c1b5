"""The Healthie record writer on the in-memory Healthie: one form answer group per response,
one HIGH CareAlert per rupture episode, found again after a lost answer, deleted on repair."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from integrations.ehr.errors import EhrTransientError
from integrations.ehr.writer import AllianceRecord, AnswerItem, FlagRef
from integrations.healthie.fake import InMemoryHealthie
from integrations.healthie.writer import HealthieRecordWriter, episode_marker, summary

SECTION = {
    "form_id": "300",
    "form_fields": {"summary": "301", "total": "302", "bond": "303", "decision": "304"},
    "care_alert_days": 14,
}
EPISODE = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
RECORD = AllianceRecord(
    practice_id="northside",
    patient_id="77",
    session_id="4321",
    response_id="resp-1",
    instrument_url="https://alliance-feedback.org/fhir/Questionnaire/brief-alliance-check",
    instrument_version="1.0.0",
    instrument_title="Brief",
    authored=datetime(2026, 11, 26, 16, tzinfo=timezone.utc),
    answers=(AnswerItem("bond", "Bond", 2),),
    total=6.0,
    total_max=40.0,
    subscales={"bond": 2.0, "goals": 1.5},
    pomp=15.0,
    decision="rupture",
    reasons=("The alliance is near the bottom of the scale.",),
    interpretation="low",
)


@pytest.fixture
def healthie(clock):
    return InMemoryHealthie(clock)


@pytest.fixture
def writer(healthie, clock):
    return HealthieRecordWriter(healthie, SECTION, clock)


def test_scores_are_one_finished_form_answer_group_with_the_mapped_answers(writer, healthie):
    written = writer.write_scores(RECORD)
    again = writer.write_scores(RECORD)
    assert again == written
    [(group_id, group)] = healthie.form_answer_groups.items()
    assert written.questionnaire_response_id == group_id
    assert group["finished"] is True and group["external_id"] == "alliance-resp-1"
    assert group["user_id"] == "77" and group["appointment_id"] == "4321"
    assert group["custom_module_form_id"] == "300"
    answers = {a["custom_module_id"]: a["answer"] for a in group["form_answers"]}
    assert answers == {"301": summary(RECORD), "302": "6", "303": "2", "304": "rupture"}
    assert "Alliance 6 of 40" in answers["301"] and "bond 2, goals 1.5" in answers["301"]


def test_a_create_whose_answer_was_lost_is_not_made_twice(writer, healthie):
    healthie.fail_next(EhrTransientError("timeout"), "createFormAnswerGroup", after_write=True)
    with pytest.raises(EhrTransientError):
        writer.write_scores(RECORD)
    writer.write_scores(RECORD)
    assert len(healthie.form_answer_groups) == 1


def test_a_rupture_raises_one_high_care_alert_with_an_expiry(writer, healthie, clock):
    healthie.fail_next(EhrTransientError("timeout"), "createCareAlert", after_write=True)
    with pytest.raises(EhrTransientError):
        writer.raise_flag(RECORD, "Alliance rupture: near the bottom of the scale", EPISODE)
    flag = writer.raise_flag(RECORD, "Alliance rupture: near the bottom of the scale", EPISODE)
    [(alert_id, alert)] = healthie.care_alerts.items()
    assert flag == FlagRef(f"77/{alert_id}", None, EPISODE)
    assert alert["priority"] == "HIGH" and alert["patient_id"] == "77"
    assert alert["expires_on"] == date(2026, 12, 10).isoformat()  # 14 days after the clock
    assert (
        alert["content"].startswith("Alliance rupture")
        and episode_marker(EPISODE) in alert["content"]
    )


def test_unresolved_updates_the_text_and_the_expiry(writer, healthie, clock):
    flag = writer.raise_flag(RECORD, "Alliance rupture", EPISODE)
    clock.advance(days=7)
    assert writer.update_flag_text(flag, "Alliance still strained") == flag
    [alert] = healthie.care_alerts.values()
    assert alert["content"].startswith("Alliance still strained")
    assert alert["expires_on"] == date(2026, 12, 17).isoformat()


def test_unresolved_after_the_alert_was_removed_raises_it_again(writer, healthie):
    flag = writer.raise_flag(RECORD, "Alliance rupture", EPISODE)
    healthie.delete_care_alert(flag.id.split("/")[1])
    renewed = writer.update_flag_text(flag, "Alliance still strained")
    assert renewed.id != flag.id and renewed.identifier == EPISODE
    assert [a["content"].split(" [")[0] for a in healthie.active_care_alerts("77")] == [
        "Alliance still strained"
    ]


def test_repair_deletes_the_alert_once(writer, healthie):
    flag = writer.raise_flag(RECORD, "Alliance rupture", EPISODE)
    healthie.fail_next(EhrTransientError("timeout"), "deleteCareAlert", after_write=True)
    with pytest.raises(EhrTransientError):
        writer.resolve_flag(flag, datetime(2026, 12, 3, tzinfo=timezone.utc))
    assert writer.resolve_flag(flag, datetime(2026, 12, 3, tzinfo=timezone.utc)) == flag
    assert healthie.active_care_alerts("77") == []
    assert healthie.calls.count("deleteCareAlert") == 1


def test_alerts_of_other_episodes_and_patients_are_left_alone(writer, healthie):
    other = writer.raise_flag(RECORD, "Alliance rupture", "aaaaaaaa-0000-0000-0000-000000000000")
    mine = writer.raise_flag(RECORD, "Alliance rupture", EPISODE)
    assert mine.id != other.id
    writer.resolve_flag(mine, datetime(2026, 12, 3, tzinfo=timezone.utc))
    assert [f"77/{a['id']}" for a in healthie.active_care_alerts("77")] == [other.id]

"""The record writer over the in-memory EHR: idempotent writes and the Flag lifecycle."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from integrations.ehr.errors import EhrConflict, EhrNotFound, EhrPermanentError, EhrTransientError
from integrations.ehr.fake import InMemoryEhr
from integrations.ehr.writer import (
    AllianceRecord,
    AllianceRecordWriter,
    AnswerItem,
    FlagRef,
    WrittenScores,
)

AUTHORED = datetime(2026, 11, 26, 15, 30, tzinfo=timezone.utc)
RUPTURE_TEXT = (
    "Alliance rupture: bond fell from 9 to 5, more than the reliable-change threshold of 2.1"
)


def make_record(response_id: str = "resp-1", session_id: str = "enc-1", **changes):
    fields = dict(
        practice_id="northside",
        patient_id="pat-17",
        session_id=session_id,
        response_id=response_id,
        instrument_url="https://alliance-feedback.org/fhir/Questionnaire/brief-alliance-check",
        instrument_version="1.0.0",
        instrument_title="Brief Alliance Check",
        authored=AUTHORED,
        answers=(AnswerItem("bond", "Item one", 5), AnswerItem("goals", "Item two", 4)),
        total=9.0,
        total_max=20.0,
        subscales={"bond": 5.0, "goals": 4.0},
        pomp=45.0,
        decision="rupture",
        reasons=("Bond fell from 9 to 5.",),
        interpretation="low",
    )
    fields.update(changes)
    return AllianceRecord(**fields)


@pytest.fixture
def ehr() -> InMemoryEhr:
    return InMemoryEhr()


@pytest.fixture
def writer(ehr: InMemoryEhr) -> AllianceRecordWriter:
    return AllianceRecordWriter(ehr)


def test_scores_are_written_as_a_response_and_an_observation_derived_from_it(ehr, writer):
    written = writer.write_scores(make_record())

    (response,) = ehr.resources("QuestionnaireResponse")
    (observation,) = ehr.resources("Observation")
    assert written == WrittenScores(response["id"], observation["id"])
    assert observation["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{response['id']}"}]


def test_writing_the_same_response_twice_leaves_one_copy(ehr, writer):
    first = writer.write_scores(make_record())
    again = writer.write_scores(make_record())

    assert again == first
    assert len(ehr.resources("QuestionnaireResponse")) == 1
    assert len(ehr.resources("Observation")) == 1


def test_different_responses_are_different_resources(ehr, writer):
    writer.write_scores(make_record(response_id="resp-1"))
    writer.write_scores(make_record(response_id="resp-2", session_id="enc-2"))

    assert len(ehr.resources("QuestionnaireResponse")) == 2
    assert len(ehr.resources("Observation")) == 2


@pytest.mark.parametrize("resource_type", ["QuestionnaireResponse", "Observation"])
def test_a_write_whose_answer_was_lost_is_not_duplicated_on_retry(ehr, writer, resource_type):
    # The EHR stored the resource but the worker died before it saw the answer.
    lost = EhrTransientError("connection reset")
    ehr.fail_next(1, lost, operation="create", resource_type=resource_type, after_write=True)

    with pytest.raises(EhrTransientError):
        writer.write_scores(make_record())
    written = writer.write_scores(make_record())

    (response,) = ehr.resources("QuestionnaireResponse")
    (observation,) = ehr.resources("Observation")
    assert written == WrittenScores(response["id"], observation["id"])


def test_503_503_then_success_writes_once(ehr, writer):
    unavailable = EhrTransientError("503", retry_after=None)
    ehr.fail_next(2, unavailable, operation="create")

    for _ in range(2):
        with pytest.raises(EhrTransientError):
            writer.write_scores(make_record())
    writer.write_scores(make_record())

    assert len(ehr.resources("QuestionnaireResponse")) == 1
    assert len(ehr.resources("Observation")) == 1


def test_a_permanent_refusal_propagates(ehr, writer):
    ehr.fail_next(1, EhrPermanentError("invalid", 400, {"resourceType": "OperationOutcome"}))

    with pytest.raises(EhrPermanentError) as raised:
        writer.write_scores(make_record())

    assert raised.value.status == 400
    assert ehr.resources("QuestionnaireResponse") == []


def test_a_rupture_raises_one_active_flag(ehr, writer):
    flag = writer.raise_flag(make_record(), RUPTURE_TEXT, episode_id="ep-1")
    again = writer.raise_flag(make_record(), RUPTURE_TEXT, episode_id="ep-1")

    (stored,) = ehr.resources("Flag")
    assert flag == again == FlagRef(stored["id"], "1", "ep-1")
    assert stored["status"] == "active"
    assert stored["code"]["text"] == RUPTURE_TEXT


def test_unresolved_updates_the_flag_text_with_if_match(ehr, writer):
    flag = writer.raise_flag(make_record(), RUPTURE_TEXT, episode_id="ep-1")

    updated = writer.update_flag_text(flag, "Unresolved: the alliance stayed low")

    assert updated == FlagRef(flag.id, "2", "ep-1")
    assert ehr.read("Flag", flag.id)["code"]["text"] == "Unresolved: the alliance stayed low"


def test_low_high_high_raises_then_resolves_one_flag(ehr, writer):
    low = make_record(response_id="r1", session_id="s1")
    flag = writer.raise_flag(low, RUPTURE_TEXT, episode_id="ep-1")
    writer.write_scores(low)
    writer.write_scores(make_record(response_id="r2", session_id="s2", interpretation=None))
    repaired_at = AUTHORED + timedelta(days=14)

    resolved = writer.resolve_flag(flag, repaired_at)
    replayed = writer.resolve_flag(resolved, repaired_at + timedelta(days=7))

    (stored,) = ehr.resources("Flag")
    assert stored["status"] == "inactive"
    assert stored["period"] == {"start": "2026-11-26T15:30:00Z", "end": "2026-12-10T15:30:00Z"}
    assert replayed == resolved == FlagRef(flag.id, "2", "ep-1")
    assert len(ehr.history("Flag", flag.id)) == 2, "the replay must not write again"


def test_a_conflict_is_resolved_by_re_reading(ehr, writer):
    flag = writer.raise_flag(make_record(), RUPTURE_TEXT, episode_id="ep-1")
    # A clinician edits the flag in the EHR: our remembered version is now stale.
    edited = ehr.read("Flag", flag.id)
    ehr.update({**edited, "code": {**edited["code"], "text": "edited"}}, if_match=None)
    ehr.fail_next(2, EhrConflict("version moved", 412), operation="update")

    resolved = writer.resolve_flag(flag, AUTHORED + timedelta(days=1))

    assert resolved.version_id == "3"
    assert ehr.calls.count(("read", "Flag")) == 1 + 3  # the edit's read, then one per attempt
    current = ehr.read("Flag", flag.id)
    assert current["status"] == "inactive"
    assert current["code"]["text"] == "edited", "the clinician's change is kept"


def test_conflicts_are_retried_at_most_three_times(ehr, writer):
    flag = writer.raise_flag(make_record(), RUPTURE_TEXT, episode_id="ep-1")
    ehr.fail_next(5, EhrConflict("version moved", 409), operation="update")

    with pytest.raises(EhrConflict):
        writer.update_flag_text(flag, "new words")

    assert ehr.calls.count(("update", "Flag")) == 3
    assert ehr.read("Flag", flag.id)["code"]["text"] == RUPTURE_TEXT


def test_resolving_a_flag_that_is_gone_is_not_found(writer):
    with pytest.raises(EhrNotFound):
        writer.resolve_flag(FlagRef("flag-404", "1", "ep-x"), AUTHORED)


class TestInMemoryEhr:
    def test_versions_and_if_match(self, ehr):
        created = ehr.create({"resourceType": "Flag", "status": "active"}, if_none_exist=None)

        updated = ehr.update({**created.resource, "status": "inactive"}, if_match='W/"1"')

        assert (created.version_id, updated.version_id) == ("1", "2")
        assert updated.created is False
        with pytest.raises(EhrConflict) as raised:
            ehr.update({**created.resource, "status": "active"}, if_match="1")
        assert raised.value.status == 412
        assert [v["status"] for v in ehr.history("Flag", created.id)] == ["active", "inactive"]

    def test_conditional_create_with_several_matches_is_refused(self, ehr):
        resource = {"resourceType": "Flag", "identifier": [{"system": "s", "value": "v"}]}
        ehr.create(resource, if_none_exist=None)
        ehr.create(resource, if_none_exist=None)

        with pytest.raises(EhrPermanentError) as raised:
            ehr.create(resource, if_none_exist="identifier=s|v")

        assert raised.value.status == 412

    def test_search_by_identifier_with_and_without_system(self, ehr):
        ehr.create({"resourceType": "Flag", "identifier": [{"system": "a", "value": "v"}]}, None)
        ehr.create({"resourceType": "Flag", "identifier": [{"system": "b", "value": "v"}]}, None)

        assert len(ehr.search("Flag", {"identifier": "a|v"})) == 1
        assert len(ehr.search("Flag", {"identifier": "v"})) == 2
        with pytest.raises(ValueError, match="status"):
            ehr.search("Flag", {"status": "active"})

    def test_stored_resources_cannot_be_changed_from_outside(self, ehr):
        created = ehr.create({"resourceType": "Flag", "status": "active"}, None)
        created.resource["status"] = "inactive"

        assert ehr.read("Flag", created.id)["status"] == "active"

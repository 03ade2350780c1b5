"""Escalation decisions, the Task effects of the write-back plan, and the Task resource (valid
FHIR R4 in every shape), as values; the record writer over the in-memory EHR."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fhir.resources.R4B.task import Task

from integrations.ehr.errors import EhrConflict
from integrations.ehr.fake import InMemoryEhr
from integrations.ehr.records import TaskRef, TaskRequest
from integrations.ehr.resources import IdentifierSystems, build_task, completed_task
from integrations.ehr.writer import AllianceRecordWriter
from service.domain.episodes import RuptureEpisode
from service.domain.escalation import (
    EscalationFacts,
    completion_due,
    escalation_decision,
    escalation_due,
)
from service.domain.writeback import (
    AssessedSurvey,
    CompleteTask,
    RaiseFlag,
    RaiseTask,
    ResolveFlag,
    StoredTask,
    WriteScores,
    plan_write_back,
)

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
TEXT = "Unresolved alliance rupture: not repaired 3 sessions after the rupture"
PENDING = RuptureEpisode.opened("ep-1", "northside", "pat-17", "survey-1", TEXT, NOW)
RAISED = PENDING.with_flag("flag-7", "1", TEXT)
TASK = StoredTask("task-3", "1")


def test_escalation_falls_due_after_fractional_hours():
    assert escalation_due(NOW, 0.02) == NOW + timedelta(seconds=72)
    assert escalation_due(NOW, 72) == NOW + timedelta(days=3)


@pytest.mark.parametrize(("facts", "why_not"), [
    (EscalationFacts(True, False, True, False), None),
    (EscalationFacts(True, False, True, True), "already escalated"),
    (EscalationFacts(False, False, True, False), "the rupture was repaired in time"),
    (EscalationFacts(True, True, True, False), "a clinician acknowledged it in time"),
    (EscalationFacts(True, False, False, False), "the practice no longer escalates"),
])
def test_when_an_episode_is_escalated(facts, why_not):
    assert escalation_decision(facts) == why_not


@pytest.mark.parametrize(("status", "open_", "acknowledged", "due"), [
    ("requested", True, False, False),
    ("requested", True, True, True),
    ("requested", False, False, True),
    ("completed", False, True, False),
])
def test_when_an_escalation_task_is_completed(status, open_, acknowledged, due):
    assert completion_due(status, open_, acknowledged) is due


def survey(decision: str) -> AssessedSurvey:
    return AssessedSurvey("survey-9", decision, TEXT, True)


def test_the_default_policy_writes_the_flag_only():
    plan = plan_write_back(survey("rupture"), PENDING, NOW)
    assert plan.effects == (WriteScores(), RaiseFlag("ep-1", TEXT))


def test_the_task_target_raises_a_task_owned_by_the_supervisor_beside_the_flag():
    plan = plan_write_back(survey("unresolved"), PENDING, NOW, ("flag", "task"),
                           "Practitioner/sup-1")
    assert plan.effects == (WriteScores(), RaiseFlag("ep-1", TEXT),
                            RaiseTask("ep-1", TEXT, "Practitioner/sup-1", NOW))


def test_a_task_already_written_is_not_raised_again_and_completes_on_repair():
    assert plan_write_back(survey("unresolved"), RAISED, NOW, ("task",), None, TASK).effects == (
        WriteScores(),)
    repaired = plan_write_back(survey("repaired"), RAISED, NOW, ("task",), None, TASK)
    assert repaired.effects == (WriteScores(), CompleteTask("ep-1", "task-3", "1", NOW))
    assert not repaired.episode.is_open


def test_both_targets_resolve_on_repair():
    plan = plan_write_back(survey("repaired"), RAISED, NOW, ("flag", "task"), None, TASK)
    assert plan.effects == (WriteScores(), ResolveFlag("ep-1", "flag-7", "1", NOW),
                            CompleteTask("ep-1", "task-3", "1", NOW))


def request(**changes) -> TaskRequest:
    values = dict(kind="escalation", episode_id="ep-1", patient_id="pat-17", description=TEXT,
                  owner="Practitioner/sup-1", flag_id="flag-7", authored=NOW)
    return TaskRequest(**{**values, **changes})


@pytest.mark.parametrize("changes", [
    {}, {"owner": None}, {"flag_id": None}, {"kind": "alert", "owner": None, "flag_id": None},
    {"patient_id": "MRN:00417"},
])
def test_every_task_shape_is_valid_r4(changes):
    task = build_task(request(**changes), IdentifierSystems(patient="urn:oid:2.16.840.1"))
    Task.model_validate(task)
    Task.model_validate(completed_task({**task, "id": "t1"}, NOW + timedelta(hours=1)))
    assert task["status"] == "requested" and task["intent"] == "order"
    assert task["code"]["text"] == "Review therapeutic alliance rupture"
    assert ("owner" in task) is (request(**changes).owner is not None)
    assert ("focus" in task) is (request(**changes).flag_id is not None)


def test_a_patient_id_that_is_not_a_fhir_id_is_a_logical_reference():
    task = build_task(request(patient_id="MRN:00417"), IdentifierSystems(patient="urn:oid:1.2"))
    assert task["for"] == {"type": "Patient", "identifier": {"system": "urn:oid:1.2",
                                                             "value": "MRN:00417"}}


def test_the_writer_creates_one_task_per_episode_and_kind_and_completes_it_version_aware():
    ehr = InMemoryEhr(lambda: NOW)
    writer = AllianceRecordWriter(ehr)
    first = writer.create_task(request())
    assert writer.create_task(request()) == first  # a retry finds it
    writer.create_task(request(kind="alert"))  # the alert Task is another Task
    assert len(ehr.resources("Task")) == 2
    ehr.fail_next(1, EhrConflict("moved", 412), operation="update", resource_type="Task")
    done = writer.complete_task(TaskRef(first.id, first.version_id), NOW)
    assert done.version_id == "2"
    assert ehr.history("Task", first.id)[-1]["status"] == "completed"
    assert writer.complete_task(done, NOW) == done  # a replay writes nothing
    assert len(ehr.history("Task", first.id)) == 2

"""Escalation of unresolved ruptures (CONTRACT §9.1) and the `task` write target (§9.2), on
both databases, the clock moved by hand: the EHR is pytest-httpserver over real HTTP (the
FHIR gateway and record writer as in production), the supervisor's e-mail goes to a real SMTP
server (aiosmtpd) through the practice's SMTP channel."""

from __future__ import annotations

import email
import json
import uuid

import pytest
from click.testing import CliRunner
from fhir.resources.R4B.task import Task
from fhir_http_support import FhirHttpServer
from smtp_support import running_server
from sqlalchemy import select

from integrations.delivery import build_channel
from integrations.ehr.errors import EhrConflict, EhrPermanentError, EhrTransientError
from integrations.ehr.fake import InMemoryEhr
from service import practices
from service.bootstrap import bootstrap
from service.cli import main
from service.handlers.escalation import schedule_completions
from service.persistence.queries import alert_actions as alert_actions_queries
from service.persistence.queries import escalations
from service.persistence.tables import alert_actions, episode_tasks, outbox
from support import answer_one_survey, practice_document

LOW = {"bond": 2, "goals": 1, "approach": 2, "overall": 1, "tension": True, "tension_intensity": 5}
TOP = {"bond": 10, "goals": 10, "approach": 10, "overall": 10, "tension": False}
SUPERVISOR = "Practitioner/sup-1"
SUPERVISOR_EMAIL = "supervisor@northside.example"
PATIENT = "pat-17"


@pytest.fixture
def smtp():
    controller, handler = running_server(auth_required=False)
    yield controller, handler
    controller.stop()


@pytest.fixture
def ehr_store(clock):
    return InMemoryEhr(clock)


@pytest.fixture
def ehr(httpserver, ehr_store):
    return FhirHttpServer(httpserver, ehr_store)


@pytest.fixture
def services(database, settings_for, clock, channels):
    """The service with its real FHIR gateway and SMTP channel; SMS is the fake (the client)."""
    url, engine = database

    def channel_for(name, settings):
        return channels[name] if name == "sms" else build_channel(name, settings)

    return bootstrap(settings_for(url), engine=engine, clock=clock, channel_for=channel_for)


@pytest.fixture
def setup(services, ehr, smtp):
    """Store northside with an alerts section (escalation after half an hour by default)."""

    def store(**alerts) -> dict:
        section = {"escalate_after_hours": 0.5, "escalate_to": SUPERVISOR,
                   "escalate_email": SUPERVISOR_EMAIL, **alerts}
        section = {key: value for key, value in section.items() if value is not None}
        document = practices.validate_document(practice_document(
            ehr={"type": "fhir-r4", "base_url": ehr.base_url, "auth": {"type": "none"}},
            delivery={"channels": ["sms"],
                      "sms": {"account_sid": "AC123", "auth_token": "tok", "from": "+15550001111"},
                      "email": {"smtp_host": "127.0.0.1", "smtp_port": smtp[0].port,
                                "from": "alerts@northside.example", "tls": "none"}},
            alerts=section))
        with services.engine.begin() as conn:
            practices.save(conn, services.box, document, now=services.clock())
        return document

    return store


@pytest.fixture
def session(services, channels, run_due):
    count = iter(range(1, 100))

    def complete(answers: dict) -> None:
        answer_one_survey(services, channels, run_due, answers, session_id=f"enc-{next(count)}",
                          patient_id=PATIENT)
        run_due()

    return complete


def make_unresolved(session):
    for answers in (LOW, LOW, LOW, LOW):
        session(answers)


def rows(services, table, *where):
    with services.engine.begin() as conn:
        return [dict(row) for row in conn.execute(select(table).where(*where)).mappings()]


def actions(services, action):
    return rows(services, alert_actions, alert_actions.c.action == action)


def acknowledge(services, episode_id, source="smart-view"):
    with services.engine.begin() as conn:
        alert_actions_queries.add(conn, {
            "id": str(uuid.uuid4()), "practice_id": "northside", "episode_id": episode_id,
            "action": "acknowledge", "actor": "Practitioner/clin-9", "source": source,
            "note": None, "at": services.clock(), "dedupe_key": None})


def escalation_tasks(ehr_store):
    return [task for task in ehr_store.resources("Task")
            if task["identifier"][0]["system"].endswith("/rupture-escalation-task")]


def test_an_unacknowledged_unresolved_rupture_escalates_when_due(setup, session, services,
                                                                   ehr_store, run_due, clock,
                                                                   smtp):
    setup()
    make_unresolved(session)
    clock.advance(minutes=29)
    run_due()
    assert escalation_tasks(ehr_store) == []  # not yet due

    clock.advance(minutes=1, seconds=1)
    assert ("escalation.due", "done") in run_due()

    [task] = escalation_tasks(ehr_store)
    Task.model_validate(task)
    [flag] = ehr_store.resources("Flag")
    assert task["status"] == "requested" and task["intent"] == "order"
    assert task["code"]["text"] == "Review therapeutic alliance rupture"
    assert task["for"] == {"reference": f"Patient/{PATIENT}"}
    assert task["owner"] == {"reference": SUPERVISOR}
    assert task["focus"] == {"reference": f"Flag/{flag['id']}"}
    assert task["authoredOn"]
    [escalated] = actions(services, "escalate")
    assert (escalated["actor"], escalated["source"]) == ("service", "escalation")
    [stored] = rows(services, episode_tasks)
    assert (stored["task_id"], stored["task_version"], stored["status"]) == (
        task["id"], "1", "requested")
    assert stored["emailed_at"] is not None

    [envelope] = smtp[1].envelopes
    assert envelope.rcpt_tos == [SUPERVISOR_EMAIL]
    message = email.message_from_bytes(envelope.content)
    body = message.get_payload(decode=True).decode()
    assert "https://surveys.test/smart/northside/launch" in body
    for personal in (PATIENT, "enc-", flag["code"]["text"], "Northside", task["id"]):
        assert personal not in body and personal not in message["Subject"]


def test_the_create_carries_if_none_exist_and_a_lost_answer_writes_one_task(
        setup, session, services, ehr, ehr_store, run_due, clock):
    setup(escalate_email=None)
    make_unresolved(session)
    # The EHR stores the Task, but its answer is lost: the job is retried and finds it.
    ehr_store.fail_next(1, EhrTransientError("lost"), operation="create", resource_type="Task",
                        after_write=True)
    clock.advance(hours=1)
    assert ("escalation.due", "retry") in run_due()
    clock.advance(minutes=5)
    assert ("escalation.due", "done") in run_due()
    assert len(escalation_tasks(ehr_store)) == 1
    posts = [headers for method, path, headers in ehr.requests
             if method == "POST" and path.endswith("/Task")]
    assert len(posts) == 2
    episode_id = open_episode(services)
    assert {h["If-None-Exist"] for h in posts} == {
        f"identifier=https://alliance-feedback.org/fhir/sid/rupture-escalation-task|{episode_id}"}


def test_the_job_delivered_twice_writes_one_task_and_one_action(setup, session, services,
                                                                ehr_store, run_due, clock,
                                                                smtp):
    setup()
    make_unresolved(session)
    clock.advance(hours=1)
    run_due()
    [job] = rows(services, outbox, outbox.c.kind == "escalation.due")
    with services.engine.begin() as conn:  # the same job handed out again (at least once)
        conn.execute(outbox.insert().values({**job, "id": str(uuid.uuid4()), "dedupe_key": None,
                                             "status": "pending"}))
        email_job = conn.execute(select(outbox).where(
            outbox.c.kind == "escalation.email")).mappings().one()
        conn.execute(outbox.insert().values({**email_job, "id": str(uuid.uuid4()),
                                             "dedupe_key": None, "status": "pending"}))
    assert sorted(run_due()) == [("escalation.due", "done"), ("escalation.email", "done")]
    assert len(escalation_tasks(ehr_store)) == 1
    assert len(actions(services, "escalate")) == 1
    assert len(smtp[1].envelopes) == 1


def test_no_escalation_when_acknowledged_in_time(setup, session, services, ehr_store, run_due,
                                                 clock, smtp):
    setup()
    make_unresolved(session)
    episode_id = open_episode(services)
    clock.advance(minutes=10)
    acknowledge(services, episode_id)
    clock.advance(hours=1)
    run_due()
    assert escalation_tasks(ehr_store) == [] and actions(services, "escalate") == []
    assert smtp[1].envelopes == []


def test_an_acknowledgment_from_before_the_rupture_turned_unresolved_does_not_count(
        setup, session, services, ehr_store, run_due, clock):
    setup(escalate_email=None)
    session(LOW)
    acknowledge(services, open_episode(services), source="cds-feedback")
    for answers in (LOW, LOW, LOW):
        clock.advance(days=7)
        session(answers)
    clock.advance(hours=1)
    run_due()
    assert len(escalation_tasks(ehr_store)) == 1


def test_no_escalation_when_repaired_in_time(setup, session, services, ehr_store, run_due,
                                             clock):
    setup()
    make_unresolved(session)
    session(TOP)
    clock.advance(hours=1)
    run_due()
    assert escalation_tasks(ehr_store) == [] and actions(services, "escalate") == []
    assert ehr_store.resources("Flag")[0]["status"] == "inactive"


def test_no_escalation_without_escalate_to(setup, session, services, ehr_store, run_due, clock):
    setup(escalate_to=None, escalate_email=None)
    make_unresolved(session)
    clock.advance(days=4)
    run_due()
    assert rows(services, outbox, outbox.c.kind.like("escalation.%")) == []
    assert ehr_store.resources("Task") == []


def test_acknowledgment_completes_the_task_version_aware(setup, session, services, ehr_store,
                                                         run_due, clock):
    setup(escalate_email=None)
    make_unresolved(session)
    clock.advance(hours=1)
    run_due()
    episode_id = open_episode(services)
    assert schedule_completions(services) == 0  # requested, nothing to complete yet
    acknowledge(services, episode_id)
    # Someone else changed the Task meanwhile: the first If-Match loses, a re-read wins.
    ehr_store.fail_next(1, EhrConflict("moved", 412), operation="update", resource_type="Task")
    assert schedule_completions(services) == 1
    assert schedule_completions(services) == 0  # queued once
    assert run_due() == [("escalation.complete", "done")]
    [task] = escalation_tasks(ehr_store)
    Task.model_validate(task)
    assert task["status"] == "completed" and task["meta"]["versionId"] == "2"
    [completed] = actions(services, "complete-escalation")
    assert (completed["actor"], completed["source"]) == ("service", "escalation")
    [stored] = rows(services, episode_tasks)
    assert (stored["status"], stored["task_version"]) == ("completed", "2")
    assert schedule_completions(services) == 0


def test_a_completion_the_ehr_refused_stays_dead_lettered_and_is_not_picked_again(
        setup, session, services, ehr_store, run_due, clock):
    setup(escalate_email=None)
    make_unresolved(session)
    clock.advance(hours=1)
    run_due()
    episode_id = open_episode(services)
    acknowledge(services, episode_id)
    ehr_store.fail_next(5, EhrPermanentError("Task.status cannot change here", 422),
                        operation="update", resource_type="Task")
    assert schedule_completions(services) == 1
    assert run_due() == [("escalation.complete", "dead")]
    [stored] = rows(services, episode_tasks)
    assert stored["status"] == "requested"  # the EHR still has it open; the dead job says why
    # The scheduler's check (every 2 s) does not pick it again: its job exists, dead-lettered,
    # and would otherwise fill the check's batch with what can never be queued.
    with services.engine.begin() as conn:
        assert escalations.escalations_to_complete(conn) == []


def test_repair_completes_the_task(setup, session, services, ehr_store, run_due, clock):
    setup(escalate_email=None)
    make_unresolved(session)
    clock.advance(hours=1)
    run_due()
    session(TOP)
    schedule_completions(services)
    run_due()
    [task] = escalation_tasks(ehr_store)
    assert task["status"] == "completed"
    assert len(actions(services, "complete-escalation")) == 1


def test_a_task_the_ehr_refuses_is_dead_lettered_and_changes_nothing(
        setup, session, services, ehr, ehr_store, run_due, clock, database, smtp):
    setup()
    make_unresolved(session)
    ehr.refuse("Task", 422, "Task.owner: Practitioner/sup-1 is not known here")
    clock.advance(hours=1)
    assert ("escalation.due", "dead") in run_due()
    assert actions(services, "escalate") == [] and rows(services, episode_tasks) == []
    assert smtp[1].envelopes == [] and ehr_store.resources("Task") == []
    [job] = rows(services, outbox, outbox.c.status == "dead")
    env = {"ALLIANCE_DATABASE_URL": database[0],
           "ALLIANCE_SECRET_KEY": services.settings.secret_key,
           "ALLIANCE_VAR_DIR": str(services.settings.var_dir), "ALLIANCE_LOG_LEVEL": "ERROR"}
    shown = CliRunner().invoke(main, ["dlq", "show", job["id"]], env=env)
    assert shown.exit_code == 0, shown.output
    described = json.loads(shown.output)
    text = json.dumps(described)
    assert "EHR refused the escalation Task" in text and "422" in text
    assert "Practitioner/sup-1 is not known here" in text


def test_the_task_target_writes_a_task_with_the_flag_and_completes_it_on_repair(
        setup, session, services, ehr_store, run_due, clock):
    setup(write=["flag", "task"], escalate_email=None)
    session(LOW)
    [flag] = ehr_store.resources("Flag")
    [task] = ehr_store.resources("Task")
    Task.model_validate(task)
    assert task["identifier"][0]["system"].endswith("/rupture-task")
    assert task["focus"] == {"reference": f"Flag/{flag['id']}"}
    assert task["owner"] == {"reference": SUPERVISOR}
    assert task["status"] == "requested" and task["description"] == flag["code"]["text"]
    session(LOW)  # the rupture stands: the same Task, not a second
    assert len(ehr_store.resources("Task")) == 1
    session(TOP)
    [task] = ehr_store.resources("Task")
    assert task["status"] == "completed"
    assert ehr_store.resources("Flag")[0]["status"] == "inactive"


def test_the_task_target_alone_writes_no_flag(setup, session, services, ehr_store, run_due):
    setup(write=["task"], escalate_to=None, escalate_email=None)
    session(LOW)
    assert ehr_store.resources("Flag") == []
    [task] = ehr_store.resources("Task")
    Task.model_validate(task)
    assert "focus" not in task and "owner" not in task
    session(TOP)
    assert ehr_store.resources("Task")[0]["status"] == "completed"


def open_episode(services) -> str:
    from service.persistence.tables import rupture_episodes

    [episode] = rows(services, rupture_episodes, rupture_episodes.c.status == "open")
    return episode["id"]


def test_export_and_erasure_cover_the_tasks_and_the_escalation_jobs(setup, session, services,
                                                                   run_due, clock):
    from service.handlers.privacy import erase_client, export_client

    setup(escalate_email=None)
    make_unresolved(session)
    clock.advance(hours=1)
    run_due()
    exported = export_client(services, "northside", PATIENT, "cli:test")
    [task] = exported["episode_tasks"]
    assert task["kind"] == "escalation" and task["status"] == "requested"

    counts, kept = erase_client(services, "northside", PATIENT, "cli:test")
    assert counts["episode_tasks"] == 1
    # What stays in the EHR is named, so the practice can act on it there.
    assert f"Task/{task['task_id']}" in kept and any(ref.startswith("Flag/") for ref in kept)
    assert rows(services, episode_tasks) == []
    assert rows(services, outbox, outbox.c.kind.like("escalation.%")) == []


def test_an_email_whose_commit_was_lost_is_sent_again_with_the_same_message_id(
        setup, session, services, run_due, clock, smtp):
    setup()
    make_unresolved(session)
    clock.advance(hours=1)
    run_due()
    # The worker died between the SMTP server's "250" and the commit: the job runs again.
    with services.engine.begin() as conn:
        conn.execute(episode_tasks.update().values(emailed_at=None))
        email_job = conn.execute(select(outbox).where(
            outbox.c.kind == "escalation.email")).mappings().one()
        conn.execute(outbox.insert().values({**email_job, "id": str(uuid.uuid4()),
                                             "dedupe_key": None, "status": "pending"}))
    assert run_due() == [("escalation.email", "done")]
    first, second = (email.message_from_bytes(e.content) for e in smtp[1].envelopes)
    assert first["Message-ID"] == second["Message-ID"]


def test_an_email_the_server_refuses_is_dead_lettered_and_the_task_stands(
        setup, session, services, ehr_store, run_due, clock):
    setup(escalate_email="gone@northside.example")  # the test server: 550 5.1.1
    make_unresolved(session)
    clock.advance(hours=1)
    outcomes = run_due()
    assert ("escalation.due", "done") in outcomes and ("escalation.email", "dead") in outcomes
    assert len(escalation_tasks(ehr_store)) == 1 and len(actions(services, "escalate")) == 1
    [dead] = rows(services, outbox, outbox.c.status == "dead")
    assert dead["last_error"]["reason"] == "the escalation e-mail was refused: invalid-address"

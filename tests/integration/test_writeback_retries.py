"""Write-back under a misbehaving EHR: transient failures retried from the database,
Retry-After honoured, permanent refusals dead-lettered and replayable, and never two copies."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from integrations.ehr.errors import EhrConflict, EhrPermanentError, EhrTransientError
from service.cli import main
from service.persistence.tables import outbox
from support import answer_one_survey

LOW = {"bond": 1, "goals": 2, "approach": 1, "overall": 1}
HIGH = {"bond": 9, "goals": 9, "approach": 9, "overall": 10}
OUTCOME = {"resourceType": "OperationOutcome",
           "issue": [{"severity": "error", "code": "invalid", "diagnostics": "questionnaire unknown"}]}
CONFLICT = {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "conflict", "diagnostics": "version moved"}]}


@pytest.fixture
def answered(services, practice, channels, run_due):
    """A survey answered with low scores; its write-back job is due but not yet run."""
    answer_one_survey(services, channels, run_due, LOW)


def writeback_job(services):
    return writeback_jobs(services)[-1]


def writeback_jobs(services):
    with services.engine.begin() as conn:
        return conn.execute(select(outbox).where(outbox.c.kind == "response.writeback")
                            .order_by(outbox.c.created_at)).mappings().all()


def cli_env(services, database):
    return {"ALLIANCE_DATABASE_URL": database[0], "ALLIANCE_SECRET_KEY": services.settings.secret_key,
            "ALLIANCE_VAR_DIR": str(services.settings.var_dir), "ALLIANCE_LOG_LEVEL": "ERROR"}


def writebacks(outcomes):
    return [outcome for kind, outcome in outcomes if kind == "response.writeback"]


def repaired_next_week(services, channels, run_due, clock):
    """The rupture is written; a week later the client answers high (the Flag is resolved)."""
    assert writebacks(run_due()) == ["done"]
    clock.advance(days=7)
    answer_one_survey(services, channels, run_due, HIGH, session_id="enc-8")


def test_two_503s_then_success_writes_once(answered, services, fake_ehr, run_due, clock):
    fake_ehr.fail_next(2, EhrTransientError("503 Service Unavailable"), operation="create",
                       resource_type="QuestionnaireResponse")
    assert run_due() == [("response.writeback", "retry")]
    assert writeback_job(services)["status"] == "pending"
    for _ in range(3):
        clock.advance(minutes=1)
        run_due()
    assert len(fake_ehr.resources("QuestionnaireResponse")) == 1
    assert len(fake_ehr.resources("Observation")) == 1
    assert len(fake_ehr.resources("Flag")) == 1
    assert writeback_job(services)["status"] == "done"


def test_retry_after_is_honoured(answered, services, fake_ehr, run_due, clock):
    fake_ehr.fail_next(1, EhrTransientError("429 Too Many Requests", retry_after=120))
    run_due()
    clock.advance(seconds=119)
    assert run_due() == []
    clock.advance(seconds=1)
    assert run_due() == [("response.writeback", "done")]


def test_a_write_whose_answer_was_lost_is_not_written_twice(answered, fake_ehr, run_due, clock):
    # The EHR stored the QuestionnaireResponse, but the worker never heard back (killed, timeout).
    fake_ehr.fail_next(1, EhrTransientError("read timeout"), operation="create",
                       resource_type="QuestionnaireResponse", after_write=True)
    run_due()
    clock.advance(minutes=1)
    run_due()
    assert len(fake_ehr.resources("QuestionnaireResponse")) == 1
    assert len(fake_ehr.resources("Observation")) == 1


def test_a_refusal_is_dead_lettered_then_replayed_by_the_cli(answered, services, database, fake_ehr, run_due,
                                                             clock, settings_for):
    fake_ehr.fail_next(1, EhrPermanentError("EHR refused QuestionnaireResponse", 400, OUTCOME),
                       operation="create", resource_type="QuestionnaireResponse")
    assert run_due() == [("response.writeback", "dead")]
    job = writeback_job(services)
    assert job["last_error"]["operation_outcome"] == OUTCOME

    runner = CliRunner()
    env = {"ALLIANCE_DATABASE_URL": database[0], "ALLIANCE_SECRET_KEY": services.settings.secret_key,
           "ALLIANCE_VAR_DIR": str(services.settings.var_dir), "ALLIANCE_LOG_LEVEL": "ERROR"}
    listed = runner.invoke(main, ["dlq", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert listed.output.split("\t")[:5] == [job["id"], "northside", "enc-7", "QuestionnaireResponse", "400"]

    replayed = runner.invoke(main, ["dlq", "replay", job["id"]], env=env)
    assert replayed.exit_code == 0, replayed.output
    # The CLI makes the job due on the wall clock; bring the test's clock past it.
    clock.now = max(clock.now, datetime.now(timezone.utc)) + timedelta(seconds=1)
    run_due()
    assert len(fake_ehr.resources("QuestionnaireResponse")) == 1
    assert runner.invoke(main, ["dlq", "list"], env=env).output == ""


def test_dropping_a_dead_letter(answered, services, database, fake_ehr, run_due):
    fake_ehr.fail_next(1, EhrPermanentError("refused", 422, OUTCOME))
    run_due()
    env = {"ALLIANCE_DATABASE_URL": database[0], "ALLIANCE_SECRET_KEY": services.settings.secret_key,
           "ALLIANCE_VAR_DIR": str(services.settings.var_dir), "ALLIANCE_LOG_LEVEL": "ERROR"}
    job_id = writeback_job(services)["id"]
    runner = CliRunner()
    assert runner.invoke(main, ["dlq", "drop", job_id], env=env).exit_code == 0
    assert writeback_job(services)["status"] == "dropped"
    assert runner.invoke(main, ["dlq", "drop", job_id], env=env).exit_code != 0


def test_gives_up_after_the_attempt_budget(answered, services, fake_ehr, run_due, clock):
    fake_ehr.fail_next(100, EhrTransientError("503"))
    for _ in range(services.settings.max_attempts + 2):
        clock.advance(minutes=20)
        run_due()
    job = writeback_job(services)
    assert job["status"] == "dead"
    assert "gave_up" in job["last_error"]


def test_a_412_on_the_flag_update_is_retried_with_backoff_then_applied(
        answered, services, channels, fake_ehr, run_due, clock):
    repaired_next_week(services, channels, run_due, clock)
    # Someone keeps editing the Flag: the writer's three re-reads all lose the race.
    fake_ehr.fail_next(3, EhrConflict("Flag changed", 412, CONFLICT), operation="update",
                       resource_type="Flag")

    assert writebacks(run_due()) == ["retry"]
    job = writeback_job(services)
    assert job["status"] == "pending" and job["available_at"] > clock.now
    assert (job["last_error"]["http_status"], job["last_error"]["resource_type"]) == (412, "Flag")
    assert job["last_error"]["operation_outcome"] == CONFLICT

    clock.advance(minutes=20)
    assert writebacks(run_due()) == ["done"]
    [flag] = fake_ehr.resources("Flag")
    assert flag["status"] == "inactive"
    assert [v["status"] for v in fake_ehr.history("Flag", flag["id"])] == ["active", "inactive"]


def test_a_flag_that_keeps_conflicting_is_dead_lettered_after_the_attempt_budget(
        answered, services, channels, fake_ehr, run_due, clock):
    repaired_next_week(services, channels, run_due, clock)
    fake_ehr.fail_next(1000, EhrConflict("Flag changed", 412, CONFLICT), operation="update",
                       resource_type="Flag")

    outcomes = []
    for _ in range(services.settings.max_attempts + 2):
        outcomes += writebacks(run_due())
        clock.advance(minutes=20)

    assert outcomes == ["retry"] * (services.settings.max_attempts - 1) + ["dead"]
    job = writeback_job(services)
    assert job["status"] == "dead" and "gave_up" in job["last_error"]
    assert job["last_error"]["http_status"] == 412
    assert fake_ehr.calls.count(("update", "Flag")) == 3 * services.settings.max_attempts
    assert fake_ehr.resources("Flag")[0]["status"] == "active"


def test_dlq_list_says_what_the_ehr_said_and_show_prints_all_of_it(
        answered, services, database, fake_ehr, run_due):
    outcome = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "invalid", "diagnostics": "Invalid reference\tformat:\n  x",
         "expression": ["QuestionnaireResponse.subject"]},
        {"severity": "warning", "code": "informational", "diagnostics": "second issue"}]}
    fake_ehr.fail_next(1, EhrPermanentError("refused", 400, outcome), operation="create",
                       resource_type="QuestionnaireResponse")
    run_due()
    job_id = writeback_job(services)["id"]
    runner = CliRunner()

    listed = runner.invoke(main, ["dlq", "list"], env=cli_env(services, database))
    assert listed.exit_code == 0, listed.output
    [line] = listed.output.splitlines()
    cells = line.split("\t")
    assert cells[:5] == [job_id, "northside", "enc-7", "QuestionnaireResponse", "400"]
    assert cells[6] == ("error/invalid Invalid reference format: x "
                        "at QuestionnaireResponse.subject")

    shown = runner.invoke(main, ["dlq", "show", job_id], env=cli_env(services, database))
    assert shown.exit_code == 0, shown.output
    item = json.loads(shown.output)
    assert item["id"] == job_id and item["status"] == "dead"
    assert item["last_error"]["operation_outcome"] == outcome
    assert item["last_error"]["http_status"] == 400

    missing = runner.invoke(main, ["dlq", "show", "no-such-job"], env=cli_env(services, database))
    assert missing.exit_code != 0 and "no dead-letter item" in missing.output


def test_dlq_list_without_an_operation_outcome(answered, services, database, fake_ehr, run_due):
    fake_ehr.fail_next(1, EhrPermanentError("refused", 422, None))
    run_due()

    listed = CliRunner().invoke(main, ["dlq", "list"], env=cli_env(services, database))

    assert listed.output.rstrip("\n").split("\t")[4:] == ["422", "EHR refused QuestionnaireResponse", "-"]

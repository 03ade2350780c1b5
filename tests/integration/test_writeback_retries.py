"""Write-back under a misbehaving EHR: transient failures retried from the database,
Retry-After honoured, permanent refusals dead-lettered and replayable, and never two copies."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from integrations.ehr.errors import EhrPermanentError, EhrTransientError
from service.cli import main
from service.persistence.tables import outbox
from support import answer_one_survey

LOW = {"bond": 1, "goals": 2, "approach": 1, "overall": 1}
OUTCOME = {"resourceType": "OperationOutcome",
           "issue": [{"severity": "error", "code": "invalid", "diagnostics": "questionnaire unknown"}]}


@pytest.fixture
def answered(services, practice, channels, run_due):
    """A survey answered with low scores; its write-back job is due but not yet run."""
    answer_one_survey(services, channels, run_due, LOW)

def writeback_job(services):
    with services.engine.begin() as conn:
        return conn.execute(select(outbox).where(outbox.c.kind == "response.writeback")).mappings().one()


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

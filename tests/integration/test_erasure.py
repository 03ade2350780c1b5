"""A client's rights over their data (CONTRACT §11), on SQLite and PostgreSQL: `alliance patients
export` prints everything held on them, `alliance patients erase` deletes it (what was written
into the EHR stays), both are recorded in the audit log, and `alliance audit list` shows who
read what."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cds_support import Ehr, save_practice

from service.persistence import outbox
from service.persistence.queries import clients, smart_sessions
from service.persistence.queries.smart_sessions import SmartSession
from support import answer_one_survey

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from db_scan import scan_database  # noqa: E402

LOW = {"bond": 1, "goals": 1, "approach": 1, "overall": 1, "tension": True, "tension_intensity": 5,
       "comment": "I did not feel listened to"}
HIGH = {"bond": 9, "goals": 9, "approach": 9, "overall": 9, "tension": False}


@pytest.fixture
def alliance(alliance_cli, practice):
    return lambda *args: alliance_cli(*args, USER="dana")


NOTE = "Raised it with the client; they felt rushed at intake"


@pytest.fixture
def two_clients(services, channels, run_due, clock):
    """pat-17 answered low (a rupture Flag in the EHR, a reminder job pending, a SMART session,
    a CDS card acknowledged with a comment); pat-99 answered high."""
    save_practice(services)  # northside, with the CDS Hooks section
    answer_one_survey(services, channels, run_due, LOW, session_id="enc-1", patient_id="pat-17")
    run_due()
    answer_one_survey(services, channels, run_due, HIGH, session_id="enc-9", patient_id="pat-99")
    run_due()
    ehr = Ehr(services)
    (card,) = ehr.cards("pat-17")
    assert ehr.feedback(card["uuid"], comment=NOTE).get_json()["acknowledged"] == 1
    with services.engine.begin() as conn:
        smart_sessions.save_session(conn, "cookie", SmartSession(
            "northside", "pat-17", "Practitioner/dr-ana", "https://ehr.test/fhir", clock(),
            clock() + timedelta(hours=8)))


def test_export_prints_everything_held_and_is_audited(alliance, two_clients):
    exported = alliance("patients", "export", "--practice", "northside", "--patient", "pat-17")

    assert exported.exit_code == 0, exported.output
    found = json.loads(exported.output)
    assert found["client"]["phone"] == "+15551234567" and "phone_hash" not in found["client"]
    [survey] = found["surveys"]
    assert survey["session_id"] == "enc-1"
    assert survey["response"]["answers"]["comment"] == "I did not feel listened to"
    assert survey["assessment"]["decision"] == "rupture"
    assert [episode["status"] for episode in found["rupture_episodes"]] == ["open"]
    assert [action["note"] for action in found["alert_actions"]] == [NOTE]
    assert [feedback["comment"] for feedback in found["cds_feedback"]] == [NOTE]
    assert found["clinician_state"]["stage"] == "rupture"
    listed = alliance("audit", "list", "--practice", "northside", "--patient", "pat-17")
    rows = [line.split("\t")[1:] for line in listed.output.splitlines()[1:]]
    assert ["northside", "pat-17", "cli:dana", "cli", "export", "everything held", "-"] in rows
    assert [row[3] for row in rows] == ["cli", "cds"]  # the export, after the EHR's card read
    unknown = alliance("patients", "export", "--practice", "northside", "--patient", "nobody")
    assert unknown.exit_code != 0 and "nothing is held" in unknown.output


def test_erase_deletes_every_row_about_the_client_and_only_theirs(
        alliance, services, two_clients, fake_ehr, database):
    with services.engine.begin() as conn:
        pending = [job.kind for job in _pending(conn)]
    assert "survey.remind" in pending  # a job about pat-17 still waits: it must go too
    _url, engine = database
    assert scan_database(engine, [NOTE]).found == []  # the notes are stored sealed

    erased = alliance("patients", "erase", "--practice", "northside", "--patient", "pat-17")

    assert erased.exit_code == 0, erased.output
    counts = dict(line.split(": ")[0:2] for line in erased.output.splitlines()
                  if line.endswith(" deleted"))
    assert {table: int(text.split()[0]) for table, text in counts.items()} == {
        # event.process, survey.send, .remind, .expire, response.writeback; two keys per session
        "jobs": 5, "assessments": 1, "responses": 1, "surveys": 1, "alert_actions": 1,
        "episode_tasks": 0,
        "cds_feedback": 1, "clinician_states": 1, "rupture_episodes": 1,
        "session_keys": 2, "webhook_events": 1, "smart_sessions": 1, "clients": 1}
    [flag] = fake_ehr.resources("Flag")
    assert f"1 alert resource(s) there: Flag/{flag['id']}" in erased.output  # the EHR keeps it

    assert scan_database(engine, [NOTE]).found == []  # and gone after
    found = scan_database(engine, ["pat-17", "enc-1", "+15551234567"]).found
    assert found == ["audit_log.patient_id: pat-17"]  # the audit trail keeps its rows (ids)
    with services.engine.begin() as conn:
        assert clients.find(conn, services.vault, "northside", "pat-99")["phone"] == "+15551234567"
        assert all("pat-17" not in json.dumps(job.payload) for job in _pending(conn))
    assert scan_database(engine, ["pat-99", "enc-9"]).found != []  # the other client untouched
    listed = alliance("audit", "list", "--patient", "pat-17")
    assert "\terase\teverything held" in listed.output
    again = alliance("patients", "erase", "--practice", "northside", "--patient", "pat-17")
    assert again.exit_code == 0 and "clients: 0 deleted" in again.output


def _pending(conn) -> list:
    claimed = outbox.claim_due(conn, now=datetime(2100, 1, 1, tzinfo=timezone.utc),
                               redeliver_after=0)
    outbox.release(conn, [job.id for job in claimed])
    return claimed


def test_audit_list_filters_by_practice_and_time(alliance, services, clock):
    from service.persistence.queries import audit

    with services.engine.begin() as conn:
        audit.record(conn, [audit.Access("northside", "pat-1", "api-key:k1", audit.ALERTS_API,
                                         audit.READ, "alert", "ep-1")],
                     datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc))
        audit.record(conn, [audit.Access("eastside", "pat-2", "Practitioner/7", audit.SMART,
                                         audit.READ, "trend view")],
                     datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc))
    everything = alliance("audit", "list").output.splitlines()
    assert everything[0] == "at\tpractice_id\tpatient_id\tactor\tchannel\taction\twhat\tref"
    assert [line.split("\t")[1] for line in everything[1:]] == ["eastside", "northside"]
    assert alliance("audit", "list", "--practice", "northside").output.splitlines()[1] == (
        "2026-01-01T12:00:00Z\tnorthside\tpat-1\tapi-key:k1\talerts-api\tread\talert\tep-1")
    since = alliance("audit", "list", "--since", "2026-02-01").output.splitlines()[1:]
    assert [line.split("\t")[1] for line in since] == ["eastside"]
    bad = alliance("audit", "list", "--since", "last week")
    assert bad.exit_code != 0 and "not an ISO 8601 date" in bad.output

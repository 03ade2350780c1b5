"""Retention (CONTRACT §11) on SQLite and PostgreSQL: finished jobs, contact details, old
responses with their surveys and assessments, each after its own time; a client with an open
rupture keeps their history; the daily run is one outbox job a day however many workers queue
it; `alliance retention run` prints the counts."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text, update

from service import practices
from service.demo import session_completed, signed_event
from service.handlers.retention import JOB_KIND, REPORTED, run_retention, schedule_retention
from service.persistence import outbox
from service.persistence.queries import clients, events
from service.persistence.tables import outbox as outbox_table
from service.persistence.tables import rupture_episodes, surveys, webhook_events
from service.web import create_app
from support import DEMO_SECRET, practice_document

LOW = {"bond": 1, "goals": 1, "approach": 1, "overall": 1, "tension": True, "tension_intensity": 5}
HIGH = {"bond": 9, "goals": 9, "approach": 9, "overall": 9, "tension": False}


@pytest.fixture
def client(services, practice):
    return create_app(services=services).test_client()


def session(client, services, channels, run_due, patient: str, answers: dict | None = None,
            phone: str = "+15551234567") -> None:
    """A completed session of the client (with contact details), its SMS, and the answers."""
    event = session_completed(f"enc-{uuid.uuid4().hex[:8]}", patient, phone=phone,
                              email=f"{patient}@example.org")
    body, headers = signed_event(DEMO_SECRET, event, when=datetime.now(timezone.utc))
    assert client.post("/webhooks/northside/events", data=body, headers=headers).status_code == 202
    run_due()
    if answers is not None:
        token = channels["sms"].sent[-1].link.rsplit("/s/", 1)[1]
        answered = client.post(f"/api/v1/surveys/{token}/response", json={"answers": answers})
        assert answered.status_code == 201
        run_due()


def contact_of(services, patient: str) -> dict:
    with services.engine.begin() as conn:
        found = clients.find(conn, services.vault, "northside", patient)
    return {name: found[name] for name in ("phone", "email", "phone_hash", "opted_out_at")}


def count(services, table, *where) -> int:
    with services.engine.begin() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def test_finished_jobs_go_after_the_job_retention_days_and_nothing_else(services, clock):
    now = clock()
    with services.engine.begin() as conn:
        for status, age_days in (("done", 15), ("dropped", 20), ("done", 13), ("dead", 30),
                                 ("pending", 30), ("published", 30)):
            job_id = outbox.enqueue(conn, "survey.send", {"survey_id": str(uuid.uuid4())},
                                    now=now - timedelta(days=age_days))
            finished = now - timedelta(days=age_days) if status in ("done", "dropped", "dead") \
                else None
            conn.execute(update(outbox_table).where(outbox_table.c.id == job_id).values(
                status=status, finished_at=finished))
    counts = run_retention(services)
    assert counts["jobs"] == 2
    with services.engine.begin() as conn:
        left = sorted(conn.execute(select(outbox_table.c.status)).scalars())
    assert left == ["dead", "done", "pending", "published"]


def test_contact_details_go_after_contact_days_since_the_last_session(
        client, services, channels, run_due, clock):
    session(client, services, channels, run_due, "pat-old")
    session(client, services, channels, run_due, "pat-stop", phone="+15550000002")
    sms_stop(client, "+15550000002")
    clock.advance(days=100)
    session(client, services, channels, run_due, "pat-recent", phone="+15550000003")
    clock.advance(days=81)  # pat-old and pat-stop: 181 days since their last session

    counts = run_retention(services)

    assert counts["contacts"] == 1  # pat-stop's went with the STOP
    old, stopped, recent = (contact_of(services, p) for p in ("pat-old", "pat-stop", "pat-recent"))
    assert old == {"phone": None, "email": None, "phone_hash": None, "opted_out_at": None}
    assert stopped["phone"] is None and stopped["phone_hash"]  # a START must still find them
    assert recent["phone"] == "+15550000003" and recent["email"] == "pat-recent@example.org"
    with services.engine.begin() as conn:
        held = dict(conn.execute(select(webhook_events.c.patient_id, webhook_events.c.has_contact)
                                 ).all())
        [old_event] = conn.execute(select(webhook_events.c.id).where(
            webhook_events.c.patient_id == "pat-old")).scalars().all()
        old_payload = events.load(conn, services.vault, old_event)
    assert held == {"pat-old": False, "pat-stop": False, "pat-recent": True}
    assert old_payload.outcome.facts.contact is None
    assert run_retention(services)["contacts"] == 0  # nothing left to delete: idempotent


def sms_stop(client, phone: str) -> None:
    from service.web.consent import twilio_signature

    form = {"From": phone, "To": "+15550001111", "Body": "STOP", "MessageSid": "SM" + "1" * 32}
    url = "https://surveys.test/webhooks/northside/sms/inbound"
    signature = twilio_signature("tok", url, form.items())
    assert client.post("/webhooks/northside/sms/inbound", data=form,
                       headers={"X-Twilio-Signature": signature}).status_code == 200


def test_old_responses_go_with_their_surveys_unless_the_client_has_an_open_rupture(
        client, services, channels, run_due, clock):
    document = practices.validate_document(practice_document(
        retention={"contact_days": 30, "responses_days": 30}))
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=clock())
    session(client, services, channels, run_due, "pat-fine", HIGH)
    session(client, services, channels, run_due, "pat-rupture", LOW, phone="+15550000002")
    assert count(services, rupture_episodes, rupture_episodes.c.status == "open") == 1
    clock.advance(days=31)

    counts = run_retention(services)

    assert (counts["responses"], counts["surveys"], counts["assessments"]) == (1, 1, 1)
    assert counts["kept_for_open_rupture"] == 1 and counts["events"] == 2
    assert count(services, surveys, surveys.c.patient_id == "pat-fine") == 0
    assert count(services, surveys, surveys.c.patient_id == "pat-rupture") == 1

    # The rupture closes; a run after the window takes its history and the closed episode.
    with services.engine.begin() as conn:
        conn.execute(update(rupture_episodes).values(status="resolved", closed_at=clock()))
    clock.advance(days=31)
    counts = run_retention(services)
    assert (counts["surveys"], counts["episodes"], counts["kept_for_open_rupture"]) == (1, 1, 0)
    assert count(services, rupture_episodes) == 0


def test_the_daily_run_is_one_job_a_day_and_queues_the_next(services, practice, run_due, clock):
    clock.now = datetime(2026, 11, 26, 15, 0, tzinfo=timezone.utc)
    with services.engine.begin() as conn:
        for _worker in range(3):  # three workers start
            schedule_retention(conn, clock())
    assert count(services, outbox_table, outbox_table.c.kind == JOB_KIND) == 1
    assert run_due() == []  # due at 03:00 UTC tomorrow
    clock.now = datetime(2026, 11, 27, 3, 0, tzinfo=timezone.utc)
    assert run_due() == [(JOB_KIND, "done")]
    with services.engine.begin() as conn:
        queued = conn.execute(select(outbox_table.c.available_at, outbox_table.c.dedupe_key)
                              .where(outbox_table.c.kind == JOB_KIND,
                                     outbox_table.c.status == "pending")).one()
    assert queued.available_at == datetime(2026, 11, 28, 3, 0, tzinfo=timezone.utc)
    assert queued.dedupe_key == "retention:2026-11-28"


@pytest.fixture
def alliance(alliance_cli):
    return lambda *args: alliance_cli(*args, ALLIANCE_JOB_RETENTION_DAYS="1")


def test_the_command_prints_what_it_deleted(alliance, client, services, channels, run_due, clock):
    clock.now = datetime.now(timezone.utc) - timedelta(days=200)  # the command runs on today
    session(client, services, channels, run_due, "pat-1", HIGH)
    with services.engine.begin() as conn:
        done = conn.execute(select(func.count()).select_from(outbox_table).where(
            outbox_table.c.status == "done")).scalar_one()

    ran = alliance("retention", "run")

    assert ran.exit_code == 0, ran.output
    lines = dict(line.rsplit(": ", 1) for line in ran.output.splitlines())
    assert list(lines) == list(REPORTED.values())
    assert lines["finished jobs deleted"] == str(done) and done >= 3
    assert lines["clients whose contact details were deleted"] == "1"
    assert lines["responses deleted"] == "0"
    assert "pat-1" not in ran.output and "+1555" not in ran.output
    with services.engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM responses")).scalar() == 1

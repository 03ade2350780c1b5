"""Survey timing with a controllable clock: reminder, expiry, quiet hours, the next session,
and every-nth-session sampling."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from service import practices
from service.demo import session_completed, signed_event
from service.persistence.tables import surveys
from service.web import create_app
from support import DEMO_SECRET, practice_document


def use_practice(services, **survey):
    document = practice_document()
    document["survey"].update(survey)
    document = practices.validate_document(document)
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=services.clock())


@pytest.fixture
def client(services):
    use_practice(services)
    return create_app(services=services).test_client()


def send_session(client, session_id, patient_id="pat-17"):
    event = session_completed(session_id, patient_id, phone="+15551234567")
    body, headers = signed_event(DEMO_SECRET, event, when=datetime.now(timezone.utc))
    assert client.post("/webhooks/northside/events", data=body, headers=headers).status_code == 202


def statuses(services):
    with services.engine.begin() as conn:
        return [row.status for row in conn.execute(select(surveys.c.status).order_by(surveys.c.created_at))]


def token(message):
    return message.link.rsplit("/s/", 1)[1]


def test_one_reminder_after_the_configured_hours_if_unanswered(client, channels, run_due, clock):
    send_session(client, "enc-1")
    run_due()
    clock.advance(hours=23, minutes=59)
    run_due()
    assert [m.kind for m in channels["sms"].sent] == ["invitation"]
    clock.advance(minutes=1)
    run_due()
    clock.advance(hours=24)
    run_due()
    assert [m.kind for m in channels["sms"].sent] == ["invitation", "reminder"]
    assert channels["sms"].sent[1].link == channels["sms"].sent[0].link


def test_no_reminder_once_answered(client, channels, run_due, clock):
    send_session(client, "enc-1")
    run_due()
    answers = {"bond": 8, "goals": 8, "approach": 8, "overall": 8}
    assert client.post(f"/api/v1/surveys/{token(channels['sms'].sent[0])}/response",
                       json={"answers": answers}).status_code == 201
    clock.advance(hours=25)
    run_due()
    assert [m.kind for m in channels["sms"].sent] == ["invitation"]


def test_expiry_closes_the_link(client, services, channels, run_due, clock):
    send_session(client, "enc-1")
    run_due()
    link = token(channels["sms"].sent[0])
    clock.advance(hours=71, minutes=59)
    run_due()
    assert client.get(f"/api/v1/surveys/{link}").status_code == 200
    clock.advance(minutes=1)
    run_due()
    assert statuses(services) == ["expired"]
    assert client.get(f"/api/v1/surveys/{link}").status_code == 410


def test_quiet_hours_hold_the_message_until_morning(services, channels, run_due, clock):
    use_practice(services, quiet_hours={"start": "21:00", "end": "08:00"})
    client = create_app(services=services).test_client()
    clock.now = datetime(2026, 11, 27, 4, 0, tzinfo=timezone.utc)  # 22:00 in Chicago (CST)
    send_session(client, "enc-1")
    run_due()
    assert channels["sms"].sent == []
    clock.now = datetime(2026, 11, 27, 13, 59, tzinfo=timezone.utc)  # 07:59
    run_due()
    assert channels["sms"].sent == []
    clock.now = datetime(2026, 11, 27, 14, 0, tzinfo=timezone.utc)  # 08:00
    run_due()
    assert len(channels["sms"].sent) == 1


def test_the_next_session_closes_an_open_survey(client, services, channels, run_due, clock):
    send_session(client, "enc-1")
    run_due()
    first = token(channels["sms"].sent[0])
    clock.advance(hours=12)  # before the reminder falls due
    send_session(client, "enc-2")
    run_due()
    assert statuses(services) == ["closed", "sent"]
    assert client.get(f"/api/v1/surveys/{first}").status_code == 410
    assert len(channels["sms"].sent) == 2


def test_every_nth_session_against_fatigue(services, channels, run_due, clock):
    use_practice(services, every_nth_session=2)
    client = create_app(services=services).test_client()
    for number in range(1, 5):
        send_session(client, f"enc-{number}")
        run_due()
        clock.advance(days=7)
    invited = [m.survey_id for m in channels["sms"].sent if m.kind == "invitation"]
    assert len(invited) == 2 and len(set(invited)) == 2


def test_an_undeliverable_survey_is_recorded_and_listed(services, channels, run_due, database):
    from click.testing import CliRunner

    from integrations.delivery.errors import DeliveryPermanentError
    from service.cli import main

    use_practice(services)
    client = create_app(services=services).test_client()
    channels["sms"].fail_next(1, DeliveryPermanentError("invalid-number"))
    send_session(client, "enc-1")  # the client has a phone but no e-mail
    run_due()
    assert statuses(services) == ["failed"]
    env = {"ALLIANCE_DATABASE_URL": database[0], "ALLIANCE_SECRET_KEY": services.settings.secret_key,
           "ALLIANCE_VAR_DIR": str(services.settings.var_dir), "ALLIANCE_LOG_LEVEL": "ERROR"}
    listed = CliRunner().invoke(main, ["surveys", "list", "--status", "failed"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "enc-1" in listed.output
    assert "no channel could reach the client (sms: invalid-number; email: no address)" in listed.output
    assert "+1555" not in listed.output


def test_a_client_who_answers_before_the_send_is_committed_is_not_refused_or_reminded(
        services, channels, run_due, clock):
    from integrations.delivery.fake import FakeChannel

    use_practice(services)
    client = create_app(services=services).test_client()
    statuses_seen = []

    class AnsweringAtOnce(FakeChannel):
        """The client taps the link while the worker has not yet recorded the send."""

        def send(self, message):
            receipt = super().send(message)
            answer = client.post(f"/api/v1/surveys/{token(message)}/response",
                                 json={"answers": {"bond": 9, "goals": 9, "approach": 9, "overall": 9}})
            statuses_seen.append(answer.status_code)
            return receipt

    channels["sms"] = AnsweringAtOnce("sms")
    send_session(client, "enc-1")
    run_due()
    assert statuses_seen == [201]
    assert statuses(services) == ["answered"]
    clock.advance(hours=25)
    run_due()
    assert [m.kind for m in channels["sms"].sent] == ["invitation"]


def test_a_survey_closed_unanswered_by_the_next_session_counts_as_not_returned(
        client, services, channels, run_due, clock):
    from service.persistence.tables import assessments

    send_session(client, "enc-1")
    run_due()
    low = {"bond": 1, "goals": 2, "approach": 1, "overall": 1}
    assert client.post(f"/api/v1/surveys/{token(channels['sms'].sent[0])}/response",
                       json={"answers": low}).status_code == 201
    run_due()
    clock.advance(days=1)
    send_session(client, "enc-2")  # its survey reaches the client, who does not answer it
    run_due()
    clock.advance(days=1)
    send_session(client, "enc-3")  # before the second survey expires
    run_due()
    assert statuses(services) == ["answered", "closed", "sent"]
    with services.engine.begin() as conn:
        decision, reasons = conn.execute(
            select(assessments.c.decision, assessments.c.reasons)
            .join(surveys, surveys.c.id == assessments.c.survey_id)
            .where(surveys.c.session_id == "enc-2")).one()
    assert decision != "none"
    assert any("no survey returned" in reason for reason in reasons)

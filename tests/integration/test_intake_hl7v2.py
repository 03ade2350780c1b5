"""HL7 v2 over HTTP (CONTRACT §10), on SQLite and PostgreSQL: real sample messages in, an ACK
for every message, a survey and a write-back for a completed visit, and refusals that store
nothing."""

from __future__ import annotations

from datetime import datetime, timezone

import hl7
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from service import practices
from service.demo import session_completed, signed_event
from service.persistence.tables import outbox, session_keys, surveys, webhook_events
from service.web import create_app
from support import DEMO_SECRET, PAYLOADS, TEST_SECRET_KEY, practice_document

TOKEN = "hl7-channel-token-0123456789"
URL = "/webhooks/northside/hl7v2"
ER7 = "x-application/hl7-v2+er7"
HIGH = {"bond": 9, "goals": 9, "approach": 9, "overall": 10, "tension": False}


@pytest.fixture
def client(services):
    document = practices.validate_document(practice_document(hl7v2={"channel_token": TOKEN}))
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=services.clock())
    return create_app(services=services).test_client()


def sample(name: str) -> bytes:
    return (PAYLOADS / "hl7v2" / name).read_bytes()


def post(client, body: bytes, token: str | None = TOKEN, url: str = URL, content_type: str = ER7):
    headers = {"content-type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post(url, data=body, headers=headers)


def msa(response) -> list[str]:
    assert response.content_type.startswith(ER7)
    answer = hl7.parse(response.data.decode())
    return [answer.extract_field("MSA", 1, n) for n in (1, 2, 3)]


def count(services, table) -> int:
    with services.engine.begin() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def stored_nothing(services) -> bool:
    return all(count(services, table) == 0 for table in (webhook_events, session_keys, outbox))


def test_a03_is_acknowledged_then_surveyed_and_written_back(
    client, services, channels, fake_ehr, run_due
):
    answered = post(client, sample("own-adt-a03-visit.hl7"))
    assert answered.status_code == 200
    assert msa(answered)[:2] == ["AA", "000002"]

    run_due()
    [invitation] = channels["sms"].sent
    assert invitation.to == "+15551234567"
    token = invitation.link.rsplit("/s/", 1)[1]
    assert (
        client.post(f"/api/v1/surveys/{token}/response", json={"answers": HIGH}).status_code == 201
    )
    run_due()
    [response] = fake_ehr.resources("QuestionnaireResponse")
    assert response["subject"]["reference"] == "Patient/191919"
    assert response["encounter"]["reference"] == "Encounter/V1001"
    with services.engine.begin() as conn:
        event = conn.execute(select(webhook_events)).mappings().one()
    assert (event["source"], event["delivery_id"], event["outcome"]) == (
        "hl7v2",
        "000002",
        "survey-scheduled",
    )


def test_siu_s14_complete_is_a_completion(client, services, channels, run_due):
    assert msa(post(client, sample("own-siu-s14-complete.hl7")))[0] == "AA"
    run_due()
    [invitation] = channels["sms"].sent
    with services.engine.begin() as conn:
        assert conn.execute(select(surveys.c.session_id)).scalar_one() == "2196178"


def test_a_repeated_msh_10_is_acknowledged_as_a_duplicate_and_causes_nothing(
    client, services, run_due
):
    assert msa(post(client, sample("own-adt-a03-visit.hl7")))[0] == "AA"
    again = post(client, sample("own-adt-a03-visit.hl7"))
    assert again.status_code == 200 and msa(again)[0] == "AA" and "duplicate" in msa(again)[2]
    run_due()
    assert count(services, webhook_events) == 1 and count(services, surveys) == 1


def test_the_same_visit_by_hl7_and_by_native_event_gets_one_survey(client, services, run_due):
    body, headers = signed_event(
        DEMO_SECRET,
        session_completed("V1001", "191919", phone="+15551234567"),
        when=datetime.now(timezone.utc),
    )
    assert client.post("/webhooks/northside/events", data=body, headers=headers).status_code == 202
    second = post(client, sample("own-adt-a03-visit.hl7"))
    assert msa(second)[0] == "AA" and "already has its survey" in msa(second)[2]
    run_due()
    assert count(services, surveys) == 1


@pytest.mark.parametrize(
    "name, needle",
    [
        ("own-siu-s26-noshow.hl7", "did not show up"),
        ("mieweb-siu-s15.hl7", "cancelled"),
        ("mieweb-siu-s14.hl7", "Scheduled"),
    ],
)
def test_no_show_and_cancellation_are_recorded_without_a_survey(
    client, services, run_due, name, needle
):
    answered = post(client, sample(name))
    assert answered.status_code == 200 and msa(answered)[0] == "AA" and needle in msa(answered)[2]
    run_due()
    assert count(services, surveys) == 0
    with services.engine.begin() as conn:
        event = conn.execute(select(webhook_events)).mappings().one()
    assert event["outcome"] == "ignored" and needle in event["reason"]
    # The no-show did not use the appointment up: its completion still gets its survey.
    assert msa(post(client, sample("own-siu-s14-complete.hl7")))[0] == "AA"
    run_due()
    assert count(services, surveys) == 1


def test_unknown_practice_and_wrong_token_get_the_same_ar_and_store_nothing(client, services):
    wrong_token = post(client, sample("own-adt-a03-visit.hl7"), token="x" * 30)
    no_token = post(client, sample("own-adt-a03-visit.hl7"), token=None)
    unknown = post(client, sample("own-adt-a03-visit.hl7"), url="/webhooks/nowhere/hl7v2")
    impossible = post(client, sample("own-adt-a03-visit.hl7"), url="/webhooks/N%00/hl7v2")
    answers = [wrong_token, no_token, unknown, impossible]
    assert {a.status_code for a in answers} == {401}
    assert {tuple(msa(a)) for a in answers} == {("AR", "000002", msa(wrong_token)[2])}
    assert "not authorised" in msa(wrong_token)[2]
    assert stored_nothing(services)


@pytest.mark.parametrize(
    "body, status, needle",
    [
        (b"hello", 400, "does not start with an MSH segment"),
        (sample("biztalk-adt-a03.hl7"), 400, "PV1-19"),
        (b"MSH|^~\\&|A|B|C|D|2011||ADT^A03||P|2.5\rPID|1||42", 400, "MSH-10"),
        (b"MSH|" + b"x" * (300 * 1024), 413, "over 256 KiB"),
    ],
)
def test_malformed_messages_get_an_ae_naming_the_problem_and_store_nothing(
    client, services, body, status, needle
):
    answered = post(client, body)
    assert answered.status_code == status
    code, _, text = msa(answered)
    assert code == "AE" and needle in text
    assert stored_nothing(services)


def test_a_body_that_is_not_er7_gets_415_with_an_ack(client, services):
    answered = post(client, b'{"a": 1}', content_type="application/json")
    assert answered.status_code == 415 and msa(answered)[0] == "AE"
    assert stored_nothing(services)


def test_plain_text_and_line_feeds_are_accepted(client, services):
    body = sample("own-adt-a03-visit.hl7").replace(b"\r", b"\n")
    assert msa(post(client, body, content_type="text/plain"))[0] == "AA"


def test_the_event_log_names_the_door(client, services, settings_for, database):
    post(client, sample("own-siu-s26-noshow.hl7"))
    from service.cli import main

    url, _ = database
    result = CliRunner().invoke(
        main,
        ["events", "list"],
        env={
            "ALLIANCE_DATABASE_URL": url,
            "ALLIANCE_SECRET_KEY": TEST_SECRET_KEY,
            "ALLIANCE_LOG_FORMAT": "console",
        },
    )
    assert result.exit_code == 0, result.output
    [line] = [row for row in result.output.splitlines() if "\thl7v2\t" in row]
    assert "SIU^S26" in line and "ignored" in line and "BEEBLEBROX" not in result.output


def test_a_database_failure_is_never_acknowledged_aa(client, services, monkeypatch):
    from sqlalchemy.exc import OperationalError

    def broken(*_args, **_kwargs):
        raise OperationalError("INSERT", {}, Exception("server closed the connection"))

    monkeypatch.setattr("service.handlers.hl7v2.record_arrival", broken)
    answered = post(client, sample("own-adt-a03-visit.hl7"))
    assert answered.status_code == 503
    code, control_id, text = msa(answered)
    assert (code, control_id) == ("AR", "000002") and "send it again" in text
    assert stored_nothing(services)

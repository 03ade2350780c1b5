"""Finding 5 of the security review: consent links act only for the client's current
invitation, an SMS STOP wins over any link, and (finding 6) a replayed signed STOP or START
changes nothing. On both databases."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from service.demo import session_completed, signed_event
from service.persistence.tables import clients
from service.web import create_app
from service.web.consent import twilio_signature
from support import DEMO_SECRET

PHONE = "+15551234567"
INBOUND = "/webhooks/northside/sms/inbound"


@pytest.fixture
def client(services, practice):
    return create_app(services=services).test_client()


def new_survey(client, run_due, channels, session_id: str) -> str:
    """A completed session for pat-1 and its sent survey; the link token."""
    body, headers = signed_event(DEMO_SECRET, session_completed(session_id, "pat-1", phone=PHONE),
                                 when=datetime.now(timezone.utc))
    assert client.post("/webhooks/northside/events", data=body, headers=headers).status_code == 202
    run_due()
    return channels["sms"].sent[-1].link.rsplit("/s/", 1)[1]


def consent(client, services, token: str, action: str):
    csrf = services.forms.token(services.signer.survey_id(token), "consent")
    return client.post(f"/s/{token}/{action}", data={"csrf_token": csrf})


def standing(services) -> tuple:
    with services.engine.begin() as conn:
        return tuple(conn.execute(select(clients.c.opted_out_at, clients.c.opted_out_by).where(
            clients.c.patient_id == "pat-1")).one())


def sms(client, body: str, sid: str):
    form = {"MessageSid": sid, "SmsSid": sid, "AccountSid": "AC123", "From": PHONE,
            "To": "+15550001111", "Body": body}
    signature = twilio_signature("tok", f"https://surveys.test{INBOUND}", form.items())
    answered = client.post(INBOUND, data=form, headers={"X-Twilio-Signature": signature})
    assert answered.status_code == 200
    return answered


# ---- only the current invitation ------------------------------------------------------------

def answered(client, services, run_due, clock, channels, token):
    answers = {"bond": 8, "goals": 8, "approach": 8, "overall": 8}
    assert client.post(f"/api/v1/surveys/{token}/response", json={"answers": answers}).status_code == 201


def expired(client, services, run_due, clock, channels, token):
    clock.advance(hours=73)
    run_due()


def superseded(client, services, run_due, clock, channels, token):
    clock.advance(days=7)
    new_survey(client, run_due, channels, "enc-2")  # the next session closes this survey


@pytest.mark.parametrize("make_stale", [answered, expired, superseded])
@pytest.mark.parametrize("action", ["unsubscribe", "resubscribe"])
def test_an_old_link_changes_nothing(client, services, run_due, clock, channels, make_stale,
                                     action):
    token = new_survey(client, run_due, channels, "enc-1")
    if action == "resubscribe":
        assert consent(client, services, token, "unsubscribe").status_code == 200
    before = standing(services)
    make_stale(client, services, run_due, clock, channels, token)

    page = client.get(f"/s/{token}/unsubscribe")
    posted = consent(client, services, token, action)

    for answer in (page, posted):
        assert answer.status_code == 410 and answer.mimetype == "text/html"
        assert "This link no longer changes your settings" in answer.get_data(as_text=True)
        assert "<form" not in answer.get_data(as_text=True)
    assert standing(services) == before


def test_a_link_that_is_not_the_clients_latest_changes_nothing(client, services, run_due, clock,
                                                              channels):
    # Two open surveys of one client cannot normally exist (a new session closes the old one);
    # even so, only the newest link counts.
    first = new_survey(client, run_due, channels, "enc-1")
    from service.persistence.tables import surveys

    with services.engine.begin() as conn:
        row = dict(conn.execute(select(surveys)).mappings().one())
        conn.execute(surveys.insert().values({**row, "id": "00000000-0000-4000-8000-000000000001",
                                              "session_id": "enc-9",
                                              "created_at": clock.now.replace(year=2027)}))
    assert consent(client, services, first, "unsubscribe").status_code == 410
    assert standing(services) == (None, None)


# ---- STOP wins ----------------------------------------------------------------------------------

def test_a_link_cannot_undo_an_sms_stop(client, services, run_due, channels):
    token = new_survey(client, run_due, channels, "enc-1")
    sms(client, "STOP", "SM" + "1" * 32)
    assert standing(services)[1] == "sms"

    page = client.get(f"/s/{token}/unsubscribe").get_data(as_text=True)
    refused = consent(client, services, token, "resubscribe")

    assert "reply START" in page and "resubscribe" not in page  # no button that cannot work
    assert refused.status_code == 409 and "reply START" in refused.get_data(as_text=True)
    assert standing(services)[1] == "sms"


def test_a_stop_after_a_links_opt_out_is_the_stop_that_counts(client, services, run_due, channels):
    token = new_survey(client, run_due, channels, "enc-1")
    consent(client, services, token, "unsubscribe")
    opted_out_at = standing(services)[0]
    sms(client, "STOP", "SM" + "2" * 32)

    assert standing(services) == (opted_out_at, "sms")  # the first time stays
    assert consent(client, services, token, "resubscribe").status_code == 409
    assert standing(services)[0] is not None


def test_only_a_start_from_the_phone_opts_back_in(client, services, run_due, channels):
    token = new_survey(client, run_due, channels, "enc-1")
    sms(client, "STOP", "SM" + "3" * 32)
    sms(client, "START", "SM" + "4" * 32)
    assert standing(services) == (None, None)
    assert consent(client, services, token, "unsubscribe").status_code == 200  # by link again
    assert consent(client, services, token, "resubscribe").status_code == 200
    assert standing(services) == (None, None)


def test_an_opt_out_from_before_its_way_was_recorded_is_not_undone_by_a_link(
        client, services, run_due, channels, clock):
    token = new_survey(client, run_due, channels, "enc-1")
    with services.engine.begin() as conn:  # as the migration leaves an older opt-out
        conn.execute(clients.update().values(opted_out_at=clock(), opted_out_by=None))
    assert consent(client, services, token, "resubscribe").status_code == 409
    assert standing(services)[0] is not None


# ---- replays --------------------------------------------------------------------------------

def test_a_replayed_signed_start_changes_nothing(client, services, run_due, channels):
    new_survey(client, run_due, channels, "enc-1")
    start, stop = "SM" + "5" * 32, "SM" + "6" * 32
    sms(client, "START", start)
    sms(client, "STOP", stop)
    sms(client, "START", start)  # captured earlier, sent again: same signature, same MessageSid
    assert standing(services)[1] == "sms"
    sms(client, "STOP", stop)
    assert standing(services)[1] == "sms"


def test_a_keyword_without_a_message_sid_changes_nothing(client, services, run_due, channels):
    new_survey(client, run_due, channels, "enc-1")
    form = {"From": PHONE, "To": "+15550001111", "Body": "STOP"}
    signature = twilio_signature("tok", f"https://surveys.test{INBOUND}", form.items())
    assert client.post(INBOUND, data=form, headers={"X-Twilio-Signature": signature}).status_code == 200
    assert standing(services) == (None, None)

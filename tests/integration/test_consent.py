"""Consent on both databases: the unsubscribe link of the current invitation, opting in
again, and the Twilio inbound SMS webhook with STOP/START keywords and X-Twilio-Signature (old
links, STOP winning over links, replays: tests/security/test_consent_links.py)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone

import pytest
import structlog
from sqlalchemy import select

from integrations.delivery.port import Contact
from service import practices
from service.demo import session_completed, signed_event
from service.persistence.queries import clients as stored_clients
from service.persistence.tables import clients
from service.web import create_app
from service.web.consent import EMPTY_TWIML, keyword_action, twilio_signature
from support import DEMO_SECRET, practice_document

INBOUND = "/webhooks/northside/sms/inbound"
TWILIO_TOKEN = "tok"  # the auth_token of support.practice_document's SMS settings
PHONE = "+15551234567"


@pytest.fixture
def client(services, practice):
    return create_app(services=services).test_client()


def post_event(client, session_id: str, patient_id: str = "pat-1", phone: str = PHONE,
               practice_id: str = "northside"):
    event = session_completed(session_id, patient_id, phone=phone)
    body, headers = signed_event(DEMO_SECRET, event, when=datetime.now(timezone.utc))
    answered = client.post(f"/webhooks/{practice_id}/events", data=body, headers=headers)
    assert answered.status_code == 202, answered.get_json()


@pytest.fixture
def survey(client, run_due, channels):
    """A sent survey for pat-1; returns its link token."""
    post_event(client, "enc-1")
    run_due()
    return channels["sms"].sent[-1].link.rsplit("/s/", 1)[1]


def opted_out_at(services, patient_id="pat-1", practice_id="northside"):
    with services.engine.begin() as conn:
        return conn.execute(select(clients.c.opted_out_at).where(
            clients.c.practice_id == practice_id, clients.c.patient_id == patient_id)).scalar()


def consent_csrf(services, token):
    return services.forms.token(services.signer.survey_id(token), "consent")


def sms(client, body: str, sender: str = PHONE, token: str = TWILIO_TOKEN, path: str = INBOUND,
        signed_url: str | None = None, sid: str | None = None, **headers):
    """A signed inbound SMS as Twilio posts it; each a new message unless `sid` is given."""
    sid = sid or "SM" + uuid.uuid4().hex
    form = {"ToCountry": "US", "SmsSid": sid, "MessageSid": sid, "AccountSid": "AC123",
            "From": sender, "To": "+15550001111", "Body": body, "NumMedia": "0"}
    url = signed_url or f"https://surveys.test{path}"
    signature = twilio_signature(token, url, form.items())
    return client.post(path, data=form, headers={"X-Twilio-Signature": signature, **headers})


# ---- the unsubscribe link -------------------------------------------------------------------

def test_the_link_asks_before_opting_out(client, services, survey):
    page = client.get(f"/s/{survey}/unsubscribe")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<h1>Stop receiving surveys?</h1>" in html
    assert f'action="/s/{survey}/unsubscribe?lang=en"' in html
    assert f'value="{consent_csrf(services, survey)}"' in html
    assert opted_out_at(services) is None


def test_the_link_of_the_open_survey_opts_out(client, services, survey, run_due, clock, channels):
    done = client.post(f"/s/{survey}/unsubscribe", data={"csrf_token": consent_csrf(services, survey)})
    html = done.get_data(as_text=True)
    assert done.status_code == 200
    assert "<h1>You will not receive more surveys</h1>" in html
    assert f'action="/s/{survey}/resubscribe?lang=en"' in html  # opt in again
    assert opted_out_at(services) == clock()

    clock.advance(days=7)
    post_event(client, "enc-2")
    run_due()
    assert [m.kind for m in channels["sms"].sent].count("invitation") == 1


def test_an_opted_out_client_gets_no_reminder(client, services, survey, run_due, clock, channels):
    client.post(f"/s/{survey}/unsubscribe", data={"csrf_token": consent_csrf(services, survey)})
    clock.advance(hours=25)
    run_due()
    assert [message.kind for message in channels["sms"].sent] == ["invitation"]


def test_opting_in_again_brings_the_surveys_back(client, services, survey, run_due, clock, channels):
    csrf = consent_csrf(services, survey)
    client.post(f"/s/{survey}/unsubscribe", data={"csrf_token": csrf})
    again = client.get(f"/s/{survey}/unsubscribe")
    assert "Receive surveys again" in again.get_data(as_text=True)  # already out: offer the way back
    back = client.post(f"/s/{survey}/resubscribe?lang=es", data={"csrf_token": csrf})
    assert back.status_code == 200
    assert "<h1>Volverá a recibir encuestas</h1>" in back.get_data(as_text=True)
    assert opted_out_at(services) is None
    clock.advance(days=7)
    post_event(client, "enc-2")
    run_due()
    assert [m.kind for m in channels["sms"].sent].count("invitation") == 2


@pytest.mark.parametrize("path", ["unsubscribe", "resubscribe"])
def test_consent_posts_without_the_csrf_token_change_nothing(client, services, survey, path):
    if path == "resubscribe":  # only an opted-out client can opt back in
        client.post(f"/s/{survey}/unsubscribe", data={"csrf_token": consent_csrf(services, survey)})
        assert opted_out_at(services) is not None
    before = opted_out_at(services)
    answer_token = services.forms.token(services.signer.survey_id(survey), "answer")
    for data in ({}, {"csrf_token": "forged"}, {"csrf_token": answer_token}):
        refused = client.post(f"/s/{survey}/{path}", data=data)
        assert refused.status_code == 400
        assert "nothing was saved" in refused.get_data(as_text=True)
    assert opted_out_at(services) == before


def test_a_forged_link_is_a_friendly_404(client):
    for answered in (client.get("/s/forged.token/unsubscribe", headers={"Accept-Language": "es"}),
                     client.post("/s/forged.token/unsubscribe", data={"csrf_token": "x"})):
        assert answered.status_code == 404
        assert answered.mimetype == "text/html"
    assert "Enlace no encontrado" in client.get(
        "/s/forged.token/unsubscribe", headers={"Accept-Language": "es"}).get_data(as_text=True)


# ---- SMS keywords ---------------------------------------------------------------------------

# Twilio's published test vectors (auth token "12345").
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"


@pytest.mark.parametrize("params, expected", [
    ([("CallSid", "CA1234567890ABCDE"), ("Digits", "1234"), ("From", "+14158675309"),
      ("To", "+18005551212"), ("Caller", "+14158675309")], "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
    ([("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")],
     "IK+Dwps556ElfBT0I3Rgjkr1wJU="),
])
def test_signature_matches_twilios_vectors(params, expected):
    assert twilio_signature("12345", TWILIO_URL, params) == expected


@pytest.mark.parametrize("body, action", [
    ("STOP", "opt-out"), (" stop ", "opt-out"), ("Stop.", "opt-out"), ("unsubscribe", "opt-out"),
    ("STOPALL", "opt-out"), ("cancel", "opt-out"), ("END", "opt-out"), ("quit", "opt-out"),
    ("Parar", "opt-out"), ("START", "opt-in"), ("unstop", "opt-in"), ("Yes", "opt-in"),
    ("stop sending me these", None), ("Thanks!", None), ("", None),
])
def test_keywords(body, action):
    assert keyword_action(body) == action


def test_stop_opts_the_sender_out_and_start_opts_back_in(client, services, survey):
    stopped = sms(client, "STOP")
    assert stopped.status_code == 200
    assert stopped.mimetype == "text/xml"
    assert stopped.get_data(as_text=True) == EMPTY_TWIML
    assert opted_out_at(services) is not None
    assert sms(client, "start").status_code == 200
    assert opted_out_at(services) is None
    sms(client, "PARAR")
    assert opted_out_at(services) is not None


def test_the_number_matches_in_any_spelling_and_only_in_this_practice(client, services, clock):
    with services.engine.begin() as conn:
        practices.save(conn, services.box, practices.validate_document(
            practice_document(id="eastside", name="Eastside")), now=clock())
        for practice_id, patient_id, phone in (
                ("northside", "pat-a", "+1 (555) 123-4567"), ("northside", "pat-b", "+15551234567"),
                ("northside", "pat-c", "+15559994567"), ("eastside", "pat-a", "+15551234567")):
            stored_clients.count_session(conn, services.vault, practice_id, patient_id,
                                         Contact(phone=phone), clock())
    assert sms(client, "STOP").status_code == 200
    assert opted_out_at(services, "pat-a") is not None
    assert opted_out_at(services, "pat-b") is not None
    assert opted_out_at(services, "pat-c") is None
    assert opted_out_at(services, "pat-a", practice_id="eastside") is None


def test_other_messages_and_unknown_numbers_change_nothing(client, services, survey):
    assert sms(client, "Thank you!").get_data(as_text=True) == EMPTY_TWIML
    assert sms(client, "STOP", sender="+15550009999").status_code == 200
    assert sms(client, "STOP", sender="not a number").status_code == 200
    assert opted_out_at(services) is None


@pytest.mark.parametrize("send", [
    lambda client: sms(client, "STOP", token="wrong-token"),
    lambda client: sms(client, "STOP", signed_url="https://attacker.test" + INBOUND),
    lambda client: sms(client, "STOP", signed_url=f"https://surveys.test{INBOUND}?x=1"),
    lambda client: client.post(INBOUND, data={"From": PHONE, "Body": "STOP"}),
])
def test_a_bad_signature_is_401_and_changes_nothing(client, services, survey, send):
    refused = send(client)
    assert refused.status_code == 401
    assert refused.mimetype == "application/problem+json"
    assert "X-Twilio-Signature" in refused.get_json()["detail"]
    assert opted_out_at(services) is None


def test_a_practice_without_sms_settings_and_an_unknown_practice_refuse_alike(client, services, clock):
    document = practice_document(id="mailonly", delivery={
        "channels": ["email"], "email": {"smtp_host": "localhost", "smtp_port": 25,
                                         "from": "surveys@mailonly.example"}})
    with services.engine.begin() as conn:
        practices.save(conn, services.box, practices.validate_document(document), now=clock())
    no_sms = sms(client, "STOP", path="/webhooks/mailonly/sms/inbound")
    unknown = sms(client, "STOP", path="/webhooks/nowhere/sms/inbound")
    assert no_sms.status_code == unknown.status_code == 401
    assert unknown.mimetype == "application/problem+json"
    assert unknown.get_json() == no_sms.get_json()


def test_no_phone_number_reaches_the_logs(client, services, survey):
    with structlog.testing.capture_logs() as logs:
        sms(client, "STOP")
        sms(client, "START")
        sms(client, "STOP", token="wrong-token")
    assert logs, "the keyword handling is logged (with opaque ids)"
    assert not re.search(r"555\d{4}|1234567", repr(logs))

"""HTML and script in anything a client, a practice or an EHR can write is shown as text on
every page: the survey page (also when it comes back with errors), the thanks page, the
friendly message pages, the unsubscribe page, and the demo FHIR store's index."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from service import practices
from service.demo import session_completed, signed_event
from service.web import create_app
from service.web.webhooks import SIGNATURE_CLOCK
from support import DEMO_SECRET, practice_document

ATTACK = '<script>alert("x")</script><img src=x onerror=alert(1)>'
RAW_MARKERS = ("<script", "<img", "onerror=alert(1)>")
VALID = {"bond": "8", "goals": "7", "approach": "9", "overall": "8", "tension": "no"}


def assert_only_escaped(html: str) -> None:
    for marker in RAW_MARKERS:
        assert marker not in html, f"{marker!r} reached the page unescaped"
    assert "&lt;script&gt;" in html


@pytest.fixture
def client(services, clock):
    document = practices.validate_document(practice_document(name=f"Northside {ATTACK}"))
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=clock())
    app = create_app(services=services)
    app.config[SIGNATURE_CLOCK] = clock
    return app.test_client()


@pytest.fixture
def token(client, run_due, channels, clock):
    body, headers = signed_event(DEMO_SECRET, session_completed("enc-xss", "pat-xss", phone="+15551238888"),
                                 when=clock.now)
    assert client.post("/webhooks/northside/events", data=body, headers=headers).status_code == 202
    run_due()
    return channels["sms"].sent[-1].link.rsplit("/s/", 1)[1]


def csrf(html: str, purpose_field: str = "csrf_token") -> str:
    return re.search(rf'name="{purpose_field}" value="([^"]+)"', html).group(1)


def test_the_survey_page_escapes_the_practice_name(client, token):
    page = client.get(f"/s/{token}")
    assert page.status_code == 200
    assert_only_escaped(page.get_data(as_text=True))


def test_a_form_sent_back_with_errors_escapes_the_free_text(client, token):
    page = client.get(f"/s/{token}")
    refused = client.post(f"/s/{token}", data={"csrf_token": csrf(page.get_data(as_text=True)),
                                               "comment": ATTACK, "bond": ATTACK})
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert_only_escaped(html)
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


def test_the_thanks_page_escapes_the_practice_name(client, token):
    page = client.get(f"/s/{token}")
    thanks = client.post(f"/s/{token}", data={"csrf_token": csrf(page.get_data(as_text=True)),
                                              **VALID, "comment": ATTACK})
    assert thanks.status_code == 200
    assert_only_escaped(thanks.get_data(as_text=True))


def test_the_unsubscribe_page_escapes_the_practice_name(client, token):
    page = client.get(f"/s/{token}/unsubscribe")
    assert page.status_code == 200
    assert_only_escaped(page.get_data(as_text=True))


def test_message_pages_never_echo_the_link(client):
    for token in (ATTACK, "%3Cscript%3Ealert(1)%3C%2Fscript%3E"):
        page = client.get(f"/s/{token}")
        assert page.status_code == 404
        html = page.get_data(as_text=True)
        assert "<script" not in html and "alert(1)" not in html


def test_the_demo_fhir_index_escapes_what_the_ehr_was_sent(tmp_path):
    from service.web.demo_fhir import create_demo_fhir_blueprint

    app = Flask("demo")
    app.register_blueprint(create_demo_fhir_blueprint(tmp_path / "store"), url_prefix="/demo/fhir")
    client = app.test_client()
    flag = {"resourceType": "Flag", "status": "active", "code": {"text": ATTACK},
            "subject": {"reference": "Patient/p1"}}
    observation = {"resourceType": "Observation", "status": "final",
                   "code": {"text": ATTACK}, "valueQuantity": {"value": 3},
                   "interpretation": [{"text": ATTACK}]}
    response = {"resourceType": "QuestionnaireResponse", "status": "completed",
                "questionnaire": ATTACK, "item": []}
    for resource in (flag, observation, response):
        written = client.post(f"/demo/fhir/{resource['resourceType']}", json=resource,
                              headers={"content-type": "application/fhir+json"})
        assert written.status_code == 201, written.get_data(as_text=True)
    index = client.get("/demo/fhir/")
    assert index.status_code == 200
    assert_only_escaped(index.get_data(as_text=True))

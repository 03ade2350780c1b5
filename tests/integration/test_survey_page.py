"""The survey page (GET/POST /s/<token>) on both databases: structure, languages, CSRF, rate
limit, validation messages next to each field, escaping, friendly error pages, page weight."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service.crypto import FormSigner, KeyRing
from service.demo import session_completed, signed_event
from service.domain import builtin_instruments
from service.persistence.tables import responses
from service.web import create_app, i18n
from service.web.surveys import RateLimiter
from support import DEMO_SECRET

OTHER_KEY = "Vf2Lq8XnR5tJ0wKc3YhB7mPz9DsGa4Ue-1iToN6rEjWl"

STATIC = Path(__file__).resolve().parents[2] / "service" / "web" / "static"
VALID = {"bond": "8", "goals": "7", "approach": "9", "overall": "8", "tension": "no"}


@pytest.fixture
def client(services, practice):
    return create_app(services=services).test_client()


@pytest.fixture
def send(client, run_due, channels):
    """Send a survey for a new session; returns its link token."""
    made = []

    def make(locale: str | None = "en", patient_id: str | None = None) -> str:
        made.append(1)
        event = session_completed(f"enc-{len(made)}", patient_id or f"pat-{len(made)}",
                                  phone="+15551234567")
        if locale is None:
            del event["data"]["contact"]["locale"]
        else:
            event["data"]["contact"]["locale"] = locale
        body, headers = signed_event(DEMO_SECRET, event, when=datetime.now(timezone.utc))
        assert client.post("/webhooks/northside/events", data=body, headers=headers).status_code == 202
        run_due()
        return channels["sms"].sent[-1].link.rsplit("/s/", 1)[1]

    return make


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def post_form(client, token, answers, query="", **kwargs):
    page = client.get(f"/s/{token}{query}")
    return client.post(f"/s/{token}{query}", data={"csrf_token": csrf_of(page.get_data(as_text=True)),
                                                   **answers}, **kwargs)


def stored_responses(services) -> int:
    with services.engine.begin() as conn:
        return conn.execute(select(func.count()).select_from(responses)).scalar()


def field_error(html: str, link_id: str) -> str | None:
    found = re.search(rf'<p class="field-error" id="e-{link_id}">([^<]*)</p>', html)
    return found.group(1) if found else None


# ---- the form -------------------------------------------------------------------------------

def test_each_question_is_a_labelled_group_with_anchor_words(client, send):
    token = send()
    answered = client.get(f"/s/{token}")
    html = answered.get_data(as_text=True)
    assert answered.status_code == 200 and answered.mimetype == "text/html"
    assert '<html lang="en">' in html
    assert html.count("<fieldset") == html.count("<legend") == 6
    assert len(re.findall(r'type="radio" name="bond" value="\d+"', html)) == 11
    assert "<span>0<span class=\"vh\"> – Not at all</span></span>" in html
    assert "<span>10<span class=\"vh\"> – Completely</span></span>" in html
    assert '<label for="f-comment">' in html and 'id="f-comment"' in html
    assert "(optional)</span>" not in html.split('id="q-comment"')[1]  # the wording says it already
    assert "<script" not in html
    assert f'href="/s/{token}/unsubscribe?lang=en"' in html


def test_page_weight_stays_under_30_kb(client, send):
    token = send(locale="es")
    css = (STATIC / "survey.css").read_bytes()
    plain = client.get(f"/s/{token}").data
    with_errors = post_form(client, token, {"comment": "x" * 2001}).data  # the heaviest page
    assert len(with_errors) > len(plain)
    assert len(with_errors) + len(css) < 30 * 1024


def test_the_page_is_never_cached_framed_or_sent_as_referrer(client, send):
    answered = client.get(f"/s/{send()}")
    assert answered.headers["Cache-Control"] == "no-store"
    assert answered.headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in answered.headers["Content-Security-Policy"]


@pytest.mark.parametrize("stored, query, accept, expected", [
    ("es", "", None, "es"),
    ("es-MX", "", None, "es"),
    ("es", "?lang=en", None, "en"),
    ("en", "?lang=es", None, "es"),
    ("en", "", "es-MX,es;q=0.9", "en"),           # the stored locale wins over the browser
    (None, "", "fr;q=0.9, es-AR;q=0.8, en;q=0.1", "es"),  # no stored locale: the browser's
    (None, "", None, "en"),
])
def test_language_comes_from_the_client_then_the_browser(client, send, stored, query, accept,
                                                          expected):
    token = send(locale=stored)
    headers = {"Accept-Language": accept} if accept else {}
    html = client.get(f"/s/{token}{query}", headers=headers).get_data(as_text=True)
    assert f'<html lang="{expected}">' in html
    heading = {"en": "How was today&#39;s session?", "es": "¿Qué tal la sesión de hoy?"}[expected]
    assert f"<h1>{heading}</h1>" in html
    if expected == "es":
        assert "¿En qué medida sintió hoy confianza y comodidad con su terapeuta?" in html
        assert "– Por completo" in html


# ---- posting --------------------------------------------------------------------------------

@pytest.mark.parametrize("locale, thanks", [("en", "<h1>Thank you</h1>"), ("es", "<h1>Gracias</h1>")])
def test_a_valid_post_shows_thanks_and_uses_the_link_up(client, send, services, locale, thanks):
    token = send(locale=locale)
    answered = post_form(client, token, {**VALID, "comment": "Helpful"})
    assert answered.status_code == 200
    assert thanks in answered.get_data(as_text=True)
    assert stored_responses(services) == 1
    assert client.get(f"/s/{token}").status_code == 409
    assert client.get(f"/api/v1/surveys/{token}").status_code == 409
    csrf = services.forms.token(services.signer.survey_id(token), "answer")
    assert client.post(f"/s/{token}", data={"csrf_token": csrf, **VALID}).status_code == 409
    assert stored_responses(services) == 1


@pytest.mark.parametrize("forge", [
    lambda forms, survey_id: None,
    lambda forms, survey_id: "not-a-token",
    lambda forms, survey_id: forms.token("another-survey", "answer"),
    lambda forms, survey_id: forms.token(survey_id, "consent"),
    lambda forms, survey_id: FormSigner(KeyRing([OTHER_KEY])).token(survey_id, "answer"),
])
def test_a_post_without_the_right_csrf_token_is_a_friendly_400_and_changes_nothing(
        client, send, services, forge):
    token = send()
    survey_id = services.signer.survey_id(token)
    forged = forge(services.forms, survey_id)
    data = {**VALID, **({"csrf_token": forged} if forged is not None else {})}
    refused = client.post(f"/s/{token}", data=data)
    assert refused.status_code == 400
    assert refused.mimetype == "text/html"
    assert "nothing was saved" in refused.get_data(as_text=True)
    assert stored_responses(services) == 0
    assert client.get(f"/api/v1/surveys/{token}").status_code == 200


@pytest.mark.parametrize("locale, messages", [
    ("en", {"bond": "Please choose a whole number from 0 to 10.",
            "goals": "Please choose a whole number from 0 to 10.",
            "overall": "Please choose a number from 0 to 10.",
            "tension": "Please choose yes or no.",
            "comment": "Please shorten this to 2000 characters or fewer."}),
    ("es", {"bond": "Elija un número entero del 0 al 10.",
            "goals": "Elija un número entero del 0 al 10.",
            "overall": "Elija un número del 0 al 10.",
            "tension": "Elija sí o no.",
            "comment": "Acorte el texto a 2000 caracteres como máximo."}),
])
def test_wrong_answers_get_a_message_next_to_each_field_and_keep_the_link(
        client, send, services, locale, messages):
    token = send(locale=locale)
    refused = post_form(client, token, {"bond": "11", "goals": "high", "approach": "6",
                                        "tension": "maybe", "comment": "x" * 2001})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert {link_id: field_error(html, link_id) for link_id in messages} == messages
    assert field_error(html, "approach") is None
    assert 'name="approach" value="6" checked' in html
    assert 'id="q-bond" class="has-error" aria-describedby="e-bond"' in html
    assert 'role="alert"' in html and 'href="#q-overall"' in html
    assert stored_responses(services) == 0
    assert post_form(client, token, VALID).status_code == 200


def test_free_text_is_escaped_on_the_page_and_stored_as_written(client, send, services):
    token = send()
    attack = '<script>alert("x")</script>'
    refused = post_form(client, token, {"comment": attack})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</textarea>" in html
    assert "<script>" not in html
    assert post_form(client, token, {**VALID, "comment": attack}).status_code == 200
    with services.engine.begin() as conn:
        sealed = conn.execute(select(responses.c.sealed_answers)).scalar()
    assert services.vault.open(sealed)["comment"] == attack


def test_posts_are_limited_per_link_and_address(client, send, services, clock):
    token = send()
    csrf = csrf_of(client.get(f"/s/{token}").get_data(as_text=True))
    statuses = [client.post(f"/s/{token}", data={"csrf_token": csrf}).status_code for _ in range(10)]
    assert statuses == [422] * 10
    limited = client.post(f"/s/{token}", data={"csrf_token": csrf, **VALID})
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "60"
    assert "Too many attempts" in limited.get_data(as_text=True)
    assert stored_responses(services) == 0
    other_address = client.post(f"/s/{token}", data={"csrf_token": csrf},
                                environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other_address.status_code == 422
    clock.advance(seconds=61)
    assert client.post(f"/s/{token}", data={"csrf_token": csrf, **VALID}).status_code == 200


# ---- links that cannot be answered ----------------------------------------------------------

@pytest.mark.parametrize("locale, accept, titles", [
    ("en", None, {404: "Link not found", 409: "Already answered", 410: "This survey has closed"}),
    ("es", "es", {404: "Enlace no encontrado", 409: "Ya respondida",
                  410: "Esta encuesta está cerrada"}),
])
def test_unknown_answered_and_expired_links_get_friendly_pages(client, send, run_due, clock,
                                                                locale, accept, titles):
    headers = {"Accept-Language": accept} if accept else {}
    answered_token = send(locale=locale)
    post_form(client, answered_token, VALID)
    expired_token = send(locale=locale)
    clock.advance(hours=73)
    run_due()
    for token, status in (("forged.token", 404), (answered_token, 409), (expired_token, 410)):
        page = client.get(f"/s/{token}", headers=headers)
        assert page.status_code == status
        assert page.mimetype == "text/html"
        assert f"<h1>{titles[status]}</h1>" in page.get_data(as_text=True)
        assert client.post(f"/s/{token}", data=VALID, headers=headers).status_code == status


# ---- the pure parts -------------------------------------------------------------------------

@pytest.mark.parametrize("requested, stored, accepted, expected", [
    ("es", "en", [], "es"),
    ("xx", "es", ["en"], "es"),
    (None, "ES_us", ["en"], "es"),
    (None, None, ["de", "es-419", "en"], "es"),
    (None, "fr", ["de"], "en"),
])
def test_choose_language(requested, stored, accepted, expected):
    assert i18n.choose_language(requested, stored, accepted) == expected


def test_every_item_of_the_default_instrument_has_spanish_wording_and_anchors():
    instrument = builtin_instruments()["brief-alliance-check"]
    english = {item.link_id: item for item in i18n.page_items(instrument, "en")}
    for item in i18n.page_items(instrument, "es"):
        assert item.text != english[item.link_id].text
        assert (item.low_label is None) == (english[item.link_id].low_label is None)
        assert item.low_label != english[item.link_id].low_label or item.low_label is None
    assert set(i18n.STRINGS["es"]) == set(i18n.STRINGS["en"])


def test_rate_limiter_forgets_hits_after_the_window():
    limiter = RateLimiter(2, timedelta(minutes=1), max_keys=3)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert [limiter.allow(("t", "ip"), start) for _ in range(3)] == [True, True, False]
    assert limiter.allow(("t", "other-ip"), start)
    assert limiter.allow(("t", "ip"), start + timedelta(seconds=61))
    for n in range(5):  # many distinct keys: memory stays bounded
        limiter.allow((f"k{n}", "ip"), start + timedelta(minutes=5))
    assert len(limiter._hits) <= 3

"""The SMART trend app over HTTP: EHR launch → the EHR's authorize → callback → view, against a
strict fake authorization server (pytest-httpserver), on SQLite and PostgreSQL."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from smart_fake import CLIENT_ID, CLIENT_SECRET, FakeSmartServer
from sqlalchemy import func, select

from schemas.trend import TrendView
from service import practices
from service.persistence.tables import smart_launches, smart_sessions
from service.web import create_app
from support import answer_one_survey, practice_document

BASE = "https://surveys.test"
LOW = {"bond": 2, "goals": 3, "approach": 2, "overall": 2, "tension": True, "tension_intensity": 4}
HIGH = {"bond": 9, "goals": 9, "approach": 9, "overall": 9}


@pytest.fixture
def ehr(httpserver):
    return FakeSmartServer(httpserver, redirect_uri=f"{BASE}/smart/northside/callback")


@pytest.fixture
def smart_practice(services, ehr):
    document = practices.validate_document(practice_document(smart_app={
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "issuers": [ehr.iss],
        "scope": "launch openid fhirUser patient/Patient.rs",
        "frame_ancestors": ["https://ehr.example.org", ehr.origin]}))
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=services.clock())
    return document


@pytest.fixture
def browser(services, smart_practice):
    """A browser: a test client that keeps its cookies."""
    return create_app(services=services).test_client()


def sign_in(browser, ehr, launch: str | None = None):
    """Launch as the EHR does, follow the EHR's authorize redirect, land on the callback."""
    launched = browser.get(ehr.launch_url(BASE, "northside", launch))
    assert launched.status_code == 302, launched.get_data(as_text=True)
    authorized = requests.get(launched.headers["Location"], allow_redirects=False, timeout=5)
    assert authorized.status_code == 302
    return browser.get(authorized.headers["Location"])


def query_of(url: str) -> dict:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def test_an_ehr_launch_asks_the_ehr_to_authorize_with_pkce_state_and_audience(browser, ehr):
    launch = ehr.new_launch()
    answer = browser.get(ehr.launch_url(BASE, "northside", launch))

    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(ehr.configuration()["authorization_endpoint"] + "?")
    query = query_of(location)
    assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == f"{BASE}/smart/northside/callback"
    assert query["launch"] == launch and query["aud"] == ehr.iss
    assert query["scope"] == "launch openid fhirUser patient/Patient.rs"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 43 and query["nonce"]  # 256 bits of state
    cookie = answer.headers["Set-Cookie"]
    for attribute in ("HttpOnly", "Secure", "SameSite=None", "Partitioned", "Path=/smart/"):
        assert attribute in cookie


def test_the_whole_launch_shows_the_launch_patients_trend(browser, ehr, services, channels,
                                                         run_due):
    answer_one_survey(services, channels, run_due, LOW, session_id="enc-1", patient_id="pat-17")
    answer_one_survey(services, channels, run_due, HIGH, session_id="enc-9", patient_id="pat-99")
    run_due()

    landed = sign_in(browser, ehr)

    assert landed.status_code == 303
    assert landed.headers["Location"].endswith("/smart/northside/view")
    assert "HttpOnly" in landed.headers["Set-Cookie"]
    page = browser.get(f"{BASE}/smart/northside/view")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "pat-17" in html and "enc-1" in html and "Alliance rupture" in html
    assert "pat-99" not in html and "enc-9" not in html
    assert "Practitioner/dr-ana" in html  # fhirUser from the verified id_token
    assert "frame-ancestors https://ehr.example.org " + ehr.origin in page.headers[
        "Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    data = browser.get(f"{BASE}/smart/northside/view.json").get_json()
    assert TrendView().validate(data) == {}  # the OpenAPI document's schema fits the answer
    assert data["patient"] == "pat-17" and [s["session_id"] for s in data["sessions"]] == ["enc-1"]
    assert data["open_rupture"]["decision"] == "rupture"


def test_tokens_never_reach_the_browser_nor_the_database(browser, ehr, services):
    landed = sign_in(browser, ehr)
    page = browser.get(f"{BASE}/smart/northside/view")

    token_form = ehr.token_requests[-1]["form"]
    assert token_form["grant_type"] == "authorization_code" and token_form["code_verifier"]
    assert ehr.token_requests[-1]["authorization"].startswith("Basic ")
    with services.engine.connect() as conn:
        stored = [dict(row) for row in conn.execute(select(smart_sessions)).mappings()]
    assert [(row["patient_id"], row["fhir_user"]) for row in stored] == [
        ("pat-17", "Practitioner/dr-ana")]
    seen = landed.get_data(as_text=True) + str(landed.headers) + page.get_data(as_text=True)
    assert "access_token" not in seen and "id_token" not in seen and "eyJ" not in seen


def test_a_standalone_launch_asks_the_ehr_to_pick_the_patient(browser, ehr):
    answer = browser.get(f"{BASE}/smart/northside/launch?iss={ehr.iss}")

    query = query_of(answer.headers["Location"])
    assert "launch" not in query
    assert query["scope"] == "launch/patient openid fhirUser patient/Patient.rs"
    landed = browser.get(requests.get(answer.headers["Location"], allow_redirects=False,
                                      timeout=5).headers["Location"])
    assert landed.status_code == 303


def test_an_issuer_the_practice_does_not_trust_is_refused(browser, ehr, services):
    answer = browser.get(f"{BASE}/smart/northside/launch?iss=https://evil.example/fhir&launch=x")

    assert answer.status_code == 400
    assert "not registered" in answer.get_data(as_text=True)
    with services.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(smart_launches)).scalar() == 0


def test_a_reused_state_is_refused(browser, ehr):
    launched = browser.get(ehr.launch_url(BASE, "northside"))
    callback = requests.get(launched.headers["Location"], allow_redirects=False,
                            timeout=5).headers["Location"]
    assert browser.get(callback).status_code == 303

    again = browser.get(callback)

    assert again.status_code == 400
    assert "already used" in again.get_data(as_text=True)


def test_a_state_from_another_browser_is_refused_and_burnt(services, smart_practice, ehr):
    victim = create_app(services=services).test_client()
    attacker = create_app(services=services).test_client()
    launched = victim.get(ehr.launch_url(BASE, "northside"))
    callback = requests.get(launched.headers["Location"], allow_redirects=False,
                            timeout=5).headers["Location"]

    stolen = attacker.get(callback)

    assert stolen.status_code == 400
    assert "another browser" in stolen.get_data(as_text=True)
    assert attacker.get(f"{BASE}/smart/northside/view").status_code == 401
    assert victim.get(callback).status_code == 400  # single use, even for its own browser
    assert ehr.token_requests == []  # the code was never exchanged


@pytest.mark.parametrize("query", ["state=forged-state-value-000000000000000&code=abc",
                                   "code=abc", ""])
def test_a_callback_without_a_known_state_is_refused(browser, ehr, query):
    answer = browser.get(f"{BASE}/smart/northside/callback?{query}")

    assert answer.status_code == 400
    assert "Open the app again from the EHR" in answer.get_data(as_text=True)


def test_the_ehrs_refusal_is_shown_and_the_state_is_spent(browser, ehr):
    launched = browser.get(ehr.launch_url(BASE, "northside"))
    state = query_of(launched.headers["Location"])["state"]

    answer = browser.get(f"{BASE}/smart/northside/callback?state={state}&error=access_denied")

    assert answer.status_code == 400 and "access_denied" in answer.get_data(as_text=True)
    assert browser.get(f"{BASE}/smart/northside/callback?state={state}&code=x").status_code == 400


def test_without_a_session_the_view_is_refused_with_no_data(browser, services, channels, run_due):
    answer_one_survey(services, channels, run_due, LOW, session_id="enc-1", patient_id="pat-17")
    run_due()

    page = browser.get(f"{BASE}/smart/northside/view")
    data = browser.get(f"{BASE}/smart/northside/view.json")

    assert page.status_code == 401 and "Open the app from the EHR" in page.get_data(as_text=True)
    assert "pat-17" not in page.get_data(as_text=True)
    assert data.status_code == 401 and data.content_type == "application/problem+json"
    assert "pat-17" not in data.get_data(as_text=True)


@pytest.mark.parametrize("query", ["patient=pat-99", "patient_id=pat-99", "subject=Patient/pat-99"])
def test_a_patient_in_the_url_is_refused(browser, ehr, services, channels, run_due, query):
    answer_one_survey(services, channels, run_due, HIGH, session_id="enc-9", patient_id="pat-99")
    run_due()
    sign_in(browser, ehr)

    for path in ("view", "view.json"):
        answer = browser.get(f"{BASE}/smart/northside/{path}?{query}")
        assert answer.status_code == 400
        assert "pat-99" not in answer.get_data(as_text=True).replace(query, "")
        assert "enc-9" not in answer.get_data(as_text=True)


def test_a_session_is_for_one_practice_only(browser, ehr, services):
    other = practice_document(id="southside", smart_app={
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "issuers": [ehr.iss]})
    with services.engine.begin() as conn:
        practices.save(conn, services.box, practices.validate_document(other),
                       now=services.clock())
    sign_in(browser, ehr)

    assert browser.get(f"{BASE}/smart/northside/view").status_code == 200
    assert browser.get(f"{BASE}/smart/southside/view").status_code == 401


def test_an_id_token_with_the_wrong_nonce_opens_no_session(browser, ehr, services):
    ehr.id_token_claims = {"nonce": "someone-elses"}

    landed = sign_in(browser, ehr)

    assert landed.status_code == 502 and "nonce" in landed.get_data(as_text=True)
    with services.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(smart_sessions)).scalar() == 0


def test_a_wrong_client_secret_is_refused_by_the_ehr(browser, ehr, services):
    ehr.client_secret = "what-the-ehr-really-has"

    landed = sign_in(browser, ehr)

    assert landed.status_code == 400 and "invalid_client" in landed.get_data(as_text=True)
    assert browser.get(f"{BASE}/smart/northside/view").status_code == 401


def test_a_token_response_without_a_patient_opens_no_session(browser, ehr):
    ehr.token_answer = {"access_token": "t", "token_type": "Bearer", "expires_in": 3600}

    landed = sign_in(browser, ehr)

    assert landed.status_code == 502 and "no patient" in landed.get_data(as_text=True)


def test_an_unknown_practice_or_one_without_the_app_is_not_found(browser, services, ehr):
    assert browser.get(f"{BASE}/smart/nowhere/launch?iss={ehr.iss}").status_code == 404
    with services.engine.begin() as conn:
        practices.save(conn, services.box, practices.validate_document(
            practice_document(id="plain")), now=services.clock())
    answer = browser.get(f"{BASE}/smart/plain/view")
    assert answer.status_code == 404
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]


def test_every_view_of_a_clients_trend_is_in_the_audit_log(browser, ehr, services, channels,
                                                          run_due):
    from service.persistence.queries import audit

    answer_one_survey(services, channels, run_due, LOW, session_id="enc-1", patient_id="pat-17")
    run_due()
    sign_in(browser, ehr)
    assert browser.get(f"{BASE}/smart/northside/view").status_code == 200
    assert browser.get(f"{BASE}/smart/northside/view.json").status_code == 200
    assert browser.get(f"{BASE}/smart/northside/view?patient=pat-99").status_code == 400
    with services.engine.begin() as conn:
        rows = audit.recent(conn, "northside", None, None, 10)
    assert sorted((r["patient_id"], r["actor"], r["channel"], r["action"], r["what"])
                  for r in rows) == [
        ("pat-17", "Practitioner/dr-ana", "smart", "read", "trend data"),
        ("pat-17", "Practitioner/dr-ana", "smart", "read", "trend view")]

"""Acknowledge and snooze from the SMART trend view (CONTRACT §9.1) over HTTP, on SQLite and
PostgreSQL: real launches against the strict fake authorization server, surveys assessed and
written back as in production, the CDS cards the EHR then gets, and every refusal changing
nothing."""

from __future__ import annotations

import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from html import unescape

import pytest
import requests
from cds_support import Ehr, default_clients
from smart_fake import CLIENT_ID, CLIENT_SECRET, FakeSmartServer
from sqlalchemy import func, select, text

from schemas.trend import TrendView
from service import practices
from service.handlers.escalation import schedule_completions
from service.persistence.queries import alert_actions as alert_queries
from service.persistence.queries import audit
from service.persistence.queries.smart_sessions import digest
from service.persistence.tables import alert_actions, audit_log, rupture_episodes
from service.web import create_app
from service.web.smart import SESSION_COOKIE
from support import answer_one_survey, practice_document

BASE = "https://surveys.test"
PATH = "/smart/northside/view"
VIEW = BASE + PATH  # over https: the session cookie is Secure
LOW = {"bond": 2, "goals": 1, "approach": 2, "overall": 1, "tension": True, "tension_intensity": 5}
TOP = {"bond": 10, "goals": 10, "approach": 10, "overall": 10, "tension": False}
NOTE = "Raised it with the client; we agreed to slow down on homework."
FORM = re.compile(r'<form method="post" action="([^"]+/(acknowledge|snooze))"[^>]*>\s*'
                  r'<input type="hidden" name="token" value="([^"]+)">')


@pytest.fixture
def ehr(httpserver):
    return FakeSmartServer(httpserver, redirect_uri=f"{BASE}/smart/northside/callback")


@pytest.fixture
def smart_practice(services, ehr):
    document = practices.validate_document(practice_document(
        smart_app={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                   "issuers": [ehr.iss], "scope": "launch openid fhirUser patient/Patient.rs"},
        cds_hooks={"clients": default_clients(), "info_cards": True},
        alerts={"max_snooze_days": 3, "max_snoozes": 2}))
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=services.clock())
    services._practices.clear()
    return document


@pytest.fixture
def browser(services, smart_practice):
    return create_app(services=services).test_client()


@pytest.fixture
def cds(services, smart_practice):
    return Ehr(services)


@pytest.fixture
def session(services, channels, run_due):
    """A completed session whose survey the client answers; assessed and written back."""
    count = iter(range(1, 100))

    def complete(answers: dict, patient_id: str = "pat-17") -> None:
        answer_one_survey(services, channels, run_due, answers,
                          session_id=f"enc-{patient_id}-{next(count)}", patient_id=patient_id)
        run_due()

    return complete


def sign_in(browser, ehr, patient: str = "pat-17"):
    launched = browser.get(ehr.launch_url(BASE, "northside", ehr.new_launch(patient)))
    authorized = requests.get(launched.headers["Location"], allow_redirects=False, timeout=5)
    landed = browser.get(authorized.headers["Location"])
    assert landed.status_code == 303, landed.get_data(as_text=True)


def forms_of(browser) -> dict[str, tuple[str, str]]:
    """{action: (path, token)} of the view's action forms."""
    page = browser.get(VIEW)
    assert page.status_code == 200
    return {action: (BASE + unescape(path), token)
            for path, action, token in FORM.findall(page.get_data(as_text=True))}


def post(browser, action: str, **fields):
    path, token = forms_of(browser)[action]
    return browser.post(path, data={"token": token, **fields})


def stored(services) -> list[dict]:
    with services.engine.connect() as conn:
        return [dict(row) for row in conn.execute(
            select(alert_actions).order_by(alert_actions.c.at)).mappings()]


def episode_of(services, patient: str) -> str:
    with services.engine.connect() as conn:
        return conn.execute(select(rupture_episodes.c.id).where(
            rupture_episodes.c.patient_id == patient)).scalar_one()


def audit_writes(services) -> list[dict]:
    with services.engine.connect() as conn:
        return [dict(row) for row in conn.execute(select(audit_log).where(
            audit_log.c.action == audit.WRITE)).mappings()]


def test_an_acknowledgment_with_a_note_is_stored_shown_and_turns_the_card_to_info(
        browser, ehr, services, session, cds):
    session(LOW)
    sign_in(browser, ehr)

    answer = post(browser, "acknowledge", note=NOTE)

    assert answer.status_code == 303
    assert answer.headers["Location"].endswith(f"{PATH}?done=acknowledged#status")
    (row,) = stored(services)
    assert (row["action"], row["source"], row["actor"]) == (
        "acknowledge", "smart-view", "Practitioner/dr-ana")
    assert row["at"] == services.clock() and row["until"] is None
    assert NOTE not in row["note"] and services.vault.open(row["note"]) == {"text": NOTE}
    (write,) = audit_writes(services)
    assert (write["patient_id"], write["actor"], write["what"], write["ref"]) == (
        "pat-17", "Practitioner/dr-ana", "alert acknowledge", row["episode_id"])
    html = browser.get(f"{VIEW}?done=acknowledged").get_data(as_text=True)
    assert '<p id="status" class="status" role="status" tabindex="-1">Acknowledged.' in html
    assert "<title>Acknowledged · Alliance trend" in html
    assert "Acknowledged</strong> by Practitioner/dr-ana" in html
    assert f"Note: “{unescape(NOTE)}”" in unescape(html)
    assert "/acknowledge" not in html  # acknowledged: no acknowledge form any more
    data = browser.get(f"{VIEW}.json").get_json()
    assert TrendView().validate(data) == {}
    rupture = data["open_rupture"]
    assert rupture["episode_id"] == row["episode_id"]
    assert rupture["acknowledged"]["actor"] == "Practitioner/dr-ana"
    assert [(a["action"], a["note"]) for a in rupture["actions"]] == [("acknowledge", NOTE)]
    (card,) = cds.cards("pat-17")
    assert card["indicator"] == "info" and card["summary"].startswith("Acknowledged: ")
    assert "Acknowledged by Practitioner/dr-ana" in card["detail"]


def test_acknowledging_again_adds_nothing_and_says_so(browser, ehr, services, session):
    session(LOW)
    sign_in(browser, ehr)
    path, token = forms_of(browser)["acknowledge"]  # a second tab, opened before the first acts
    post(browser, "acknowledge")

    again = browser.post(path, data={"token": token})

    assert again.headers["Location"].endswith("?done=already-acknowledged#status")
    assert len(stored(services)) == 1
    page = browser.get(f"{VIEW}?done=already-acknowledged").get_data(as_text=True)
    assert "This rupture was already acknowledged; nothing was added." in page


def test_a_snooze_hides_the_card_until_it_ends_and_the_view_says_until_when(
        browser, ehr, services, session, cds, clock):
    session(LOW)
    sign_in(browser, ehr)

    answer = post(browser, "snooze", days="2")

    assert answer.headers["Location"].endswith("?done=snoozed#status")
    (row,) = stored(services)
    assert row["action"] == "snooze" and row["until"] == clock.now + timedelta(days=2)
    html = browser.get(f"{VIEW}?done=snoozed").get_data(as_text=True)
    assert "<title>Snoozed · Alliance trend" in html
    assert "Snoozed until" in html and "the EHR shows no card for this rupture" in html
    assert "1 of 2 snoozes left for this rupture." in html
    json_rupture = browser.get(f"{VIEW}.json").get_json()["open_rupture"]
    assert json_rupture["snoozed_until"] == row["until"].isoformat()
    assert json_rupture["snoozes_left"] == 1
    assert cds.cards("pat-17") == []
    clock.advance(days=2, seconds=1)
    (card,) = cds.cards("pat-17")
    assert card["indicator"] == "warning"


def test_a_snooze_longer_than_the_practice_allows_is_refused_and_stores_nothing(
        browser, ehr, services, session):
    session(LOW)
    sign_in(browser, ehr)

    for days in ("4", "0", "-1", "soon", ""):
        refused = post(browser, "snooze", days=days)
        assert refused.status_code == 400, days
        html = refused.get_data(as_text=True)
        assert "Snooze for 1 to 3 days" in html and "Back to the trend" in html
    assert stored(services) == [] and audit_writes(services) == []


def test_no_more_snoozes_than_the_practice_allows(browser, ehr, services, session):
    session(LOW)
    sign_in(browser, ehr)
    assert post(browser, "snooze", days="1").status_code == 303
    path, token = forms_of(browser)["snooze"]
    assert browser.post(path, data={"token": token, "days": "3"}).status_code == 303

    assert "snooze" not in forms_of(browser)  # none left: no form
    refused = browser.post(path, data={"token": forms_of(browser)["acknowledge"][1],
                                       "days": "1"})
    assert refused.status_code == 403  # an acknowledge token does not snooze
    page = browser.get(VIEW).get_data(as_text=True)
    assert "No snooze left for this rupture (this practice allows 2)." in page
    assert [row["action"] for row in stored(services)] == ["snooze", "snooze"]


def test_the_count_is_checked_on_the_server_too(browser, ehr, services, session):
    session(LOW)
    sign_in(browser, ehr)
    tokens = [forms_of(browser)["snooze"] for _ in range(3)]  # three tabs
    answers = [browser.post(path, data={"token": token, "days": "1"}) for path, token in tokens]

    assert [a.status_code for a in answers] == [303, 303, 409]
    assert "No snooze left for this rupture" in answers[2].get_data(as_text=True)
    assert len(stored(services)) == 2


@pytest.mark.parametrize("database", ["postgres"], indirect=True)  # the lock under test
def test_an_action_waits_for_another_on_the_same_episode_and_sees_it(browser, ehr, services,
                                                                     session):
    session(LOW)
    sign_in(browser, ehr)
    assert post(browser, "snooze", days="1").status_code == 303  # one of two left
    path, token = forms_of(browser)["snooze"]
    episode = episode_of(services, "pat-17")
    with services.engine.connect() as other_tab, ThreadPoolExecutor(1) as pool:
        held = other_tab.begin()  # another request, storing the last snooze, not committed yet
        assert alert_queries.episode_for_update(other_tab, "northside", episode) is not None
        alert_queries.add(other_tab, dict(
            id=str(uuid.uuid4()), practice_id="northside", episode_id=episode,
            action="snooze", actor="Practitioner/dr-ana", source="smart-view",
            at=services.clock(), until=services.clock() + timedelta(days=1),
            dedupe_key="smart-view:other-tab"))
        pending = pool.submit(browser.post, path, data={"token": token, "days": "2"})
        assert waits_for_a_lock(services.engine)  # not reading the count before the other ends
        held.commit()
        answer = pending.result(timeout=30)

    assert answer.status_code == 409
    assert "No snooze left for this rupture" in answer.get_data(as_text=True)
    assert len(stored(services)) == 2


def waits_for_a_lock(engine, tries: int = 200) -> bool:
    """Whether a session of this database comes to wait on a row lock (polled, ≤ 10 s)."""
    for _ in range(tries):
        with engine.connect() as conn:
            waiting = conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")).scalar()
        if waiting:
            return True
        time.sleep(0.05)
    return False


def test_a_replayed_form_is_refused_and_changes_nothing(browser, ehr, services, session):
    session(LOW)
    sign_in(browser, ehr)
    path, token = forms_of(browser)["snooze"]
    assert browser.post(path, data={"token": token, "days": "1"}).status_code == 303

    replayed = browser.post(path, data={"token": token, "days": "1"})

    assert replayed.status_code == 409
    assert "This form was sent already" in replayed.get_data(as_text=True)
    assert len(stored(services)) == 1 and len(audit_writes(services)) == 1


@pytest.mark.parametrize("token", ["", "forged.token", "x" * 300])
def test_a_missing_or_forged_token_is_refused(browser, ehr, services, session, token):
    session(LOW)
    sign_in(browser, ehr)
    path, _ = forms_of(browser)["acknowledge"]

    refused = browser.post(path, data={"token": token} if token else {})

    assert refused.status_code == 403
    assert "This form cannot be used" in refused.get_data(as_text=True)
    assert stored(services) == []


def test_a_form_of_another_sign_in_is_refused(browser, ehr, services, session, smart_practice):
    session(LOW)
    sign_in(browser, ehr)
    path, token = forms_of(browser)["acknowledge"]
    other = create_app(services=services).test_client()
    sign_in(other, ehr)  # the same clinician and patient, another browser

    refused = other.post(path, data={"token": token})

    assert refused.status_code == 403
    assert stored(services) == []


def test_an_action_on_someone_elses_patient_is_refused(browser, ehr, services, session):
    session(LOW)
    session(LOW, patient_id="pat-99")
    sign_in(browser, ehr)  # launched for pat-17
    theirs = episode_of(services, "pat-99")
    cookie = browser.get_cookie(SESSION_COOKIE, domain="surveys.test", path="/smart/")
    # A token signed for this very session and that episode: the patient check stands alone.
    token = services.forms.action_token(digest(cookie.value), theirs, "acknowledge")

    refused = browser.post(f"{BASE}/smart/northside/rupture/{theirs}/acknowledge",
                           data={"token": token})

    assert refused.status_code == 403
    html = refused.get_data(as_text=True)
    assert "Not this patient&#39;s rupture" in html and "pat-99" not in html
    assert stored(services) == [] and audit_writes(services) == []


def test_without_a_smart_session_an_action_is_refused(browser, ehr, services, session):
    session(LOW)
    sign_in(browser, ehr)
    path, token = forms_of(browser)["acknowledge"]
    stranger = create_app(services=services).test_client()

    refused = stranger.post(path, data={"token": token})

    assert refused.status_code == 401
    assert "Open the app from the EHR" in refused.get_data(as_text=True)
    assert stored(services) == []


def test_an_over_long_note_is_refused_with_the_limit(browser, ehr, services, session):
    session(LOW)
    sign_in(browser, ehr)

    refused = post(browser, "acknowledge", note="n" * 1001)

    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    assert "at most 1000 characters; this one has 1001" in html
    assert stored(services) == []
    assert post(browser, "acknowledge", note="n" * 1000).status_code == 303


def test_an_action_on_a_rupture_repaired_meanwhile_is_refused(browser, ehr, services, session):
    session(LOW)
    sign_in(browser, ehr)
    path, token = forms_of(browser)["acknowledge"]
    session(TOP)  # the alliance recovers while the page is open

    refused = browser.post(path, data={"token": token})

    assert refused.status_code == 409
    assert "This rupture is no longer open" in refused.get_data(as_text=True)
    assert stored(services) == []


def test_an_acknowledged_rupture_still_resolves_on_repair(browser, ehr, services, session,
                                                          fake_ehr, cds):
    session(LOW)
    (flag,) = fake_ehr.resources("Flag")
    assert flag["status"] == "active"
    sign_in(browser, ehr)
    post(browser, "acknowledge", note=NOTE)

    session(TOP)

    (flag,) = fake_ehr.resources("Flag")
    assert flag["status"] == "inactive"  # written back through the outbox, as without an ack
    with services.engine.connect() as conn:
        assert conn.execute(select(rupture_episodes.c.status)).scalar_one() == "resolved"
    assert "No open rupture." in browser.get(VIEW).get_data(as_text=True)
    (card,) = cds.cards("pat-17")
    assert card["indicator"] == "info" and "Acknowledged" not in card["summary"]


def test_cds_feedback_counts_as_acknowledgment_and_shows_in_the_history(
        browser, ehr, services, session, cds):
    session(LOW)
    (card,) = cds.cards("pat-17")
    assert cds.feedback(card["uuid"], comment="Will raise it on Tuesday").status_code == 200
    sign_in(browser, ehr)

    page = browser.get(VIEW).get_data(as_text=True)

    assert "Acknowledged in the EHR (CDS Hooks card)" in page
    assert "a clinician in the EHR (CDS Hooks feedback)" in page
    assert "Will raise it on Tuesday" in page
    assert "acknowledge" not in forms_of(browser)  # acknowledged already: only snooze is left
    data = browser.get(f"{VIEW}.json").get_json()["open_rupture"]
    assert data["acknowledged"]["source"] == "cds-feedback"


def test_a_rupture_that_turns_unresolved_asks_for_a_new_acknowledgment(
        browser, ehr, services, session, cds, clock):
    session(LOW)
    sign_in(browser, ehr)
    post(browser, "acknowledge")
    post(browser, "snooze", days="3")
    for _ in range(3):
        clock.advance(hours=1)
        session(LOW)
    assert cds.cards("pat-17")[0]["indicator"] == "critical"  # the snooze was for the rupture

    forms = forms_of(browser)

    assert "acknowledge" in forms
    assert post(browser, "acknowledge").status_code == 303
    assert [row["action"] for row in stored(services)] == ["acknowledge", "snooze", "acknowledge"]
    assert cds.cards("pat-17")[0]["indicator"] == "info"


def test_a_launch_that_names_no_user_records_a_clear_label(browser, ehr, services, session):
    ehr.fhir_user = None
    session(LOW)
    sign_in(browser, ehr)

    post(browser, "acknowledge")

    (row,) = stored(services)
    assert row["actor"] == f"smart-launch:{ehr.iss}"
    page = browser.get(VIEW).get_data(as_text=True)
    assert f"a user of the EHR at {ehr.iss} (the launch named no user)" in page


def test_the_view_shows_no_forms_without_an_open_rupture(browser, ehr, services, session):
    session(TOP)
    sign_in(browser, ehr)

    assert forms_of(browser) == {}
    with services.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(alert_actions)).scalar() == 0


def test_acknowledging_an_escalated_rupture_in_the_view_completes_its_task(
        browser, ehr, services, session, smart_practice, fake_ehr, run_due, clock):
    document = {**smart_practice, "alerts": {**smart_practice["alerts"],
                                             "escalate_to": "Practitioner/sup-1",
                                             "escalate_after_hours": 0.5}}
    with services.engine.begin() as conn:
        practices.save(conn, services.box, practices.validate_document(document),
                       now=services.clock())
    services._practices.clear()
    for _ in range(4):
        session(LOW)  # the fourth makes the rupture unresolved
    clock.advance(hours=1)
    run_due()
    (task,) = fake_ehr.resources("Task")
    assert task["status"] == "requested"
    sign_in(browser, ehr)
    assert "Escalated to the supervisor</strong> by the service" in browser.get(VIEW).get_data(
        as_text=True)

    post(browser, "acknowledge", note=NOTE)
    assert schedule_completions(services) == 1
    run_due()

    (task,) = fake_ehr.resources("Task")
    assert task["status"] == "completed"
    history = browser.get(VIEW).get_data(as_text=True)
    assert "Escalation task completed</strong> by the service" in history
    assert [row["action"] for row in stored(services)] == [
        "escalate", "acknowledge", "complete-escalation"]

"""The alerts API (CONTRACT §10) and its practice API keys, on SQLite and PostgreSQL: keys
made and revoked with the command line, one 401 for every way of not holding a key of the
practice, open and repaired ruptures from stored state, paging, and bad queries."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from service import api_keys
from service.persistence.tables import practice_api_keys, rupture_episodes, surveys
from service.web import create_app
from support import answer_one_survey, practice_document

LOW = {"bond": 1, "goals": 1, "approach": 1, "overall": 1, "tension": True, "tension_intensity": 5}
HIGH = {"bond": 9, "goals": 9, "approach": 9, "overall": 9, "tension": False}
PHONE = "+15551234567"
URL = "/api/v1/practices/northside/alerts"


@pytest.fixture
def alliance(alliance_cli, practice):
    """The command line, on the same database as `services`, with northside stored."""
    return alliance_cli


@pytest.fixture
def client(services, practice):
    return create_app(services=services).test_client()


@pytest.fixture
def key(services, practice) -> str:
    with services.engine.begin() as conn:
        return api_keys.create(conn, "northside", services.clock()).key


def get(client, key: str | None, url: str = URL, **query):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.get(url, query_string=query, headers=headers)


def test_a_key_is_printed_once_as_the_last_word_and_only_its_digest_is_kept(alliance, client,
                                                                           services):
    made = alliance("practice", "api-key", "create", "northside", "--label", "canvas plugin")
    assert made.exit_code == 0, made.output
    key = made.output.split()[-1]
    assert key.startswith("afk_") and len(key) > 40
    with services.engine.begin() as conn:
        [row] = conn.execute(select(practice_api_keys)).mappings().all()
    assert key not in json.dumps(dict(row), default=str) and row["digest"] == api_keys.digest(key)
    assert row["id"] in made.output and row["label"] == "canvas plugin"
    assert get(client, key).status_code == 200
    listed = alliance("practice", "api-key", "list", "northside")
    assert row["id"] in listed.output and key not in listed.output


def test_a_revoked_key_is_refused_at_once(alliance, client):
    key = alliance("practice", "api-key", "create", "northside").output.split()[-1]
    key_id = key.removeprefix("afk_").split(".")[0]
    assert get(client, key).status_code == 200
    revoked = alliance("practice", "api-key", "revoke", "northside", key_id)
    assert revoked.exit_code == 0 and key_id in revoked.output
    assert get(client, key).status_code == 401
    again = alliance("practice", "api-key", "revoke", "northside", key_id)
    assert again.exit_code != 0 and "no live API key" in again.output


def test_keys_are_only_made_for_practices_that_exist(alliance):
    refused = alliance("practice", "api-key", "create", "nowhere")
    assert refused.exit_code != 0 and "no practice with id 'nowhere'" in refused.output


def test_every_way_of_not_holding_a_key_of_the_practice_gets_the_same_401(client, services, key):
    from service.practices import save, validate_document

    with services.engine.begin() as conn:
        save(conn, services.box, validate_document(practice_document(id="southside")),
             now=services.clock())
        other = api_keys.create(conn, "southside", services.clock()).key
        revoked = api_keys.create(conn, "northside", services.clock())
        api_keys.revoke(conn, "northside", revoked.key_id, services.clock())
    wrong_secret = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    answers = [
        get(client, None), get(client, "not-a-key"), get(client, wrong_secret),
        get(client, other), get(client, revoked.key),
        client.get(URL, headers={"Authorization": f"Basic {key}"}),
        get(client, key, url="/api/v1/practices/nowhere/alerts"),
        get(client, other, url="/api/v1/practices/nowhere/alerts"),
        get(client, key, url="/api/v1/practices/southside/alerts"),
    ]
    assert {a.status_code for a in answers} == {401}
    assert {a.mimetype for a in answers} == {"application/problem+json"}
    assert len({a.get_data() for a in answers}) == 1
    assert {a.headers["WWW-Authenticate"] for a in answers} == {'Bearer realm="alliance-feedback"'}


def test_an_open_rupture_is_an_alert_in_plain_words_without_contact_data(client, key, services,
                                                                         channels, run_due):
    answer_one_survey(services, channels, run_due, LOW, session_id="enc-1", patient_id="pat-17")
    run_due()
    answer = get(client, key)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["practice_id"] == "northside" and body["next_cursor"] is None
    [alert] = body["alerts"]
    with services.engine.begin() as conn:
        episode = conn.execute(select(rupture_episodes)).mappings().one()
    assert alert["id"] == episode["id"] and alert["patient_id"] == "pat-17"
    assert (alert["status"], alert["level"]) == ("open", "rupture")
    assert alert["text"].startswith("Alliance rupture: ") and alert["text"] == episode["flag_text"]
    day = session_day(services, "enc-1")
    assert alert["summary"] == (f"Alliance rupture after the session of {day}: "
                                "talk it through next session")
    assert len(alert["summary"]) <= 90 and alert["session_date"] == day
    assert alert["closed_at"] is None
    assert PHONE not in answer.get_data(as_text=True)
    assert "answers" not in answer.get_data(as_text=True)


def test_a_repaired_rupture_is_reported_as_resolved_only_to_a_reader_since_before(
        client, key, services, channels, run_due, clock):
    answer_one_survey(services, channels, run_due, LOW, session_id="enc-1", patient_id="pat-17")
    run_due()
    before_repair = clock.now
    clock.advance(days=7)
    answer_one_survey(services, channels, run_due, HIGH, session_id="enc-2", patient_id="pat-17")
    run_due()
    assert get(client, key).get_json()["alerts"] == []
    [alert] = get(client, key, since=before_repair.isoformat()).get_json()["alerts"]
    assert alert["status"] == "resolved" and alert["closed_at"] is not None
    day = session_day(services, "enc-1")
    assert alert["summary"] == f"The alliance rupture of the session of {day} looks repaired"
    later = (clock.now + timedelta(minutes=1)).isoformat()
    assert get(client, key, since=later).get_json()["alerts"] == []


def test_pages_cover_every_alert_once_and_never_another_practices(client, key, services, clock):
    rows = [episode(f"pat-{n}", "open") for n in range(5)]
    rows += [episode("pat-closed", "resolved", closed_at=clock.now)]
    rows += [episode("pat-elsewhere", "open", practice_id="southside")]
    with services.engine.begin() as conn:
        conn.execute(rupture_episodes.insert(), [{**row, "opened_at": clock.now} for row in rows])
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 2, "since": (clock.now - timedelta(hours=1)).isoformat()}
        if cursor:
            query["cursor"] = cursor
        body = get(client, key, **query).get_json()
        pages += 1
        assert len(body["alerts"]) <= 2
        seen += [alert["patient_id"] for alert in body["alerts"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted([f"pat-{n}" for n in range(5)] + ["pat-closed"])
    assert pages == 3


def session_day(services, session_id: str) -> str:
    """The session's day in the practice's time zone (America/Chicago)."""
    with services.engine.begin() as conn:
        ended = conn.execute(select(surveys.c.session_ended_at).where(
            surveys.c.session_id == session_id)).scalar_one()
    return ended.astimezone(ZoneInfo("America/Chicago")).date().isoformat()


def episode(patient_id: str, status: str, practice_id: str = "northside", closed_at=None) -> dict:
    return {"id": str(uuid.uuid4()), "practice_id": practice_id, "patient_id": patient_id,
            "status": status, "flag_text": "Alliance rupture: a test", "closed_at": closed_at,
            "opened_by_survey_id": str(uuid.uuid4())}


@pytest.mark.parametrize("query, field", [
    ({"since": "2026-11-26T15:00:00"}, "since"),
    ({"since": "yesterday"}, "since"),
    ({"limit": "0"}, "limit"),
    ({"limit": "501"}, "limit"),
    ({"cursor": "not a cursor!"}, "cursor"),
    ({"cursor": "%%%"}, "cursor"),
    ({"sinse": "2026-11-26T15:00:00Z"}, "sinse"),
])
def test_a_bad_query_is_refused_naming_the_parameter(client, key, query, field):
    answer = get(client, key, **query)
    assert answer.status_code == 422 and answer.mimetype == "application/problem+json"
    assert field in answer.get_json()["errors"]


def test_every_alert_read_is_in_the_audit_log_with_the_key_and_the_client(
        client, key, services, channels, run_due, alliance):
    answer_one_survey(services, channels, run_due, LOW, session_id="enc-1", patient_id="pat-17")
    run_due()
    assert get(client, key, since="2000-01-01T00:00:00Z").status_code == 200
    assert get(client, None).status_code == 401  # a refused read reads nothing
    with services.engine.begin() as conn:
        episode_id = conn.execute(select(rupture_episodes.c.id)).scalar_one()
    key_id = key.removeprefix("afk_").split(".")[0]
    [header, row] = alliance("audit", "list", "--practice", "northside").output.splitlines()
    assert row.split("\t")[1:] == ["northside", "pat-17", f"api-key:{key_id}", "alerts-api",
                                   "read", "alert", episode_id]

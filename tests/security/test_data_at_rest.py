"""Clients' data at rest (CONTRACT §11), on SQLite and PostgreSQL: after the whole loop no
phone number, e-mail address or free-text answer is in any column of any table, yet the service
still reaches, finds and assesses its clients; the migration encrypts rows stored before it;
the embedded database files are readable by the service's user only."""

from __future__ import annotations

import stat
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, insert, text

from service.crypto import ClientVault, KeyRing, SecretBox
from service.demo import session_completed, signed_event
from service.persistence.db import make_engine
from service.persistence.migrate import alembic_config, upgrade
from service.persistence.queries import clients, events
from service.persistence.queries import responses as stored_responses
from service.web import create_app
from service.web.consent import twilio_signature
from support import DEMO_SECRET, POSTGRES_ADMIN_URL, TEST_SECRET_KEY, require

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from db_scan import needles_for, scan_database  # noqa: E402

CLIENTS = [  # patient, phone, e-mail, free-text comment
    ("pat-1", "+15557654321", "ana.client@example.org", "my therapist rushed me, Tuesday"),
    ("pat-2", "+447700900123", "bo.client@example.net", "felt heard today; thanks Dr Ruiz"),
]
INBOUND = "/webhooks/northside/sms/inbound"
LOW = {"bond": 1, "goals": 2, "approach": 1, "overall": 1, "tension": True, "tension_intensity": 4}


def all_needles() -> list[str]:
    return [needle for _patient, phone, email, comment in CLIENTS
            for needle in needles_for(phone, email, comment)]


@pytest.fixture
def client(services, practice):
    return create_app(services=services).test_client()


def post_event(client, session_id: str, patient_id: str, phone: str, email: str) -> None:
    body, headers = signed_event(DEMO_SECRET, session_completed(session_id, patient_id,
                                                                phone=phone, email=email),
                                 when=datetime.now(timezone.utc))
    answered = client.post("/webhooks/northside/events", data=body, headers=headers)
    assert answered.status_code == 202, answered.get_json()


def sms_keyword(client, sender: str, body: str) -> None:
    """An inbound SMS as Twilio sends it, signed with the practice's auth token."""
    form = {"From": sender, "To": "+15550001111", "Body": body, "MessageSid": uuid.uuid4().hex}
    signature = twilio_signature("tok", f"https://surveys.test{INBOUND}", form.items())
    answered = client.post(INBOUND, data=form, headers={"X-Twilio-Signature": signature})
    assert answered.status_code == 200


def test_no_phone_email_or_free_text_in_any_column_after_the_whole_loop(
        client, services, channels, fake_ehr, run_due, database):
    for index, (patient, phone, email, comment) in enumerate(CLIENTS):
        post_event(client, f"enc-{index}", patient, phone, email)
        run_due()
        token = channels["sms"].sent[-1].link.rsplit("/s/", 1)[1]
        answered = client.post(f"/api/v1/surveys/{token}/response",
                               json={"answers": {**LOW, "comment": comment}})
        assert answered.status_code == 201
        run_due()
    # pat-2 texts STOP, then START: found by the keyed hash both times.
    sms_keyword(client, CLIENTS[1][1], "STOP")
    sms_keyword(client, CLIENTS[1][1], "START")

    _url, engine = database
    scan = scan_database(engine, all_needles())
    assert scan.found == [], scan.found
    assert scan.tables >= 12 and scan.values > 100  # the scan read the database, not nothing

    # Encrypted, not lost: the service still reads everything it needs.
    with services.engine.begin() as conn:
        ana = clients.find(conn, services.vault, "northside", "pat-1")
        bo = clients.find(conn, services.vault, "northside", "pat-2")
        assert clients.with_phone(conn, services.vault, "northside", "+15557654321") == ["pat-1"]
        survey_id = conn.execute(text("SELECT id FROM surveys WHERE patient_id = 'pat-1'")).scalar()
        answers = stored_responses.for_survey(conn, services.vault, survey_id)["answers"]
    assert (ana["phone"], ana["email"]) == ("+15557654321", "ana.client@example.org")
    assert bo["phone"] is None and bo["email"] is None and bo["opted_out_at"] is None  # STOP, START
    assert answers["comment"] == CLIENTS[0][3]
    assert len(fake_ehr.resources("Flag")) == 2  # both assessed and written back


def test_sealed_values_open_only_with_the_client_data_key(services, practice, clock):
    from integrations.delivery.port import Contact

    with services.engine.begin() as conn:
        clients.count_session(conn, services.vault, "northside", "pat-1",
                              Contact(phone="+15557654321", email="ana@example.org"), clock())
        sealed = conn.execute(text("SELECT sealed_phone FROM clients")).scalar()
    assert services.vault.open_text(sealed) == "+15557654321"
    with pytest.raises(ValueError, match="cannot be decrypted"):
        services.box.open_text(sealed)  # the practice-secret key cannot open client data
    with pytest.raises(ValueError, match="stored client data cannot be decrypted"):
        ClientVault(KeyRing(["x" * 40])).open_text(sealed)


def test_a_stop_deletes_the_contact_details_everywhere_and_start_still_finds_the_client(
        client, services, run_due, channels):
    patient, phone, email, _comment = CLIENTS[0]
    post_event(client, "enc-1", patient, phone, email)
    run_due()
    sms_keyword(client, phone, "STOP")
    with services.engine.begin() as conn:
        stopped = clients.find(conn, services.vault, "northside", patient)
        [event_id] = conn.execute(text("SELECT id FROM webhook_events")).scalars().all()
        stored = events.load(conn, services.vault, event_id)
    assert stopped["opted_out_at"] is not None
    assert stopped["phone"] is None and stopped["email"] is None and stopped["phone_hash"]
    assert stored.outcome.facts.contact is None  # the event's copy is gone too

    # A later session keeps no contact for a client who opted out, and still no survey goes.
    post_event(client, "enc-2", patient, phone, email)
    run_due()
    with services.engine.begin() as conn:
        assert clients.find(conn, services.vault, "northside", patient)["phone"] is None
    assert len(channels["sms"].sent) == 1

    sms_keyword(client, "+1 (555) 765-4321", "START")  # another spelling of the same number
    with services.engine.begin() as conn:
        assert clients.find(conn, services.vault, "northside", patient)["opted_out_at"] is None


# --- the migration -----------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request, tmp_path):
    """A database of its own (the migration is run from the start), dropped afterwards."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        yield engine
        engine.dispose()
        return
    require("postgres")
    name = f"alliance_migration_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def plaintext_rows(conn, now) -> None:
    """Rows as version 0006 stored them: contact, payload and answers in the clear, and a
    clinician's comment and note sealed with the practice-secret key."""
    from sqlalchemy import JSON, Integer, String, column, table

    conn.execute(text("INSERT INTO practices (id, name, timezone, sealed_document, created_at, "
                      "updated_at) VALUES ('northside', 'N', 'UTC', 'x', :now, :now)"), {"now": now})
    clients_0004 = table("clients", column("practice_id"), column("patient_id"), column("phone"),
                         column("email"), column("locale"), column("sessions_completed", Integer),
                         column("updated_at"))
    conn.execute(insert(clients_0004), [
        {"practice_id": "northside", "patient_id": "pat-1", "phone": "+1 (555) 765-4321",
         "email": "ana.client@example.org", "locale": "en", "sessions_completed": 1,
         "updated_at": now},
        {"practice_id": "northside", "patient_id": "pat-2", "phone": None, "email": None,
         "locale": None, "sessions_completed": 1, "updated_at": now}])
    events_0004 = table("webhook_events", column("id"), column("practice_id"), column("source"),
                        column("delivery_id"), column("event_type"), column("session_id"),
                        column("patient_id"), column("outcome"), column("payload", JSON),
                        column("received_at"))
    session = {"session_id": "enc-1", "patient_id": "pat-1", "ended_at": None,
               "contact": {"phone": "+15557654321", "email": "ana.client@example.org"}}
    conn.execute(insert(events_0004), [
        {"id": "ev-1", "practice_id": "northside", "source": "native", "delivery_id": "msg_1",
         "event_type": "session.completed", "session_id": "enc-1", "patient_id": "pat-1",
         "outcome": "survey-scheduled", "payload": {"version": 2, "outcome": "completed",
                                                    "session": session}, "received_at": now},
        {"id": "ev-2", "practice_id": "northside", "source": "fhir", "delivery_id": "d-2",
         "event_type": "x", "session_id": None, "patient_id": None, "outcome": "ignored",
         "payload": {}, "received_at": now}])
    conn.execute(text("INSERT INTO surveys (id, practice_id, patient_id, session_id, event_id, "
                      "instrument_id, status, created_at, send_at) VALUES ('s-1', 'northside', "
                      "'pat-1', 'enc-1', 'ev-1', 'brief-alliance-check', 'answered', :now, :now)"),
                 {"now": now})
    responses_0004 = table("responses", column("id"), column("survey_id"),
                           column("answers", JSON), column("total"), column("subscales", JSON),
                           column("pomp"), column("submitted_at"), column("x", String))
    conn.execute(insert(responses_0004).values(
        id="r-1", survey_id="s-1", answers={**LOW, "comment": "my therapist rushed me, Tuesday"},
        total=5, subscales={}, pomp=12.5, submitted_at=now))
    sealed = SecretBox(KeyRing([TEST_SECRET_KEY])).seal({"text": "call her on Tuesday"})
    conn.execute(text("INSERT INTO cds_feedback (id, practice_id, service_id, client_iss, "
                      "card_uuid, outcome, comment, outcome_at, received_at, dedupe_key) VALUES "
                      "('f-1', 'northside', 's', 'https://ehr', 'c-1', 'overridden', :sealed, "
                      ":now, :now, 'd-1')"), {"sealed": sealed, "now": now})
    conn.execute(text("INSERT INTO alert_actions (id, practice_id, episode_id, action, actor, "
                      "source, note, at) VALUES ('a-1', 'northside', 'ep-1', 'acknowledge', 'x', "
                      "'cds-feedback', :sealed, :now)"), {"sealed": sealed, "now": now})


def test_the_migration_encrypts_rows_stored_before_it(empty_database):
    engine = empty_database
    command.upgrade(alembic_config(engine), "0006_security_findings")
    now = datetime(2026, 1, 5, 9, 0) if engine.dialect.name == "sqlite" else datetime(
        2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    with engine.begin() as conn:
        plaintext_rows(conn, now)
    needles = needles_for("+15557654321", "ana.client@example.org",
                          "my therapist rushed me, Tuesday")
    assert scan_database(engine, needles).found  # the scan finds plaintext where there is some

    assert upgrade(engine, [TEST_SECRET_KEY]) == 5  # two clients, two events, one response

    scan = scan_database(engine, needles)
    assert scan.found == [], scan.found
    if engine.dialect.name == "sqlite":  # vacuumed: not even freed pages hold the plaintext
        folder = Path(engine.url.database).parent
        raw = b"".join(path.read_bytes() for path in folder.glob("old.db*")).lower()
        assert [needle for needle in needles if needle.lower().encode() in raw] == []
    vault = ClientVault(KeyRing([TEST_SECRET_KEY]))
    with engine.begin() as conn:
        ana = clients.find(conn, vault, "northside", "pat-1")
        assert clients.with_phone(conn, vault, "northside", "+15557654321") == ["pat-1"]
        event = events.load(conn, vault, "ev-1")
        ignored = events.load(conn, vault, "ev-2")
        answers = stored_responses.for_survey(conn, vault, "s-1")["answers"]
        contact_flags = dict(conn.execute(text("SELECT id, has_contact FROM webhook_events")).all())
    assert ana["phone"] == "+1 (555) 765-4321" and ana["email"] == "ana.client@example.org"
    assert ana["last_session_at"] is not None
    assert event.outcome.facts.contact.phone == "+15557654321"
    assert type(ignored.outcome).__name__ == "Ignored"
    assert answers["comment"] == "my therapist rushed me, Tuesday"
    assert {key: bool(value) for key, value in contact_flags.items()} == {"ev-1": True,
                                                                         "ev-2": False}
    with engine.begin() as conn:
        comment = conn.execute(text("SELECT comment FROM cds_feedback")).scalar()
        note = conn.execute(text("SELECT note FROM alert_actions")).scalar()
    assert vault.open(comment) == vault.open(note) == {"text": "call her on Tuesday"}
    with pytest.raises(ValueError):
        SecretBox(KeyRing([TEST_SECRET_KEY])).open(comment)  # no longer the practice key's

    command.downgrade(alembic_config(engine, [TEST_SECRET_KEY]), "0006_security_findings")
    with engine.begin() as conn:
        phone = conn.execute(text("SELECT phone FROM clients WHERE patient_id = 'pat-1'")).scalar()
        comment = conn.execute(text("SELECT comment FROM cds_feedback")).scalar()
    assert phone == "+1 (555) 765-4321"
    assert SecretBox(KeyRing([TEST_SECRET_KEY])).open(comment) == {"text": "call her on Tuesday"}


def test_an_empty_database_migrates_without_any_key(empty_database, monkeypatch):
    for name in ("ALLIANCE_SECRET_KEY", "ALLIANCE_SECRET_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALLIANCE_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    upgrade(empty_database)  # no rows to encrypt: the keys are never asked for


# --- files --------------------------------------------------------------------------------------

def test_the_embedded_database_and_queue_files_are_readable_by_the_service_user_only(
        tmp_path, settings_for):
    from service.bootstrap import bootstrap
    from service.runtime import declare_queues

    folder = tmp_path / "var"
    services = bootstrap(settings_for(f"sqlite:///{folder / 'alliance.db'}"))
    upgrade(services.engine)
    with services.engine.begin() as conn:  # a write, so the WAL and shared-memory files exist
        conn.execute(text("INSERT INTO audit_log (id, at, practice_id, actor, channel, action, "
                          "what) VALUES ('a', '2026-01-01', 'p', 'x', 'cli', 'read', 'y')"))
    declare_queues(services.settings)  # kombu creates its tables in the embedded queue's file
    files = {path.name: stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()
             if path.is_file()}
    assert {"alliance.db", "alliance.db-wal", "alliance.db-shm", "queue.db"} <= set(files)
    assert {name: mode for name, mode in files.items() if mode != 0o600} == {}
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    services.engine.dispose()


def test_a_database_file_created_world_readable_before_is_made_private(tmp_path):
    path = tmp_path / "alliance.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    (tmp_path / "alliance.db-wal").touch()
    (tmp_path / "alliance.db-wal").chmod(0o644)
    make_engine(f"sqlite:///{path}").dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "alliance.db-wal").stat().st_mode) == 0o600

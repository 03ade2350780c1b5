"""`alliance practice apply|list|show` and `alliance events list`, run as the command line does,
on a temporary SQLite database configured through the environment."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli import main
from service.config import Settings
from service.demo import session_completed, signed_event
from service.web import create_app
from support import DEMO_SECRET, TEST_SECRET_KEY, own_inbound_secrets, practice_document

SECRETS = {
    "webhook": DEMO_SECRET,
    "ehr token": "ehr-bearer-token-4f1c9a",
    "sms auth token": "twilio-auth-token-77e2b1",
    "smtp password": "smtp-password-93ad0c",
    "channel token": "channel-token-0123456789",
    "hub secret": "hub-secret-xyz",
}
PHONE = "+15551234567"


def full_document(**overrides) -> dict:
    document = practice_document(**overrides)
    if document["id"] != "northside":  # each practice its own inbound secrets (issue 12)
        document.update(own_inbound_secrets(document["id"]))
    document["ehr"]["auth"] = {"type": "bearer", "token": SECRETS["ehr token"]}
    document["delivery"]["sms"]["auth_token"] = SECRETS["sms auth token"]
    document["delivery"]["email"].update(username="surveys", password=SECRETS["smtp password"])
    return document


@pytest.fixture
def env(tmp_path) -> dict:
    return {
        "ALLIANCE_DATABASE_URL": f"sqlite:///{tmp_path / 'alliance.db'}",
        "ALLIANCE_BROKER_URL": "embedded",
        "ALLIANCE_SECRET_KEY": TEST_SECRET_KEY,
        "ALLIANCE_VAR_DIR": str(tmp_path / "var"),
        "ALLIANCE_LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def alliance(env):
    runner = CliRunner()

    def run(*args: str, input: str | None = None):
        return runner.invoke(main, list(args), env=env, input=input, catch_exceptions=False)

    assert run("db", "upgrade").exit_code == 0
    return run


@pytest.fixture
def applied(alliance, tmp_path):
    path = tmp_path / "northside.json"
    path.write_text(json.dumps(full_document()))
    result = alliance("practice", "apply", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "northside"
    return path


def stored_documents(env) -> list[tuple]:
    database = env["ALLIANCE_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as conn:
        return conn.execute("SELECT id, name, sealed_document, updated_at FROM practices ORDER BY id").fetchall()


def test_apply_prints_the_id_and_list_and_show_never_print_a_secret(alliance, applied):
    listed = alliance("practice", "list")
    shown = alliance("practice", "show", "northside")
    assert listed.exit_code == 0 and shown.exit_code == 0
    header, line = listed.stdout.strip().splitlines()
    assert header.split("\t")[0] == "id"
    assert line.split("\t") == ["northside", "Northside Counseling", "America/Chicago", "https://ehr.test/fhir",
                                "sms,email", "1", "channel_token+hub_secret"]
    document = json.loads(shown.stdout)
    assert document["webhook_secrets"] == ["<redacted>"]
    assert document["ehr"]["auth"] == {"type": "bearer", "token": "<redacted>"}
    assert document["delivery"]["sms"]["auth_token"] == "<redacted>"
    assert document["delivery"]["email"]["password"] == "<redacted>"
    assert document["fhir_notifications"] == {"channel_token": "<redacted>", "hub_secret": "<redacted>"}
    assert document["delivery"]["sms"]["from"] == "+15550001111"  # what is not secret stays readable
    for name, secret in SECRETS.items():
        assert secret not in listed.output + shown.output, name


SINK_SECRET = "whsec_" + "c2luay1zZWNyZXQtZm9yLXRoZS10ZXN0cy1vbmx5"


def test_list_shows_every_ehr_type(alliance, applied, tmp_path):
    # Before typed settings, one practice writing back by webhook made the list crash
    # (KeyError: 'base_url'), hiding every other practice too.
    webhook = full_document(id="eastside", name="Eastside Therapy",
                            ehr={"type": "webhook", "url": "https://ehr.east.example/alliance",
                                 "secret": SINK_SECRET})
    path = tmp_path / "eastside.json"
    path.write_text(json.dumps(webhook))
    assert alliance("practice", "apply", str(path)).exit_code == 0

    listed = alliance("practice", "list")
    assert listed.exit_code == 0, listed.output
    header, *lines = listed.stdout.strip().splitlines()
    ehr = {line.split("\t")[0]: line.split("\t")[header.split("\t").index("ehr")] for line in lines}
    assert ehr == {"eastside": "webhook https://ehr.east.example/alliance",
                   "northside": "https://ehr.test/fhir"}
    assert SINK_SECRET not in listed.output


def test_secrets_are_encrypted_at_rest(applied, env):
    [(_id, _name, sealed, _updated)] = stored_documents(env)
    database = env["ALLIANCE_DATABASE_URL"].removeprefix("sqlite:///")
    raw_files = b"".join(Path(database + suffix).read_bytes()
                         for suffix in ("", "-wal") if Path(database + suffix).exists())
    for name, secret in SECRETS.items():
        assert secret not in sealed, name
        assert secret.encode() not in raw_files, name


def test_apply_again_updates_the_practice(alliance, applied, env):
    applied.write_text(json.dumps(full_document(name="Northside Counseling & Wellness")))
    assert alliance("practice", "apply", str(applied)).exit_code == 0
    assert [row[1] for row in stored_documents(env)] == ["Northside Counseling & Wellness"]


BAD_FIELDS = {
    # field path the message must name -> how the document gets it wrong
    "timezone": lambda d: d.update(timezone="Mars/Olympus_Mons"),
    "webhook_secrets": lambda d: d.update(webhook_secrets=["not-a-whsec-secret"]),
    "ehr.base_url": lambda d: d["ehr"].update(base_url="ftp://ehr.test"),
    "ehr.auth.token": lambda d: d["ehr"]["auth"].pop("token"),
    "delivery.sms.from": lambda d: d["delivery"]["sms"].update({"from": "555-0001"}),
    "delivery.email.smtp_port": lambda d: d["delivery"]["email"].update(smtp_port="25"),
    "delivery.channels.0": lambda d: d["delivery"].update(channels=["pigeon", "email"]),
    "survey.expire_after_hours": lambda d: d["survey"].update(expire_after_hours=-1),
    "fhir_notifications.channel_token": lambda d: d["fhir_notifications"].update(channel_token="short"),
    "colour": lambda d: d.update(colour="blue"),
}


def test_a_bad_document_is_refused_naming_each_wrong_field_and_nothing_changes(alliance, applied, env, tmp_path):
    before = stored_documents(env)
    document = full_document(name="Renamed, which must not happen")
    for spoil in BAD_FIELDS.values():
        spoil(document)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    result = alliance("practice", "apply", str(path))
    assert result.exit_code == 2
    assert "nothing was changed" in result.stderr
    named = {line.strip()[2:].split(":")[0] for line in result.stderr.splitlines() if line.strip().startswith("- ")}
    assert named == set(BAD_FIELDS)
    assert result.stdout == ""
    assert stored_documents(env) == before


@pytest.mark.parametrize("content, words", [
    ("{not json", "not JSON"),
    ("[]", "(document): must be a JSON object"),
])
def test_a_document_that_is_not_a_json_object_is_refused(alliance, env, tmp_path, content, words):
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = alliance("practice", "apply", str(path))
    assert result.exit_code == 2 and words in result.stderr
    assert stored_documents(env) == []


def test_an_unknown_instrument_is_refused(alliance, env, tmp_path):
    document = full_document()
    document["survey"]["instrument"] = "no-such-instrument"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    result = alliance("practice", "apply", str(path))
    assert result.exit_code == 2 and "survey.instrument" in result.stderr
    assert stored_documents(env) == []


def test_apply_reads_standard_input(alliance, env):
    result = alliance("practice", "apply", "-", input=json.dumps(full_document(id="eastside")))
    assert result.exit_code == 0 and result.stdout.strip() == "eastside"


def test_show_of_an_unknown_practice_fails(alliance):
    result = alliance("practice", "show", "nowhere")
    assert result.exit_code != 0 and "nowhere" in result.stderr


# --- the event log ------------------------------------------------------------------------


def deliver(env, event: dict, msg_id: str) -> int:
    app = create_app(Settings.from_env(env))
    body, headers = signed_event(DEMO_SECRET, event, msg_id=msg_id, when=datetime.now(timezone.utc))
    return app.test_client().post("/webhooks/northside/events", data=body, headers=headers).status_code


def test_events_list_shows_what_arrived_and_why_without_personal_data(alliance, applied, env, tmp_path):
    completed = session_completed("enc-1", "pat-private-17", phone=PHONE, email="client@example.org")
    no_show = session_completed("enc-2", "pat-private-17", phone=PHONE)
    no_show["data"]["status"] = "no-show"
    assert deliver(env, completed, "msg_a") == 202
    assert deliver(env, no_show, "msg_b") == 202
    assert deliver(env, completed, "msg_c") == 200  # the same session again
    other = tmp_path / "southside.json"
    other.write_text(json.dumps(full_document(id="southside")))
    alliance("practice", "apply", str(other))

    listed = alliance("events", "list")
    assert listed.exit_code == 0
    header, *lines = listed.stdout.strip().splitlines()
    columns = header.split("\t")
    rows = {row["delivery_id"]: row for row in (dict(zip(columns, line.split("\t"), strict=True)) for line in lines)}
    assert set(rows) == {"msg_a", "msg_b", "msg_c"}
    assert rows["msg_a"]["outcome"] == "accepted (waiting for the worker)"
    assert rows["msg_b"]["outcome"] == "ignored"
    assert rows["msg_b"]["reason"] == "session status no-show is not a completed session"
    assert rows["msg_c"]["outcome"] == "duplicate-session"
    assert {row["source"] for row in rows.values()} == {"native"}  # the door it came through
    assert {row["session_id"] for row in rows.values()} == {"enc-1", "enc-2"}
    for private in (PHONE, "5551234567", "client@example.org", "pat-private-17"):
        assert private not in listed.output

    assert alliance("events", "list", "--practice", "southside").stdout.strip().splitlines() == [header]
    assert len(alliance("events", "list", "--practice", "northside", "--limit", "2").stdout.strip().splitlines()) == 3

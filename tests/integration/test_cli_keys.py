"""`alliance keys rotate`: after a new key is put first in ALLIANCE_SECRET_KEYS, everything
stored is re-encrypted under it, and the old key can go."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import text

from service.cli import main
from support import TEST_SECRET_KEY, practice_document

NEW = "Mh7Cz1RtY4bKq8WnP2fL6sDx9JgV3aUe0TiNo5XkE-Qr"


def test_rotation_re_encrypts_every_practice_under_the_newest_key(tmp_path):
    base = {"ALLIANCE_DATABASE_URL": f"sqlite:///{tmp_path / 'alliance.db'}",
            "ALLIANCE_VAR_DIR": str(tmp_path / "var"), "ALLIANCE_LOG_LEVEL": "WARNING"}
    runner = CliRunner()

    def run(keys: dict, *args: str):
        return runner.invoke(main, list(args), env={**base, **keys})

    old_only = {"ALLIANCE_SECRET_KEY": TEST_SECRET_KEY}
    document = tmp_path / "northside.json"
    document.write_text(json.dumps(practice_document()))
    assert run(old_only, "db", "upgrade").exit_code == 0
    assert run(old_only, "practice", "apply", str(document)).exit_code == 0

    new_only = {"ALLIANCE_SECRET_KEYS": NEW}
    refused = run(new_only, "practice", "show", "northside")
    assert refused.exit_code != 0 and "cannot be decrypted" in str(refused.exception)

    both = {"ALLIANCE_SECRET_KEYS": f"{NEW},{TEST_SECRET_KEY}"}
    rotated = run(both, "keys", "rotate")
    assert rotated.exit_code == 0, rotated.output
    assert "practices.sealed_document: 1 re-encrypted" in rotated.output
    shown = run(new_only, "practice", "show", "northside")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["id"] == "northside"


def test_a_placeholder_key_refuses_every_command_with_the_reason(tmp_path):
    env = {"ALLIANCE_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
           "ALLIANCE_SECRET_KEY": "change-me-to-64-random-characters"}
    refused = CliRunner().invoke(main, ["db", "upgrade"], env=env)
    assert refused.exit_code != 0
    assert "ALLIANCE_SECRET_KEY is refused: it is a placeholder" in refused.output


def test_rotation_re_encrypts_clients_data_and_re_makes_the_phone_hashes(
        database, settings_for, services, practice, channels, run_due, clock):
    from integrations.delivery.port import Contact
    from service.bootstrap import bootstrap
    from service.persistence.queries import clients, responses
    from support import answer_one_survey

    answers = {"bond": 9, "goals": 9, "approach": 9, "overall": 9, "comment": "fine, thanks"}
    answer_one_survey(services, channels, run_due, answers, patient_id="pat-1")
    run_due()
    with services.engine.begin() as conn:  # pat-2 texted STOP: only the phone's hash is kept
        clients.count_session(conn, services.vault, "northside", "pat-2",
                              Contact(phone="+15550000002"), clock())
        clients.opt_out(conn, "northside", "pat-2", clock(), clients.BY_SMS)
        survey_id = conn.execute(text("SELECT id FROM surveys")).scalar()
    url, _engine = database
    env = {"ALLIANCE_DATABASE_URL": url, "ALLIANCE_SECRET_KEYS": f"{NEW},{TEST_SECRET_KEY}",
           "ALLIANCE_VAR_DIR": str(settings_for(url).var_dir), "ALLIANCE_LOG_LEVEL": "WARNING"}

    rotated = CliRunner().invoke(main, ["keys", "rotate"], env=env)

    assert rotated.exit_code == 0, rotated.output
    for line in ("clients.sealed_phone: 1 re-encrypted", "responses.sealed_answers: 1",
                 "webhook_events.sealed_payload: 1", "clients.phone_hash: 1 re-hashed",
                 "clients.phone_hash: 1 kept under the key that made them"):
        assert line in rotated.output
    both = bootstrap(settings_for(url, ALLIANCE_SECRET_KEY="",
                                  ALLIANCE_SECRET_KEYS=f"{NEW},{TEST_SECRET_KEY}"), engine=_engine)
    new_only = bootstrap(settings_for(url, ALLIANCE_SECRET_KEY="", ALLIANCE_SECRET_KEYS=NEW),
                         engine=_engine)
    with _engine.begin() as conn:
        assert clients.find(conn, new_only.vault, "northside", "pat-1")["phone"] == "+15551234567"
        assert responses.for_survey(conn, new_only.vault, survey_id)["answers"] == answers
        assert clients.with_phone(conn, new_only.vault, "northside", "+15551234567") == ["pat-1"]
        assert clients.with_phone(conn, new_only.vault, "northside", "+15550000002") == []
        # While the old key is still listed, a lookup re-makes the hash under the new one.
        assert clients.with_phone(conn, both.vault, "northside", "+15550000002") == ["pat-2"]
        assert clients.with_phone(conn, new_only.vault, "northside", "+15550000002") == ["pat-2"]

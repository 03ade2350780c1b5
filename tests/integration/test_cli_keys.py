"""`alliance keys rotate`: after a new key is put first in ALLIANCE_SECRET_KEYS, everything
stored is re-encrypted under it, and the old key can go."""

from __future__ import annotations

import json

from click.testing import CliRunner

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

"""A Healthie practice on the command line: applied, shown and listed without its secrets,
stored encrypted, and its webhooks in `alliance events list` as source healthie."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from healthie_support import (
    HEALTHIE_KEY,
    HEALTHIE_SECRET,
    healthie_event,
    healthie_practice,
    signed,
)

from service.cli import main
from service.config import Settings
from service.web import create_app


@pytest.fixture
def env(tmp_path) -> dict:
    return {
        "ALLIANCE_DATABASE_URL": f"sqlite:///{tmp_path / 'alliance.db'}",
        "ALLIANCE_BROKER_URL": "embedded",
        "ALLIANCE_SECRET_KEY": "cli-test-secret-key-" + "h" * 32,
        "ALLIANCE_VAR_DIR": str(tmp_path / "var"),
        "ALLIANCE_LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def alliance(env):
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    assert run("db", "upgrade").exit_code == 0
    return run


@pytest.fixture
def applied(alliance, tmp_path):
    path = tmp_path / "northside.json"
    path.write_text(json.dumps(healthie_practice("https://api.gethealthie.com/graphql")))
    result = alliance("practice", "apply", str(path))
    assert result.exit_code == 0, result.output
    return path


def test_show_and_list_redact_the_healthie_secrets_and_the_file_does_not_hold_them(
    alliance, applied, env
):
    shown = json.loads(alliance("practice", "show", "northside").stdout)
    assert shown["healthie"]["api_key"] == shown["healthie"]["webhook_secret"] == "<redacted>"
    assert shown["healthie"]["api_url"] == "https://api.gethealthie.com/graphql"
    assert shown["ehr"] == {"type": "healthie", "auth": {"type": "none"}}
    listed = alliance("practice", "list").stdout
    assert "https://api.gethealthie.com/graphql" in listed
    database = Path(env["ALLIANCE_DATABASE_URL"].removeprefix("sqlite:///"))
    raw = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    for secret in (HEALTHIE_KEY, HEALTHIE_SECRET):
        assert secret not in listed and secret.encode() not in raw


@pytest.mark.parametrize(
    "change, line",
    [
        ({"form_id": None}, "healthie.form_id: required because ehr.type is healthie"),
        ({"form_fields": {"total": "302"}}, "healthie.form_fields: needs a summary question"),
        (
            {"form_fields": {"summary": "301", "Bogus Field": "9"}},
            "healthie.form_fields: unknown value(s) 'Bogus Field'",
        ),
        ({"api_url": "ftp://x"}, "healthie.api_url"),
        ({"webhook_secret": "short"}, "healthie.webhook_secret"),
    ],
)
def test_a_bad_healthie_section_is_refused_naming_the_field(alliance, tmp_path, change, line):
    document = healthie_practice("https://api.gethealthie.com/graphql")
    document["healthie"] = {
        k: v for k, v in {**document["healthie"], **change}.items() if v is not None
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    refused = alliance("practice", "apply", str(path))
    assert refused.exit_code == 2 and line in refused.output


def test_ehr_type_healthie_needs_the_section(alliance, tmp_path):
    document = healthie_practice("https://api.gethealthie.com/graphql")
    del document["healthie"]
    document["webhook_secrets"] = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    refused = alliance("practice", "apply", str(path))
    assert (
        refused.exit_code == 2
        and "healthie: required because ehr.type is healthie" in refused.output
    )


def test_events_list_shows_the_healthie_door(alliance, applied, env):
    app = create_app(settings=Settings.from_env(env))
    body, headers = signed(healthie_event("4321"))
    assert (
        app.test_client()
        .post("/webhooks/northside/healthie", data=body, headers=headers)
        .status_code
        == 202
    )
    header, line = alliance("events", "list").stdout.strip().splitlines()
    row = dict(zip(header.split("\t"), line.split("\t"), strict=True))
    assert row["source"] == "healthie" and row["event_type"] == "appointment.updated"
    assert row["session_id"] == "4321" and row["outcome"] == "accepted (waiting for the worker)"

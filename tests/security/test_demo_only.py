"""Finding 6 of the security review: the `log` channel writes survey links to the logs, and the
demo FHIR store (with the demo EHR's pages) takes unauthenticated writes. Both are for the local
demo only: ALLIANCE_DEMO=1 on SQLite, the demo pages on a loopback host.

Where it is checked: `alliance practice apply` refuses a document listing `log` outside the
demo, and the channel itself refuses every message outside it (a document stored earlier);
the app refuses to start with ALLIANCE_DEMO=1 on another database, outside `alliance serve`,
or on a host that is not loopback."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import structlog
from click.testing import CliRunner

from integrations.delivery.errors import DeliveryPermanentError
from integrations.delivery.port import SurveyMessage
from service.bootstrap import _real_channels
from service.cli import main
from service.config import ConfigError, Settings
from service.web import create_app
from support import POSTGRES_ADMIN_URL, ROOT, TEST_SECRET_KEY

LINK = "https://surveys.example/s/secret-link-token"


def settings(tmp_path, **env) -> Settings:
    return Settings.from_env({"ALLIANCE_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}",
                              "ALLIANCE_SECRET_KEY": TEST_SECRET_KEY,
                              "ALLIANCE_VAR_DIR": str(tmp_path / "var"), **env})


def apply_demo_practice(tmp_path, **env):
    env = {"ALLIANCE_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}",
           "ALLIANCE_SECRET_KEY": TEST_SECRET_KEY, "ALLIANCE_VAR_DIR": str(tmp_path / "var"),
           "ALLIANCE_LOG_LEVEL": "WARNING", **env}
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    document = (ROOT / "deploy" / "demo-practice.json").read_text()
    return runner.invoke(main, ["practice", "apply", "-"], env=env, input=document)


def test_the_demo_practice_applies_in_the_demo(tmp_path):
    result = apply_demo_practice(tmp_path, ALLIANCE_DEMO="1")
    assert result.exit_code == 0, result.output


def test_the_log_channel_is_refused_at_apply_outside_the_demo(tmp_path):
    result = apply_demo_practice(tmp_path)
    assert result.exit_code == 2
    assert "delivery.channels: log writes survey links to the service log" in result.stderr


@pytest.fixture
def info_logs():
    # Other tests' command lines may have left the level at WARNING; the link is logged at INFO.
    from service.logging import configure_logging

    configure_logging("json", "INFO")
    with structlog.testing.capture_logs() as logs:
        yield logs


def message() -> SurveyMessage:
    return SurveyMessage(kind="invitation", to="log", link=LINK, practice_name="Demo",
                         locale="en", expires_at=dt.datetime(2026, 11, 29, tzinfo=dt.timezone.utc),
                         unsubscribe_link=None, survey_id="srv-1")


@pytest.mark.parametrize("env", [{}, {"ALLIANCE_DEMO": "1",
                                      "ALLIANCE_DATABASE_URL": POSTGRES_ADMIN_URL}])
def test_a_stored_log_channel_writes_no_link_outside_the_demo(tmp_path, env, info_logs):
    channel = _real_channels(settings(tmp_path, **env))("log", None)
    with pytest.raises(DeliveryPermanentError) as refused:
        channel.send(message())
    assert refused.value.reason == "misconfigured"
    assert LINK not in json.dumps(info_logs)


def test_in_the_demo_the_log_channel_writes_the_link(tmp_path, info_logs):
    channel = _real_channels(settings(tmp_path, ALLIANCE_DEMO="1"))("log", None)
    channel.send(message())
    assert [entry["link"] for entry in info_logs] == [LINK]


@pytest.mark.parametrize(("env", "host", "words"), [
    ({}, None, "outside `alliance serve`"),
    ({}, "0.0.0.0", "on 0.0.0.0"),
    ({}, "10.0.0.5", "on 10.0.0.5"),
    ({"ALLIANCE_DATABASE_URL": POSTGRES_ADMIN_URL}, "127.0.0.1", "other than SQLite"),
])
def test_the_demo_pages_refuse_to_start_where_others_could_reach_them(tmp_path, env, host, words):
    with pytest.raises(ConfigError, match=words):
        create_app(settings(tmp_path, ALLIANCE_DEMO="1", **env), host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_the_demo_pages_are_served_on_loopback(tmp_path, host):
    app = create_app(settings(tmp_path, ALLIANCE_DEMO="1"), host=host)
    assert app.test_client().get("/demo/fhir/metadata").status_code == 200


def test_without_the_demo_flag_there_are_no_demo_pages(tmp_path):
    app = create_app(settings(tmp_path), host="127.0.0.1")
    assert app.test_client().get("/demo/fhir/metadata").status_code == 404


def test_serve_refuses_the_demo_on_every_interface(tmp_path):
    env = {"ALLIANCE_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}", "ALLIANCE_DEMO": "1",
           "ALLIANCE_SECRET_KEY": TEST_SECRET_KEY, "ALLIANCE_VAR_DIR": str(tmp_path / "var")}
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--port", "0"], env=env)
    assert result.exit_code != 0 and "ALLIANCE_DEMO=1 is refused on 0.0.0.0" in result.output

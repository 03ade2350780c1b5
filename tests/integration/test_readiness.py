"""/readyz tells the truth about the embedded queue and the relay: a queue that cannot be used
turns it to 503, naming the broker and what to do, instead of webhooks piling up unsent."""

from __future__ import annotations

from sqlalchemy import select

from service.bootstrap import bootstrap
from service.messaging.broker import connect
from service.messaging.relay import Relay, RelayHealth
from service.persistence import outbox
from service.persistence.tables import outbox as outbox_table
from service.web import create_app


def test_ready_on_a_working_embedded_queue(services):
    answer = create_app(services=services).test_client().get("/readyz")
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ready", "checks": {"database": True, "broker": True}}


def test_a_broken_embedded_queue_turns_readiness_to_503_naming_it(services):
    queue = services.settings.embedded_queue_file
    queue.write_bytes(b"this is not a SQLite database, it is garbage " * 100)
    answer = create_app(services=services).test_client().get("/readyz")
    assert answer.status_code == 503
    body = answer.get_json()
    assert body["checks"] == {"database": True, "broker": False}
    assert str(queue) in body["problems"]["broker"]
    assert "deleting the file is safe" in body["problems"]["broker"]


def test_a_relay_that_cannot_publish_makes_the_process_not_ready_until_it_can(
        services, tmp_path, caplog):
    with services.engine.begin() as conn:
        outbox.enqueue(conn, "survey.send", {"survey_id": "s1"}, now=services.clock())
    health = services.relay_health = RelayHealth()
    broken_queue = tmp_path / "no-such-folder" / "queue.db"
    relay = Relay(services.engine, connect(f"sqla+sqlite:///{broken_queue}"), services.clock,
                  redeliver_after=120, health=health)
    client = create_app(services=services).test_client()
    try:
        relay.publish_due()
    except Exception:
        pass
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert f"the embedded queue {broken_queue}" in answer.get_json()["problems"]["broker"]
    with services.engine.begin() as conn:  # nothing lost: the job is pending again
        assert conn.execute(select(outbox_table.c.status)).scalar() == "pending"
    relay.connection = connect(services.settings.kombu_url)
    assert relay.publish_due() == 1
    assert client.get("/readyz").status_code == 200


def test_bootstrap_makes_the_folders_it_writes_to(settings_for, tmp_path):
    var_dir = tmp_path / "deep" / "var"
    settings = settings_for(f"sqlite:///{tmp_path / 'db' / 'alliance.db'}",
                            ALLIANCE_VAR_DIR=str(var_dir),
                            PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"))
    bootstrap(settings)
    assert var_dir.is_dir() and (tmp_path / "metrics").is_dir()
    assert var_dir.stat().st_mode & 0o777 == 0o700

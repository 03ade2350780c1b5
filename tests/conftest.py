"""Shared fixtures: settings on a temporary folder, both database backends, a controllable
clock, and fakes of our own ports (EHR gateway, delivery channels)."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text

from service.bootstrap import bootstrap
from service.config import Settings
from service.persistence.db import make_engine
from service.persistence.migrate import upgrade
from support import FakeClock, practice_document

POSTGRES_ADMIN_URL = os.environ.get("ALLIANCE_TEST_POSTGRES_URL",
                                    "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("ALLIANCE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
REQUIRE_SERVICES = os.environ.get("ALLIANCE_TEST_REQUIRE_SERVICES") == "1"


def _service_available(kind: str) -> bool:
    try:
        if kind == "postgres":
            with create_engine(POSTGRES_ADMIN_URL).connect() as conn:
                conn.execute(text("SELECT 1"))
        else:
            from kombu import Connection

            with Connection(AMQP_URL, connect_timeout=3) as connection:
                connection.ensure_connection(max_retries=1)
        return True
    except Exception:
        return False


def require(kind: str) -> None:
    """Skip when a server is absent on a developer machine; fail in CI, where it must be up."""
    if not _service_available(kind):
        if REQUIRE_SERVICES:
            pytest.fail(f"{kind} is required (ALLIANCE_TEST_REQUIRE_SERVICES=1) but not reachable")
        pytest.skip(f"{kind} not reachable")


@pytest.fixture(scope="session")
def postgres_database():
    """A fresh, migrated PostgreSQL database for the whole run, dropped at the end."""
    require("postgres")
    name = f"alliance_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    upgrade(engine)
    yield url, engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate(engine) -> None:
    from service.persistence.tables import metadata

    with engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} CASCADE"))


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, tmp_path):
    """(url, engine) of an empty, migrated database on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'alliance.db'}"
        engine = make_engine(url)
        upgrade(engine)
        yield url, engine
        engine.dispose()
    else:
        url, engine = request.getfixturevalue("postgres_database")
        _truncate(engine)
        yield url, engine


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def settings_for(tmp_path):
    def make(database_url: str, broker_url: str = "embedded", **overrides) -> Settings:
        env = {
            "ALLIANCE_DATABASE_URL": database_url,
            "ALLIANCE_BROKER_URL": broker_url,
            "ALLIANCE_SECRET_KEY": "test-secret-key-" + "x" * 40,
            "ALLIANCE_PUBLIC_URL": "https://surveys.test",
            "ALLIANCE_VAR_DIR": str(tmp_path / "var"),
        }
        env.update(overrides)
        return Settings.from_env(env)

    return make


@pytest.fixture
def fake_ehr(clock):
    from integrations.ehr.fake import InMemoryEhr

    return InMemoryEhr(clock)


@pytest.fixture
def channels():
    """Fake channels by name; tests look at `.sent` or make them fail."""
    from integrations.delivery.fake import FakeChannel

    return {name: FakeChannel(name) for name in ("sms", "email", "log")}


@pytest.fixture
def services(database, settings_for, clock, fake_ehr, channels):
    """The service wired on a real database with fakes of our EHR and channel ports."""
    url, engine = database
    return bootstrap(settings_for(url), engine=engine, clock=clock,
                     ehr_for=lambda _config: fake_ehr,
                     channel_for=lambda name, _config: channels[name])


@pytest.fixture
def practice(services):
    """The northside practice, stored."""
    from service import practices

    document = practices.validate_document(practice_document())
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=services.clock())
    return document


@pytest.fixture
def run_due(services):
    """Run every job that is due now, the way the relay and a worker would, without a broker."""
    from service.handlers.registry import JOB_HANDLERS
    from service.handlers.runner import JobRunner
    from service.persistence import outbox

    runner = JobRunner(services, JOB_HANDLERS)

    def run(max_rounds: int = 50) -> list[tuple[str, str]]:
        outcomes = []
        for _ in range(max_rounds):
            with services.engine.begin() as conn:
                jobs = outbox.claim_due(conn, now=services.clock(),
                                        redeliver_after=services.settings.redeliver_after)
            if not jobs:
                return outcomes
            outcomes += [(job.kind, runner(job.id)) for job in jobs]
        raise AssertionError("jobs kept falling due")

    return run

"""Shared fixtures: settings on a temporary folder, both database backends, a controllable
clock, and fakes of our own ports (EHR gateway, delivery channels)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text

import support
from service.bootstrap import bootstrap
from service.config import Settings
from service.persistence.db import make_engine
from service.persistence.migrate import upgrade
from support import (
    POSTGRES_ADMIN_URL,
    TEST_SECRET_KEY,
    FakeClock,
    practice_document,
    require,
    truncate_all,
)


def pytest_configure(config):
    # Before test modules are imported: they read support.AMQP_URL as they load.
    config._alliance_vhost = support.isolate_rabbitmq() if support._service_available("rabbitmq") else None


def pytest_unconfigure(config):
    vhost = getattr(config, "_alliance_vhost", None)
    if vhost:
        support.drop_rabbitmq_vhost(vhost)


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
        truncate_all(engine)
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
            "ALLIANCE_SECRET_KEY": TEST_SECRET_KEY,
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
def alliance_cli(database, settings_for):
    """The command line on the same database as `services`: alliance_cli(*args, **env), the
    environment's variables overridable per call; click's Result back."""
    from click.testing import CliRunner

    from service.cli import main

    url, _engine = database
    base = {"ALLIANCE_DATABASE_URL": url, "ALLIANCE_BROKER_URL": "embedded",
            "ALLIANCE_SECRET_KEY": TEST_SECRET_KEY, "ALLIANCE_LOG_LEVEL": "WARNING",
            "ALLIANCE_VAR_DIR": str(settings_for(url).var_dir)}
    runner = CliRunner()

    def run(*args: str, **env: str):
        return runner.invoke(main, list(args), env={**base, **env}, catch_exceptions=False)

    return run


@pytest.fixture
def run_due(services):
    """Run every job that is due now, the way the relay and a worker would, without a broker."""
    return support.due_jobs_runner(services)

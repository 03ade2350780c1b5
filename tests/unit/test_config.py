"""Settings from the environment: key rules (weak and placeholder keys refuse to start), key
rotation lists, and where the embedded service keeps its files."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import ConfigError, Settings
from support import TEST_SECRET_KEY

OLD = "Gk2Wq9LxT4vNc7Rm1BsH5pYd8JfZ3aEu6KtQ0oXiV-Lw"
POSTGRES = "postgresql+psycopg://alliance@db/alliance"


def settings(**env) -> Settings:
    return Settings.from_env({"ALLIANCE_DATABASE_URL": POSTGRES, **env})


@pytest.mark.parametrize("key, reason", [
    ("a", "fewer than 32"),
    ("change-me-to-64-random-characters", "placeholder"),  # deploy/env.example's old value
    ("CHANGE-ME-" + "q7" * 20, "placeholder"),
    ("a" * 64, "not random enough"),
    ("test-secret-key-" + "x" * 40, "not random enough"),
])
def test_a_weak_or_placeholder_key_refuses_to_start_and_says_why(key, reason):
    with pytest.raises(ConfigError, match=reason) as refused:
        settings(ALLIANCE_SECRET_KEY=key)
    assert "ALLIANCE_SECRET_KEY" in str(refused.value)
    assert "secrets.token_urlsafe" in str(refused.value)  # and how to make a good one
    assert len(key) < 2 or key not in str(refused.value)  # the key itself is never echoed


def test_a_missing_key_outside_sqlite_refuses_to_start():
    with pytest.raises(ConfigError, match="ALLIANCE_SECRET_KEY is required"):
        settings()


def test_keys_lists_the_newest_first_and_every_key_is_checked():
    rotated = settings(ALLIANCE_SECRET_KEYS=f"{TEST_SECRET_KEY}, {OLD}")
    assert rotated.secret_keys == (TEST_SECRET_KEY, OLD)
    assert rotated.secret_key == TEST_SECRET_KEY
    with pytest.raises(ConfigError, match="key 2 of ALLIANCE_SECRET_KEYS"):
        settings(ALLIANCE_SECRET_KEYS=f"{TEST_SECRET_KEY},short")
    with pytest.raises(ConfigError, match="twice"):
        settings(ALLIANCE_SECRET_KEYS=f"{OLD},{OLD}")


def test_a_single_key_that_is_not_in_the_list_is_refused():
    with pytest.raises(ConfigError, match="not one of ALLIANCE_SECRET_KEYS"):
        settings(ALLIANCE_SECRET_KEY=TEST_SECRET_KEY, ALLIANCE_SECRET_KEYS=OLD)
    both = settings(ALLIANCE_SECRET_KEY=OLD, ALLIANCE_SECRET_KEYS=f"{TEST_SECRET_KEY},{OLD}")
    assert both.secret_keys == (TEST_SECRET_KEY, OLD)


def test_the_embedded_default_generates_a_strong_key_once(tmp_path):
    env = {"ALLIANCE_DATABASE_URL": f"sqlite:///{tmp_path / 'db' / 'alliance.db'}"}
    first, second = Settings.from_env(env), Settings.from_env(env)
    assert first.secret_key == second.secret_key
    assert (tmp_path / "db" / "secret_key").stat().st_mode & 0o777 == 0o600


def test_the_embedded_files_live_beside_a_sqlite_database_unless_told_otherwise(tmp_path):
    database = tmp_path / "srv" / "alliance" / "alliance.db"
    beside = Settings.from_env({"ALLIANCE_DATABASE_URL": f"sqlite:///{database}"})
    assert beside.var_dir == database.parent
    assert beside.embedded_queue_file == database.parent / "queue.db"
    told = Settings.from_env({"ALLIANCE_DATABASE_URL": f"sqlite:///{database}",
                              "ALLIANCE_VAR_DIR": str(tmp_path / "elsewhere")})
    assert told.var_dir == tmp_path / "elsewhere"
    assert settings(ALLIANCE_SECRET_KEY=TEST_SECRET_KEY).var_dir == Path("var")


@pytest.mark.parametrize("value", ["0", "-3", "soon", "inf"])
def test_the_job_retention_must_be_a_positive_number_of_days(value):
    env = {"ALLIANCE_SECRET_KEY": "Qm3v9TzKx7LpW2dHr8YfN4cJs6BgUa1E-tRkVo5XiZy0",
           "ALLIANCE_JOB_RETENTION_DAYS": value}
    with pytest.raises(ConfigError, match="ALLIANCE_JOB_RETENTION_DAYS"):
        Settings.from_env(env)
    assert Settings.from_env({**env, "ALLIANCE_JOB_RETENTION_DAYS": "2.5"}).job_retention_days == 2.5

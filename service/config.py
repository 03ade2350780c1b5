"""Settings read from the environment: the only module that reads os.environ."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

DEFAULT_DATABASE_URL = "sqlite:///var/alliance.db"
EMBEDDED_BROKER = "embedded"


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    database_url: str
    broker_url: str
    secret_key: str
    public_url: str
    var_dir: Path
    log_format: str = "json"
    log_level: str = "INFO"
    demo: bool = False
    relay_interval: float = 0.5
    redeliver_after: float = 120.0
    max_attempts: int = 12
    max_job_age_hours: float = 48.0
    instruments_dir: Path | None = None
    prometheus_multiproc_dir: str | None = None

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url == EMBEDDED_BROKER

    @property
    def kombu_url(self) -> str:
        """The kombu URL; the embedded broker is kombu's SQLAlchemy transport on a file."""
        if self.embedded_broker:
            return f"sqla+sqlite:///{(self.var_dir / 'queue.db').resolve()}"
        return self.broker_url

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Build settings from ALLIANCE_* variables (see deploy/env.example)."""
        env = os.environ if environ is None else environ
        var_dir = Path(env.get("ALLIANCE_VAR_DIR", "var"))
        database_url = env.get("ALLIANCE_DATABASE_URL", DEFAULT_DATABASE_URL)
        broker_url = env.get("ALLIANCE_BROKER_URL", EMBEDDED_BROKER)
        secret_key = env.get("ALLIANCE_SECRET_KEY") or _embedded_secret(database_url, var_dir)
        instruments = env.get("ALLIANCE_INSTRUMENTS_DIR")
        return cls(
            database_url=database_url,
            broker_url=broker_url,
            secret_key=secret_key,
            public_url=env.get("ALLIANCE_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
            var_dir=var_dir,
            log_format=env.get("ALLIANCE_LOG_FORMAT", "json"),
            log_level=env.get("ALLIANCE_LOG_LEVEL", "INFO").upper(),
            demo=env.get("ALLIANCE_DEMO", "") in ("1", "true", "yes"),
            relay_interval=_number(env, "ALLIANCE_RELAY_INTERVAL", 0.5),
            redeliver_after=_number(env, "ALLIANCE_REDELIVER_AFTER", 120.0),
            max_attempts=int(_number(env, "ALLIANCE_MAX_ATTEMPTS", 12)),
            max_job_age_hours=_number(env, "ALLIANCE_MAX_JOB_AGE_HOURS", 48.0),
            instruments_dir=Path(instruments) if instruments else var_dir / "instruments",
            prometheus_multiproc_dir=env.get("PROMETHEUS_MULTIPROC_DIR") or None,
        )


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def _embedded_secret(database_url: str, var_dir: Path) -> str:
    """Generate and keep a key under var/ for the embedded default; refuse in production."""
    if not database_url.startswith("sqlite"):
        raise ConfigError(
            "ALLIANCE_SECRET_KEY is required when ALLIANCE_DATABASE_URL is not SQLite "
            "(it signs survey links and encrypts stored secrets)"
        )
    path = var_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting at once must not end up with different keys.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key

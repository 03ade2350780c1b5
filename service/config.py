"""Settings read from the environment: the only module that reads os.environ."""

from __future__ import annotations

import math
import os
import secrets
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

DEFAULT_DATABASE_URL = "sqlite:///var/alliance.db"
EMBEDDED_BROKER = "embedded"
# A key must be long and random: it signs survey links and encrypts every stored secret.
MIN_KEY_LENGTH = 32
# Estimated as length × the entropy of the key's own characters: 32 random hex digits give ~115.
MIN_KEY_BITS = 100
PLACEHOLDER_WORDS = ("change-me", "changeme", "change_me", "replace-me", "replace_me",
                     "placeholder", "example", "insecure", "dummy", "your-secret")
KEY_HINT = "generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    database_url: str
    broker_url: str
    secret_keys: tuple[str, ...]  # newest first; the newest signs and encrypts
    public_url: str
    var_dir: Path
    log_format: str = "json"
    log_level: str = "INFO"
    demo: bool = False
    relay_interval: float = 0.5
    redeliver_after: float = 120.0
    max_attempts: int = 12
    max_job_age_hours: float = 48.0
    job_retention_days: float = 14.0  # finished jobs are deleted after this long
    instruments_dir: Path | None = None
    prometheus_multiproc_dir: str | None = None
    rabbitmq_queue_type: str = "classic"

    @property
    def secret_key(self) -> str:
        """The newest key: what signs and encrypts from now on."""
        return self.secret_keys[0]

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url == EMBEDDED_BROKER

    @property
    def embedded_queue_file(self) -> Path:
        return self.var_dir / "queue.db"

    @property
    def kombu_url(self) -> str:
        """The kombu URL; the embedded broker is kombu's SQLAlchemy transport on a file."""
        if self.embedded_broker:
            return f"sqla+sqlite:///{self.embedded_queue_file.resolve()}"
        return self.broker_url

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def demo_allowed(self) -> bool:
        """Whether the demo's conveniences may run: ALLIANCE_DEMO=1 on SQLite (the `log`
        channel; the demo EHR and FHIR store also need a loopback host: service/web)."""
        return self.demo and self.is_sqlite

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ALLIANCE_* variables (see deploy/env.example)."""
        env = os.environ if environ is None else environ
        database_url = env.get("ALLIANCE_DATABASE_URL", DEFAULT_DATABASE_URL)
        var_dir = _var_dir(env.get("ALLIANCE_VAR_DIR"), database_url)
        broker_url = env.get("ALLIANCE_BROKER_URL", EMBEDDED_BROKER)
        instruments = env.get("ALLIANCE_INSTRUMENTS_DIR")
        return cls(
            database_url=database_url,
            broker_url=broker_url,
            secret_keys=_secret_keys(env, database_url, var_dir),
            public_url=env.get("ALLIANCE_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
            var_dir=var_dir,
            log_format=env.get("ALLIANCE_LOG_FORMAT", "json"),
            log_level=env.get("ALLIANCE_LOG_LEVEL", "INFO").upper(),
            demo=env.get("ALLIANCE_DEMO", "") in ("1", "true", "yes"),
            relay_interval=_number(env, "ALLIANCE_RELAY_INTERVAL", 0.5),
            redeliver_after=_number(env, "ALLIANCE_REDELIVER_AFTER", 120.0),
            max_attempts=int(_number(env, "ALLIANCE_MAX_ATTEMPTS", 12)),
            max_job_age_hours=_number(env, "ALLIANCE_MAX_JOB_AGE_HOURS", 48.0),
            job_retention_days=_positive(env, "ALLIANCE_JOB_RETENTION_DAYS", 14.0),
            instruments_dir=Path(instruments) if instruments else var_dir / "instruments",
            prometheus_multiproc_dir=env.get("PROMETHEUS_MULTIPROC_DIR") or None,
            rabbitmq_queue_type=_queue_type(env, broker_url),
        )


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    value = _number(env, name, default)
    if not value > 0 or math.isinf(value):
        raise ConfigError(f"{name} must be a positive number, got {env.get(name)!r}")
    return value


def _var_dir(configured: str | None, database_url: str) -> Path:
    """ALLIANCE_VAR_DIR, else the folder of a SQLite database file (so the embedded queue, the
    generated key and the demo files live beside the database, wherever that is), else var/."""
    if configured:
        return Path(configured)
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).parent
    return Path("var")


def _secret_keys(env: Mapping[str, str], database_url: str, var_dir: Path) -> tuple[str, ...]:
    """ALLIANCE_SECRET_KEYS (newest first) or ALLIANCE_SECRET_KEY, each one checked."""
    single = (env.get("ALLIANCE_SECRET_KEY") or "").strip()
    listed = [key.strip() for key in (env.get("ALLIANCE_SECRET_KEYS") or "").split(",")]
    listed = [key for key in listed if key]
    if single and listed and single not in listed:
        raise ConfigError("ALLIANCE_SECRET_KEY is set but is not one of ALLIANCE_SECRET_KEYS: "
                          "list every key in ALLIANCE_SECRET_KEYS (newest first) "
                          "and unset the other")
    keys = listed or ([single] if single else [_embedded_secret(database_url, var_dir)])
    for position, key in enumerate(keys):
        problem = key_weakness(key)
        if problem:
            name = ("ALLIANCE_SECRET_KEY" if not listed
                    else f"key {position + 1} of ALLIANCE_SECRET_KEYS")
            raise ConfigError(f"{name} is refused: {problem}; {KEY_HINT}")
    if len(set(keys)) != len(keys):
        raise ConfigError("ALLIANCE_SECRET_KEYS lists the same key twice")
    return tuple(keys)


def key_weakness(key: str) -> str | None:
    """Why a key is too weak to sign links and encrypt secrets, or None when it will do."""
    if len(key) < MIN_KEY_LENGTH:
        return f"it has {len(key)} characters, fewer than {MIN_KEY_LENGTH}"
    lowered = key.lower()
    if any(word in lowered for word in PLACEHOLDER_WORDS):
        return "it is a placeholder, not a key"
    counts = Counter(key)
    bits_per_char = -sum(n / len(key) * math.log2(n / len(key)) for n in counts.values())
    if bits_per_char * len(key) < MIN_KEY_BITS:
        return "it is not random enough (too few different characters)"
    return None


def _queue_type(env: Mapping[str, str], broker_url: str) -> str:
    """classic (the default) or quorum; quorum queues exist only on RabbitMQ."""
    name = "ALLIANCE_RABBITMQ_QUEUE_TYPE"
    value = (env.get(name) or "classic").strip().lower()
    if value not in ("classic", "quorum"):
        raise ConfigError(f"{name} must be classic or quorum, got {env.get(name)!r}")
    if value == "quorum" and not broker_url.startswith(("amqp", "pyamqp")):
        raise ConfigError(f"{name}=quorum needs RabbitMQ (ALLIANCE_BROKER_URL=amqp://…), "
                          f"not the {broker_url.split(':', 1)[0]!r} broker")
    return value


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

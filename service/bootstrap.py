"""The composition root: the one place that builds the real adapters.

`Services` provides what the handlers need (`service/handlers/ports.py::Ports`) and what the
web layer needs besides (the practice cache). Tests call `bootstrap(settings, ...)` with fakes
of our own ports (EHR gateway, channels, clock).
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Engine

from integrations.settings import ChannelSettings, EhrSettings
from service.config import Settings
from service.crypto import ClientVault, FormSigner, KeyRing, LinkSigner, SecretBox
from service.persistence.db import make_engine, private_sqlite_file

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


# Adapters hold an HTTP connection pool and, for SMART backend auth, an access token: built
# once per thread and practice settings, not once per job (which opened a new connection and
# fetched a new token for every job). Per thread, because neither is shared safely.
MAX_CACHED_ADAPTERS = 256
PRACTICE_CACHE_SECONDS = 5.0
_adapters = threading.local()


def cached_adapter(kind: str, config, build: Callable[[], object]):
    """The adapter built for these exact settings (typed, or a mapping) in this thread, or a
    new one. Secrets are part of the key: a rotated token builds a new adapter."""
    cache = getattr(_adapters, "cache", None)
    if cache is None:
        cache = _adapters.cache = {}
    plain = asdict(config) if is_dataclass(config) else config
    key = (kind, json.dumps(plain, sort_keys=True, default=str))
    adapter = cache.get(key)
    if adapter is None:
        if len(cache) >= MAX_CACHED_ADAPTERS:
            cache.clear()
        adapter = cache[key] = build()
    return adapter


def _real_ehr(ehr: EhrSettings):
    from integrations.ehr import build_gateway

    # The FHIR gateway still takes the `ehr` block as a mapping (integrations/ehr).
    return cached_adapter("ehr", ehr, lambda: build_gateway(ehr.document, ehr.network))


def _real_healthie(section: Mapping):
    from integrations.healthie.client import build_healthie_api
    from integrations.settings import PUBLIC_ONLY

    network = section.get("network") or PUBLIC_ONLY
    return cached_adapter("healthie", section, lambda: build_healthie_api(dict(section), network))


def _record_writer(services: Services, ehr: EhrSettings):
    """Where scores and flags go: FHIR through the EHR gateway, a signed outbound webhook, or
    Healthie's GraphQL API (form answer groups and CareAlerts)."""
    if ehr.type == "healthie":
        from integrations.healthie.writer import HealthieRecordWriter

        section = ehr.document.get("healthie") or {}
        return HealthieRecordWriter(services.healthie_for(section), section, services.clock)
    if ehr.type == "webhook":
        from integrations.ehr.webhook_sink import WebhookRecordSink

        return cached_adapter("webhook-sink", ehr, lambda: WebhookRecordSink(
            ehr.url, ehr.secret, network=ehr.network))
    from integrations.ehr.resources import IdentifierSystems
    from integrations.ehr.writer import AllianceRecordWriter

    systems = IdentifierSystems.from_settings(ehr.identifier_systems)
    return AllianceRecordWriter(services.ehr_for(ehr), systems)


def _real_channels(service_settings: Settings) -> Callable[[str, ChannelSettings], object]:
    """Channels from a practice's settings; the log channel writes links only in the local
    demo (ALLIANCE_DEMO=1 on SQLite), and refuses every message elsewhere."""
    from integrations.delivery import build_channel

    log_enabled = service_settings.demo_allowed

    def channel_for(name: str, settings: ChannelSettings):
        return cached_adapter(f"channel:{name}:{log_enabled}", settings,
                              lambda: build_channel(name, settings, log_enabled=log_enabled))

    return channel_for


@dataclass
class Services:
    settings: Settings
    engine: Engine
    clock: Clock
    box: SecretBox
    signer: LinkSigner
    forms: FormSigner
    vault: ClientVault
    ehr_for: Callable[[EhrSettings], object] = _real_ehr
    channel_for: Callable[[str, ChannelSettings], object] = field(default=None)
    healthie_for: Callable[[Mapping], object] = _real_healthie
    relay_health: object | None = None  # set when this process runs the outbox relay
    jwks_fetch: Callable[[str], dict] | None = None
    _key_sets: object = field(default=None, repr=False)
    _catalogue: tuple = field(default=(None, None), repr=False)
    _practices: dict = field(default_factory=dict, repr=False)

    def instruments(self) -> dict:
        """The instrument catalogue, reloaded only when the practice-loaded folder changes."""
        from service.domain import instrument_catalogue

        folder = self.settings.instruments_dir
        stamp = folder.stat().st_mtime_ns if folder is not None and folder.is_dir() else None
        cached_stamp, catalogue = self._catalogue
        if catalogue is None or cached_stamp != stamp:
            catalogue = instrument_catalogue(folder if stamp is not None else None)
            self._catalogue = (stamp, catalogue)
        return catalogue

    def practice(self, practice_id: str):
        """A practice for the webhook routes, cached for PRACTICE_CACHE_SECONDS per process.

        Each webhook needs the practice's secrets; reading and decrypting them per request was a
        third of the intake's database round trips. `alliance practice apply` therefore takes
        effect on the webhook routes within that many seconds (unknown ids are not cached).
        An id that cannot exist (ids are checked on apply) is None without a query.
        """
        from schemas.practice import PRACTICE_ID
        from service import practices

        if not PRACTICE_ID.match(practice_id):
            return None
        now = self.clock()
        cached = self._practices.get(practice_id)
        if cached is not None and 0 <= (now - cached[0]).total_seconds() < PRACTICE_CACHE_SECONDS:
            return cached[1]
        with self.engine.begin() as conn:
            found = practices.load(conn, self.box, practice_id)
        if found is not None:
            self._practices[practice_id] = (now, found)
        return found

    def cds_key_sets(self, network=None):
        """The CDS clients' JWK Sets, fetched and cached per process (service/clinician/jwks.py),
        one cache per kind of network settings: a set fetched where private addresses are
        allowed never serves a practice that does not allow them."""
        from integrations.settings import PUBLIC_ONLY
        from service.clinician.jwks import KeySets, fetch_key_set

        network = network or PUBLIC_ONLY
        if self._key_sets is None:
            self._key_sets = {}
        if network.allow_private not in self._key_sets:
            fetch = self.jwks_fetch or functools.partial(fetch_key_set, network=network)
            self._key_sets[network.allow_private] = KeySets(fetch, self.clock)
        return self._key_sets[network.allow_private]

    def writer_for(self, ehr: EhrSettings):
        return _record_writer(self, ehr)

    def survey_link(self, token: str) -> str:
        return f"{self.settings.public_url}/s/{token}"


def make_folders(settings: Settings) -> None:
    """Create every folder the service writes to, and the embedded queue's file, readable by
    the service's user only (the database file is made so by make_engine)."""
    folders = []
    if settings.is_sqlite or settings.embedded_broker or settings.demo:
        folders.append(settings.var_dir)
    if settings.prometheus_multiproc_dir:
        folders.append(Path(settings.prometheus_multiproc_dir))
    for folder in folders:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if settings.embedded_broker:
        private_sqlite_file(settings.embedded_queue_file)  # the queue holds job ids only


def bootstrap(
    settings: Settings,
    *,
    engine: Engine | None = None,
    clock: Clock | None = None,
    ehr_for: Callable[[EhrSettings], object] | None = None,
    channel_for: Callable[[str, ChannelSettings], object] | None = None,
    healthie_for: Callable[[Mapping], object] | None = None,
    jwks_fetch: Callable[[str], dict] | None = None,
) -> Services:
    """Wire the service from settings; pass fakes to replace any adapter."""
    make_folders(settings)
    keys = KeyRing(settings.secret_keys)
    return Services(
        settings=settings,
        engine=engine or make_engine(settings.database_url),
        clock=clock or utc_now,
        box=SecretBox(keys),
        signer=LinkSigner(keys),
        forms=FormSigner(keys),
        vault=ClientVault(keys),
        ehr_for=ehr_for or _real_ehr,
        channel_for=channel_for or _real_channels(settings),
        healthie_for=healthie_for or _real_healthie,
        jwks_fetch=jwks_fetch,
    )

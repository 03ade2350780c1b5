"""What a practice configures for each adapter, as typed values (CONTRACT §2).

The practice document is validated once, by its schema (`schemas/practice.py`), when it is
applied; `service/practices.py` turns the stored document into these values once per load.
The delivery channels take them as they are. The FHIR gateway is still built from the stored
`ehr` block (`EhrSettings.document`, `integrations/ehr/fhir_client.build_gateway`), so of
`EhrSettings` the service reads the type, poll, identifier systems, url and network; `auth`,
`base_url` and `timeout_seconds` here mirror the block. Secrets are left out of `repr`, so a
settings object in a log line or a traceback shows none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_SMS_API = "https://api.twilio.com"


@dataclass(frozen=True)
class NetworkSettings:
    """`network`: whether the practice's outbound calls may reach loopback and private
    addresses (`integrations/network.py`), and why it was allowed (shown by `practice show`)."""

    allow_private: bool = False
    reason: str | None = None

    @classmethod
    def from_document(cls, block: Mapping[str, Any] | None) -> NetworkSettings:
        block = block or {}
        return cls(bool(block.get("allow_private", False)), block.get("reason"))


PUBLIC_ONLY = NetworkSettings()


@dataclass(frozen=True)
class SmsSettings:
    """`delivery.sms`: a Twilio-compatible REST API."""

    account_sid: str
    auth_token: str = field(repr=False)
    sender: str  # "from": an E.164 number of the account
    provider: str = "twilio"
    api_base: str = DEFAULT_SMS_API
    timeout_seconds: float | None = None
    network: NetworkSettings = PUBLIC_ONLY

    @classmethod
    def from_document(cls, block: Mapping[str, Any],
                      network: NetworkSettings = PUBLIC_ONLY) -> SmsSettings:
        return cls(account_sid=block["account_sid"], auth_token=block["auth_token"],
                   sender=block["from"], provider=block.get("provider", "twilio"),
                   api_base=block.get("api_base", DEFAULT_SMS_API),
                   timeout_seconds=block.get("timeout_seconds"), network=network)


TLS_MODES = ("starttls", "implicit", "none")


@dataclass(frozen=True)
class EmailSettings:
    """`delivery.email`: an SMTP relay. `tls` is `starttls` (the default: upgrade the plain
    connection, usually port 587), `implicit` (TLS from the first byte, usually port 465) or
    `none` (only to a relay on this machine, and never with a login)."""

    smtp_host: str
    smtp_port: int
    sender: str  # "from"
    tls: str = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_seconds: float | None = None
    network: NetworkSettings = PUBLIC_ONLY

    @classmethod
    def from_document(cls, block: Mapping[str, Any],
                      network: NetworkSettings = PUBLIC_ONLY) -> EmailSettings:
        return cls(smtp_host=block["smtp_host"], smtp_port=block["smtp_port"],
                   sender=block["from"], tls=email_tls(block),
                   username=block.get("username") or None,
                   password=block.get("password") or None,
                   timeout_seconds=block.get("timeout_seconds"), network=network)


def email_tls(block: Mapping[str, Any]) -> str:
    """The TLS mode of a `delivery.email` block. The schema stores `tls`; a block stored before
    `tls` existed has only the boolean `starttls`, which defaulted to false: it is read as
    `starttls` (the safe default) except `starttls: false` to a relay on this machine."""
    if block.get("tls") in TLS_MODES:
        return block["tls"]
    local = block.get("smtp_host") in ("localhost", "127.0.0.1", "::1")
    return "none" if local and block.get("starttls") is False else "starttls"


ChannelSettings = SmsSettings | EmailSettings | None  # None: the log channel


@dataclass(frozen=True)
class EhrAuthSettings:
    """`ehr.auth`: none, a bearer token, or SMART Backend Services."""

    type: str = "none"
    token: str | None = field(default=None, repr=False)
    token_url: str | None = None
    client_id: str | None = None
    private_key_jwk: Mapping[str, Any] | None = field(default=None, repr=False)
    scope: str | None = None

    @classmethod
    def from_document(cls, block: Mapping[str, Any] | None) -> EhrAuthSettings:
        block = block or {}
        return cls(type=block.get("type", "none"), token=block.get("token"),
                   token_url=block.get("token_url"), client_id=block.get("client_id"),
                   private_key_jwk=block.get("private_key_jwk"), scope=block.get("scope"))


@dataclass(frozen=True)
class EhrPollSettings:
    """`ehr.poll`: search the FHIR server for finished visits every N minutes."""

    resource: str  # Encounter | Appointment
    every_minutes: int
    overlap_minutes: int = 10

    @classmethod
    def from_document(cls, block: Mapping[str, Any] | None) -> EhrPollSettings | None:
        if not block:
            return None
        return cls(block["resource"], block["every_minutes"], block.get("overlap_minutes", 10))


@dataclass(frozen=True)
class EhrSettings:
    """`ehr`: where scores and flags go. `fhir-r4` writes to `base_url` (and is read from
    there); `webhook` posts signed events to `url`; other types name their own fields."""

    type: str
    base_url: str | None = None
    auth: EhrAuthSettings = field(default_factory=EhrAuthSettings)
    timeout_seconds: float | None = None
    # Systems for ids that are not FHIR ids (written as Reference.identifier): patient, encounter
    identifier_systems: Mapping[str, str] | None = None
    url: str | None = None
    secret: str | None = field(default=None, repr=False)
    poll: EhrPollSettings | None = None  # FHIR polling, for EHRs that send nothing
    network: NetworkSettings = PUBLIC_ONLY
    # The whole `ehr` block as stored, for fields that EHR types added later define.
    document: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_document(cls, block: Mapping[str, Any],
                      network: NetworkSettings = PUBLIC_ONLY) -> EhrSettings:
        return cls(type=block["type"], base_url=block.get("base_url"), network=network,
                   auth=EhrAuthSettings.from_document(block.get("auth")),
                   timeout_seconds=block.get("timeout_seconds"),
                   identifier_systems=block.get("identifier_systems"), url=block.get("url"),
                   secret=block.get("secret"),
                   poll=EhrPollSettings.from_document(block.get("poll")), document=dict(block))

    @property
    def readable(self) -> bool:
        """Whether the service can read sessions and patients from this EHR (FHIR R4 only)."""
        return self.type == "fhir-r4"

    @property
    def summary(self) -> str:
        """One line for `alliance practice list`: the FHIR base URL (the default type), or the
        type and where it writes, e.g. "webhook https://ehr.example/alliance" or
        "healthie https://api.gethealthie.com/graphql"."""
        if self.type == "fhir-r4":
            return self.base_url or self.type
        where = self.url or self.base_url or (self.document.get("healthie") or {}).get("api_url")
        return " ".join(part for part in (self.type, where) if part)

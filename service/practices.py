"""Practices: validated documents, stored with their secrets encrypted, loaded as typed values.

A document is validated once, by `schemas/practice.py`, when it is applied. Loading turns it
into a `Practice` of frozen values (`integrations/settings.py` for the adapters' parts) that
handlers, adapters and the command line take as they are.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import Connection

from integrations.settings import (
    PUBLIC_ONLY,
    ChannelSettings,
    EhrSettings,
    EmailSettings,
    NetworkSettings,
    SmsSettings,
)
from schemas.base import flatten_errors
from schemas.practice import PracticeDocument
from service.config import Settings
from service.crypto import SecretBox
from service.persistence.queries import practices as stored

SECRET_FIELDS = {
    ("webhook_secrets",), ("ehr", "secret"), ("ehr", "auth", "token"),
    ("ehr", "auth", "private_key_jwk"), ("delivery", "sms", "auth_token"),
    ("delivery", "email", "password"), ("fhir_notifications", "channel_token"),
    ("fhir_notifications", "hub_secret"), ("hl7v2", "channel_token"),
    ("smart_app", "client_secret"), ("smart_app", "private_key_jwk"),
    ("healthie", "api_key"), ("healthie", "webhook_secret"),
}


class InvalidPractice(Exception):
    """The document is refused; `problems` names each wrong field."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class QuietHours:
    start: str  # "HH:MM", the practice's local time
    end: str


@dataclass(frozen=True)
class SurveySettings:
    instrument: str = "brief-alliance-check"
    send_delay_minutes: float = 0
    reminder_after_hours: float = 24
    expire_after_hours: float = 72
    quiet_hours: QuietHours | None = None
    every_nth_session: int = 1

    @classmethod
    def from_document(cls, block: Mapping[str, Any]) -> SurveySettings:
        quiet = block.get("quiet_hours")
        values = {name: block[name] for name in (
            "instrument", "send_delay_minutes", "reminder_after_hours", "expire_after_hours",
            "every_nth_session") if name in block}
        quiet_hours = QuietHours(quiet["start"], quiet["end"]) if quiet else None
        return cls(**values, quiet_hours=quiet_hours)


@dataclass(frozen=True)
class RetentionSettings:
    """`retention` (schemas/retention.py): days a client's data is kept."""

    contact_days: int = 180  # after the client's last session
    responses_days: int = 730

    @classmethod
    def from_document(cls, block: Mapping[str, Any] | None) -> RetentionSettings:
        return cls(**{name: block[name] for name in ("contact_days", "responses_days")
                      if block and name in block})


@dataclass(frozen=True)
class AlertSettings:
    """`alerts` (schemas/alert_settings.py): snooze limits, escalation, what is written."""

    write: tuple[str, ...] = ("flag",)  # flag | task | document, for an open rupture
    max_snooze_days: int = 7
    max_snoozes: int = 2
    escalate_after_hours: float = 72.0
    escalate_to: str | None = None  # "Practitioner/{id}"; no escalation without it
    escalate_email: str | None = None

    @classmethod
    def from_document(cls, block: Mapping[str, Any] | None) -> AlertSettings:
        values = {name: block[name] for name in (
            "max_snooze_days", "max_snoozes", "escalate_after_hours", "escalate_to",
            "escalate_email") if block and block.get(name) is not None}
        write = tuple(block["write"]) if block and "write" in block else cls.write
        return cls(write=write, **values)

    @property
    def escalates(self) -> bool:
        return self.escalate_to is not None


@dataclass(frozen=True)
class DeliverySettings:
    channels: tuple[str, ...]  # tried in this order
    sms: SmsSettings | None = None
    email: EmailSettings | None = None

    @classmethod
    def from_document(cls, block: Mapping[str, Any],
                      network: NetworkSettings = PUBLIC_ONLY) -> DeliverySettings:
        sms, email = block.get("sms"), block.get("email")
        return cls(tuple(block["channels"]),
                   SmsSettings.from_document(sms, network) if sms else None,
                   EmailSettings.from_document(email, network) if email else None)

    def settings_for(self, channel: str) -> ChannelSettings:
        return {"sms": self.sms, "email": self.email}.get(channel)


@dataclass(frozen=True)
class FhirNotificationSettings:
    """How FHIR Subscription notifications authenticate (either may be absent)."""

    channel_token: str | None = field(default=None, repr=False)
    hub_secret: str | None = field(default=None, repr=False)

    @property
    def configured(self) -> tuple[str, ...]:
        """The names of the ways that are set up, for `practice list`."""
        return tuple(name for name in ("channel_token", "hub_secret") if getattr(self, name))


@dataclass(frozen=True)
class Hl7v2Settings:
    """`hl7v2`: the token an interface engine sends (HTTP bearer, or MLLP MSH-8)."""

    channel_token: str = field(repr=False)


@dataclass(frozen=True)
class Practice:
    id: str
    name: str
    timezone: str
    webhook_secrets: tuple[str, ...] = field(repr=False)
    ehr: EhrSettings
    delivery: DeliverySettings
    survey: SurveySettings
    fhir_notifications: FhirNotificationSettings
    hl7v2: Hl7v2Settings | None  # the HL7 v2 door (CONTRACT §10), when the practice uses it
    # `smart_app` (the SMART trend app, schemas/smart_app.py) as validated; read by service/web
    smart_app: Mapping[str, Any] | None
    # `healthie` (schemas/healthie.py) as validated: the Healthie door and its GraphQL client
    healthie: Mapping[str, Any]
    rupture_rules: Mapping[str, Any]
    network: NetworkSettings  # where outbound calls may go (integrations/network.py)
    # The validated document as stored: for `practice show`, and for sections that other
    # modules define and read (their schemas sit in schemas/, one field each in PracticeDocument).
    document: Mapping[str, Any] = field(repr=False, compare=False)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Practice:
        notifications = document.get("fhir_notifications") or {}
        hl7v2 = document.get("hl7v2")
        network = NetworkSettings.from_document(document.get("network"))
        healthie = _healthie_section(document, network)
        return cls(
            id=document["id"], name=document["name"], timezone=document["timezone"],
            webhook_secrets=tuple(document.get("webhook_secrets") or ()),
            ehr=EhrSettings.from_document(_ehr_block(document, healthie), network),
            delivery=DeliverySettings.from_document(document["delivery"], network),
            survey=SurveySettings.from_document(document.get("survey") or {}),
            fhir_notifications=FhirNotificationSettings(
                notifications.get("channel_token"), notifications.get("hub_secret")),
            hl7v2=Hl7v2Settings(hl7v2["channel_token"]) if hl7v2 else None,
            smart_app=document.get("smart_app"),
            healthie=healthie,
            rupture_rules=document.get("rupture_rules") or {},
            network=network,
            document=document,
            retention=RetentionSettings.from_document(document.get("retention")),
            alerts=AlertSettings.from_document(document.get("alerts")),
        )

    def redacted(self) -> dict:
        """The document with every secret replaced, for `practice show`."""
        document = copy.deepcopy(dict(self.document))
        for path in SECRET_FIELDS:
            _redact(document, path)
        return document


def _ehr_block(document: Mapping[str, Any], healthie: Mapping[str, Any]) -> Mapping[str, Any]:
    """The `ehr` block; with type healthie the connection is the `healthie` section (the door
    and the write-back use the same GraphQL API), so it travels with the EHR settings."""
    ehr = document["ehr"]
    if ehr.get("type") == "healthie":
        return {**ehr, "healthie": healthie}
    return ehr


def _healthie_section(document: Mapping[str, Any], network: NetworkSettings) -> dict:
    """The `healthie` section as the GraphQL client takes it: with the practice's network
    settings beside its own fields (the client is built from the section alone)."""
    section = document.get("healthie") or {}
    return {**section, "network": network} if section else {}


def validate_document(raw: Any, extra_checks: Callable[[dict], list[str]] | None = None) -> dict:
    """Load a practice document or raise InvalidPractice naming every wrong field."""
    if not isinstance(raw, dict):
        raise InvalidPractice(["(document): must be a JSON object"])
    try:
        document = PracticeDocument().load(raw)
    except ValidationError as error:
        raise InvalidPractice(flatten_errors(error.messages)) from None
    problems = extra_checks(document) if extra_checks else []
    if problems:
        raise InvalidPractice(problems)
    return document


# The secrets that authenticate a practice's inbound requests. Each may serve one practice
# only: a Standard Webhooks signature, an X-Hub-Signature or a bearer token does not name the
# practice, so a secret two practices share lets one signed delivery in at both.
INBOUND_SECRETS = (("webhook_secrets",), ("fhir_notifications", "channel_token"),
                   ("fhir_notifications", "hub_secret"), ("hl7v2", "channel_token"),
                   ("healthie", "webhook_secret"))


def shared_secret_problems(conn: Connection, box: SecretBox, document: Mapping) -> list[str]:
    """One line per inbound secret of `document` that another practice already uses.

    The other practice is named: whoever applies practices can list them all anyway
    (`alliance practice list`), and without the name the clash cannot be found.
    """
    mine = _inbound_secrets(document)
    problems = []
    for other in load_all(conn, box):
        if other.id == document["id"]:
            continue
        theirs = _inbound_secrets(other.document)
        for value, where in mine.items():
            if value in theirs:
                problems.append(f"{where}: this secret already serves practice {other.id!r}; "
                                "each practice needs secrets of its own")
    return problems


def _inbound_secrets(document: Mapping) -> dict[bytes, str]:
    """Each inbound secret (a whsec_ secret as its key bytes) → the field that holds it."""
    found: dict[bytes, str] = {}
    for path in INBOUND_SECRETS:
        node: Any = document
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        values = node if isinstance(node, list) else [node]
        for index, value in enumerate(values):
            if isinstance(value, str) and value:
                where = ".".join(path) + (f"[{index}]" if isinstance(node, list) else "")
                found.setdefault(_secret_bytes(value), where)
    return found


def _secret_bytes(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[6:], validate=True)
        except ValueError:
            pass
    return secret.encode()


def deployment_problems(document: Mapping, settings: Settings) -> list[str]:
    """What this deployment refuses in a valid document: the `log` channel outside the demo."""
    if "log" in document["delivery"]["channels"] and not settings.demo_allowed:
        return ["delivery.channels: log writes survey links to the service log, so it is only "
                "for the local demo (ALLIANCE_DEMO=1 on SQLite): use sms or email"]
    return []


def save(conn: Connection, box: SecretBox, document: dict, *, now: datetime) -> bool:
    """Create or update a validated document; returns True when the practice is new."""
    return stored.save(conn, document["id"], document["name"], document["timezone"],
                       box.seal(document), now=now)


def load(conn: Connection, box: SecretBox, practice_id: str) -> Practice | None:
    sealed = stored.sealed_document(conn, practice_id)
    return Practice.from_document(box.open(sealed)) if sealed is not None else None


def exists(conn: Connection, practice_id: str) -> bool:
    return stored.sealed_document(conn, practice_id) is not None


def load_all(conn: Connection, box: SecretBox) -> list[Practice]:
    """Every practice, by id."""
    return [load(conn, box, practice_id) for practice_id in stored.all_ids(conn)]


def _redact(document: dict, path: tuple[str, ...]) -> None:
    node: Any = document
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict) and node.get(path[-1]) is not None:
        value = node[path[-1]]
        node[path[-1]] = ["<redacted>"] * len(value) if isinstance(value, list) else "<redacted>"

"""Practices: validated documents, stored with their secrets encrypted, loaded as typed values.

A document is validated once, by `schemas/practice.py`, when it is applied. Loading turns it
into a `Practice` of frozen values (`integrations/settings.py` for the adapters' parts) that
handlers, adapters and the command line take as they are.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import Connection

from integrations.settings import ChannelSettings, EhrSettings, EmailSettings, SmsSettings
from schemas.base import flatten_errors
from schemas.practice import PracticeDocument
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
class DeliverySettings:
    channels: tuple[str, ...]  # tried in this order
    sms: SmsSettings | None = None
    email: EmailSettings | None = None

    @classmethod
    def from_document(cls, block: Mapping[str, Any]) -> DeliverySettings:
        return cls(tuple(block["channels"]),
                   SmsSettings.from_document(block["sms"]) if block.get("sms") else None,
                   EmailSettings.from_document(block["email"]) if block.get("email") else None)

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
    # The validated document as stored: for `practice show`, and for sections that other
    # modules define and read (their schemas sit in schemas/, one field each in PracticeDocument).
    document: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Practice:
        notifications = document.get("fhir_notifications") or {}
        hl7v2 = document.get("hl7v2")
        return cls(
            id=document["id"], name=document["name"], timezone=document["timezone"],
            webhook_secrets=tuple(document.get("webhook_secrets") or ()),
            ehr=EhrSettings.from_document(_ehr_block(document)),
            delivery=DeliverySettings.from_document(document["delivery"]),
            survey=SurveySettings.from_document(document.get("survey") or {}),
            fhir_notifications=FhirNotificationSettings(
                notifications.get("channel_token"), notifications.get("hub_secret")),
            hl7v2=Hl7v2Settings(hl7v2["channel_token"]) if hl7v2 else None,
            smart_app=document.get("smart_app"),
            healthie=document.get("healthie") or {},
            rupture_rules=document.get("rupture_rules") or {},
            document=document,
        )

    def redacted(self) -> dict:
        """The document with every secret replaced, for `practice show`."""
        document = copy.deepcopy(dict(self.document))
        for path in SECRET_FIELDS:
            _redact(document, path)
        return document


def _ehr_block(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """The `ehr` block; with type healthie the connection is the `healthie` section (the door
    and the write-back use the same GraphQL API), so it travels with the EHR settings."""
    ehr = document["ehr"]
    if ehr.get("type") == "healthie":
        return {**ehr, "healthie": document.get("healthie") or {}}
    return ehr


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

"""Practices: validated documents, stored with their secrets encrypted."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from marshmallow import ValidationError
from sqlalchemy import Connection, select

from schemas.base import flatten_errors
from schemas.practice import PracticeDocument
from service.crypto import SecretBox
from service.persistence.tables import practices

SECRET_FIELDS = {
    ("webhook_secrets",), ("ehr", "secret"), ("ehr", "auth", "token"), ("ehr", "auth", "private_key_jwk"),
    ("delivery", "sms", "auth_token"), ("delivery", "email", "password"),
    ("fhir_notifications", "channel_token"), ("fhir_notifications", "hub_secret"),
    ("hl7v2", "channel_token"),
    ("smart_app", "client_secret"), ("smart_app", "private_key_jwk"),
    ("healthie", "api_key"), ("healthie", "webhook_secret"),
}


class InvalidPractice(Exception):
    """The document is refused; `problems` names each wrong field."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Practice:
    id: str
    name: str
    timezone: str
    document: dict

    @property
    def webhook_secrets(self) -> list[str]:
        return self.document.get("webhook_secrets") or []

    @property
    def ehr(self) -> dict:
        """How to reach the EHR. With type healthie the connection is the `healthie` section
        (the door and the write-back use the same GraphQL API), so it is included here."""
        ehr = self.document["ehr"]
        if ehr.get("type") == "healthie":
            return {**ehr, "healthie": self.healthie}
        return ehr

    @property
    def healthie(self) -> dict:
        return self.document.get("healthie") or {}

    @property
    def delivery(self) -> dict:
        return self.document["delivery"]

    @property
    def survey(self) -> dict:
        return self.document["survey"]

    @property
    def fhir_notifications(self) -> dict:
        return self.document.get("fhir_notifications") or {}

    @property
    def hl7v2(self) -> dict:
        return self.document.get("hl7v2") or {}

    @property
    def smart_app(self) -> dict | None:
        return self.document.get("smart_app")

    @property
    def rupture_rules(self) -> dict:
        return self.document.get("rupture_rules") or {}

    def redacted(self) -> dict:
        """The document with every secret replaced, for `practice show`."""
        document = copy.deepcopy(self.document)
        for path in SECRET_FIELDS:
            _redact(document, path)
        return document


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
    """Create or update; returns True when the practice is new."""
    values = dict(name=document["name"], timezone=document["timezone"],
                  sealed_document=box.seal(document), updated_at=now)
    exists = conn.execute(select(practices.c.id).where(practices.c.id == document["id"])).first()
    if exists:
        conn.execute(practices.update().where(practices.c.id == document["id"]).values(**values))
        return False
    conn.execute(practices.insert().values(id=document["id"], created_at=now, **values))
    return True


def load(conn: Connection, box: SecretBox, practice_id: str) -> Practice | None:
    row = conn.execute(select(practices).where(practices.c.id == practice_id)).mappings().first()
    if row is None:
        return None
    return Practice(row["id"], row["name"], row["timezone"], box.open(row["sealed_document"]))


def list_all(conn: Connection) -> list[dict]:
    rows = conn.execute(
        select(practices.c.id, practices.c.name, practices.c.timezone, practices.c.updated_at)
        .order_by(practices.c.id)
    ).mappings().all()
    return [dict(row) for row in rows]


def _redact(document: dict, path: tuple[str, ...]) -> None:
    node: Any = document
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict) and node.get(path[-1]) is not None:
        value = node[path[-1]]
        node[path[-1]] = ["<redacted>"] * len(value) if isinstance(value, list) else "<redacted>"

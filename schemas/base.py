"""Shared schema helpers: strict schemas and flat error messages that name each field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, validate

# Every URL field of the practice document: https, or http to a loopback address with
# network.allow_private (checked by schemas/network.py, not here).
HTTP_URL = validate.URL(schemes={"http", "https"}, require_tld=False)


class StrictSchema(Schema):
    """Our own documents: an unknown field is an error (it is usually a typo)."""

    class Meta:
        unknown = RAISE


def flatten_errors(messages: Any, prefix: str = "") -> list[str]:
    """Turn marshmallow's nested error dict into lines like 'delivery.sms.from: Missing data …'."""
    if isinstance(messages, Mapping):
        lines: list[str] = []
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix and key != "_schema" else (prefix or str(key))
            if key == "_schema" and not prefix:
                name = "(document)"
            lines.extend(flatten_errors(value, name))
        return lines
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"{prefix}: {m}" for m in messages]
    if isinstance(messages, list):
        return [line for m in messages for line in flatten_errors(m, prefix)]
    return [f"{prefix}: {messages}"]


def error_map(error: ValidationError) -> dict[str, str]:
    """Field path → first message, for problem+json `errors` members."""
    result: dict[str, str] = {}
    for line in flatten_errors(error.messages):
        field, _, message = line.partition(": ")
        result.setdefault(field, message)
    return result

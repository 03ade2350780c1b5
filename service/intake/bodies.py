"""Reading a JSON body with a schema, for every door: refusals name what is wrong."""

from __future__ import annotations

import json

from marshmallow import Schema, ValidationError

from schemas.base import error_map
from service.intake.facts import Refused


def json_document(body: bytes):
    """The parsed body; Refused("unparseable") when it is not UTF-8 JSON we accept."""
    try:
        return json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as error:
        raise Refused("unparseable", f"the body is not JSON: {error}") from None
    except RecursionError:  # json raises this, not ValueError, on very deep nesting
        raise Refused("unparseable",
                      "the body is not JSON we accept: it is nested too deeply") from None


def json_object(body: bytes) -> dict:
    """The parsed body, which must be an object; Refused naming what is wrong."""
    document = json_document(body)
    if not isinstance(document, dict):
        raise Refused("invalid", "the body must be a JSON object",
                      {"(body)": "must be a JSON object"})
    return document


def load_with(schema: Schema, document, prefix: str | None = None) -> dict:
    """The document loaded by the schema; Refused("invalid") naming each wrong field."""
    try:
        return schema.load(document)
    except ValidationError as error:
        messages = {prefix: error.messages} if prefix else error.messages
        errors = error_map(ValidationError(messages))
        detail = "; ".join(f"{field}: {message}" for field, message in errors.items())
        raise Refused("invalid", detail, errors) from None

"""Parse FHIR R4 Subscriptions Backport notification Bundles into plain values.

Two flavours of the first entry are read: the R4 backport ``Parameters`` (IG 1.x) and the
R4B/R5 ``SubscriptionStatus`` that athenahealth (and the 2021 pre-release IG) send on R4.
Parsing is lenient where real servers deviate from the profile (BOM, ``valueString`` instead of
``valueReference``, missing ``entry.request``, absolute or relative ``fullUrl``) and strict
only where a body cannot be a notification at all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

NOTIFICATION_KINDS = frozenset(
    {"handshake", "heartbeat", "event-notification", "query-status", "query-event"}
)
STATUS_RESOURCE_TYPES = ("Parameters", "SubscriptionStatus")
# athena's AuditEvent (one per notification event) names the patient in this R5 extension.
_AUDIT_EVENT_PATIENT_EXTENSION = "StructureDefinition/extension-AuditEvent.patient"


class NotificationError(ValueError):
    """The body is not a Subscription notification; the message names what is wrong."""


@dataclass(frozen=True)
class NotificationEvent:
    event_number: str | None
    focus: str | None
    resource: dict | None
    event_id: str | None = None
    timestamp: str | None = None
    focus_identifier: tuple[str | None, str] | None = None
    patient: str | None = None


@dataclass(frozen=True)
class Notification:
    kind: str
    subscription: str | None
    topic: str | None
    events: tuple[NotificationEvent, ...]
    included: Mapping[str, dict]


def parse_notification(body: bytes) -> Notification:
    """Parse a notification Bundle; raise NotificationError naming the problem."""
    bundle = _decode_json(body)
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        found = bundle.get("resourceType") if isinstance(bundle, dict) else None
        raise NotificationError(f"not a Bundle (resourceType {_describe(found)})")
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries:
        raise NotificationError("Bundle has no entry")
    status = entries[0].get("resource") if isinstance(entries[0], dict) else None
    if not isinstance(status, dict) or status.get("resourceType") not in STATUS_RESOURCE_TYPES:
        found = status.get("resourceType") if isinstance(status, dict) else None
        raise NotificationError(
            "entry[0] is not a Parameters or SubscriptionStatus resource "
            f"(found {_describe(found)})"
        )
    included = _included_resources(entries[1:])
    aliases = _full_url_aliases(entries[1:])
    if status["resourceType"] == "Parameters":
        return _from_parameters(status, included, aliases)
    return _from_subscription_status(status, included, aliases)


def parse_status_resource(status: dict, included: Mapping[str, dict] | None = None) -> Notification:
    """Read a bare Parameters/SubscriptionStatus (e.g. from `$status`) without a Bundle."""
    included = dict(included or {})
    if status.get("resourceType") == "Parameters":
        return _from_parameters(status, included, {})
    if status.get("resourceType") == "SubscriptionStatus":
        return _from_subscription_status(status, included, {})
    raise NotificationError("not a Parameters or SubscriptionStatus resource")


def relative_reference(reference: str | None) -> str | None:
    """Reduce an absolute or versioned FHIR reference to "Type/id"; None if it is not one."""
    if not isinstance(reference, str) or not reference.strip():
        return None
    path = reference.strip().split("?", 1)[0].split("#", 1)[0]
    segments = [segment for segment in path.split("/") if segment]
    if "_history" in segments:
        segments = segments[: segments.index("_history")]
    if len(segments) < 2 or not _looks_like_resource_type(segments[-2]):
        return None
    return f"{segments[-2]}/{segments[-1]}"


def _decode_json(body: bytes) -> object:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotificationError(f"not UTF-8: invalid byte at position {exc.start}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotificationError(f"not JSON: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:  # json raises this, not ValueError, on very deep nesting
        raise NotificationError("not JSON we accept: nested too deeply") from None


def _looks_like_resource_type(segment: str) -> bool:
    return segment[:1].isupper() and segment.isalnum()


def _included_resources(entries: list) -> dict[str, dict]:
    included: dict[str, dict] = {}
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue  # id-only entries carry fullUrl/request but no resource
        key = _resource_key(resource) or relative_reference(entry.get("fullUrl"))
        if key:
            included[key] = resource
    return included


def _full_url_aliases(entries: list) -> dict[str, str]:
    """Map urn:uuid fullUrls to "Type/id", so a focus given as a urn resolves."""
    aliases: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            continue
        key = _resource_key(entry["resource"])
        if key and isinstance(entry.get("fullUrl"), str):
            aliases[entry["fullUrl"]] = key
    return aliases


def _resource_key(resource: dict) -> str | None:
    resource_type, resource_id = resource.get("resourceType"), resource.get("id")
    if isinstance(resource_type, str) and isinstance(resource_id, str) and resource_id:
        return f"{resource_type}/{resource_id}"
    return None


def _resolve(reference: str | None, aliases: Mapping[str, str]) -> str | None:
    if reference in aliases:
        return aliases[reference]
    return relative_reference(reference)


def _checked_kind(kind: object) -> str:
    if not isinstance(kind, str) or kind not in NOTIFICATION_KINDS:
        raise NotificationError(
            f"notification type {_describe(kind)} is not one of "
            f"{', '.join(sorted(NOTIFICATION_KINDS))}"
        )
    return kind


def _describe(value: object) -> str:
    """Echo a short string from the body; name the JSON type of anything else (no data dumps)."""
    if isinstance(value, str):
        return repr(value[:40])
    return "None" if value is None else f"a JSON {type(value).__name__}"


def _dicts(value: object) -> list[dict]:
    """The objects of a JSON array; anything else (a malformed element) reads as empty."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _as_text(value: object) -> str | None:
    """Counters arrive as strings or integers depending on the server."""
    if isinstance(value, bool) or value is None:
        return None
    return str(value) if isinstance(value, (str, int)) else None


# --- R4 backport: Parameters -------------------------------------------------------------


def _from_parameters(params: dict, included: dict, aliases: Mapping[str, str]) -> Notification:
    parameters = _dicts(params.get("parameter"))
    events = tuple(
        _event_from_parts(_dicts(p.get("part")), included, aliases)
        for p in parameters
        if p.get("name") == "notification-event"
    )
    return Notification(
        kind=_checked_kind(_parameter_value(_first_named(parameters, "type"))),
        subscription=_resolve(_parameter_value(_first_named(parameters, "subscription")), aliases),
        topic=_parameter_value(_first_named(parameters, "topic")),
        events=events,
        included=included,
    )


def _first_named(parameters: list[dict], name: str) -> dict | None:
    return next((p for p in parameters if p.get("name") == name), None)


def _parameter_value(parameter: dict | None) -> str | None:
    """The value of a parameter/part as text, whatever value[x] the server chose."""
    if not isinstance(parameter, dict):
        return None
    for key, value in parameter.items():
        if not key.startswith("value"):
            continue
        if isinstance(value, dict):
            return value.get("reference") if isinstance(value.get("reference"), str) else None
        return _as_text(value)
    return None


def _event_from_parts(
    parts: list[dict], included: dict, aliases: Mapping[str, str]
) -> NotificationEvent:
    focus_part = _first_named(parts, "focus") or {}
    focus = _resolve(_parameter_value(focus_part), aliases)
    context = [
        _resolve(_parameter_value(p), aliases)
        for p in parts if p.get("name") == "additional-context"
    ]
    return NotificationEvent(
        event_number=_parameter_value(_first_named(parts, "event-number")),
        focus=focus,
        resource=included.get(focus) if focus else None,
        timestamp=_parameter_value(_first_named(parts, "timestamp")),
        focus_identifier=_identifier(focus_part.get("valueReference")),
        patient=_first_patient([focus, *context]),
    )


def _first_patient(references: list[str | None]) -> str | None:
    return next((r for r in references if r and r.startswith("Patient/")), None)


# --- R4B/R5 (athenahealth): SubscriptionStatus --------------------------------------------


def _from_subscription_status(
    status: dict, included: dict, aliases: Mapping[str, str]
) -> Notification:
    raw_events = _dicts(status.get("notificationEvent"))
    return Notification(
        kind=_checked_kind(status.get("type")),
        subscription=_resolve(_reference_text(status.get("subscription")), aliases),
        topic=_as_text(status.get("topic")),
        events=tuple(_event_from_status(e, included, aliases) for e in raw_events),
        included=included,
    )


def _reference_text(value: object) -> str | None:
    if isinstance(value, dict):
        return value.get("reference") if isinstance(value.get("reference"), str) else None
    return value if isinstance(value, str) else None


def _event_from_status(
    event: dict, included: dict, aliases: Mapping[str, str]
) -> NotificationEvent:
    focus_value = event.get("focus")
    focus = _resolve(_reference_text(focus_value), aliases)
    context = [_resolve(_reference_text(c), aliases)
               for c in _dicts(event.get("additionalContext"))]
    event_id = _as_text(event.get("id"))
    return NotificationEvent(
        event_number=_as_text(event.get("eventNumber")),
        focus=focus,
        resource=included.get(focus) if focus else None,
        event_id=event_id,
        timestamp=_as_text(event.get("timestamp")),
        focus_identifier=_identifier(focus_value),
        patient=_first_patient([focus, *context, _audit_event_patient(included, event_id)]),
    )


def _identifier(reference: object) -> tuple[str | None, str] | None:
    """athena names the focus by a proprietary identifier instead of (or beside) a reference."""
    identifier = reference.get("identifier") if isinstance(reference, dict) else None
    if not isinstance(identifier, dict) or _as_text(identifier.get("value")) is None:
        return None
    system = identifier.get("system")
    return (system if isinstance(system, str) else None, _as_text(identifier["value"]))


def _audit_event_patient(included: Mapping[str, dict], event_id: str | None) -> str | None:
    audit_event = included.get(f"AuditEvent/{event_id}") if event_id else None
    for extension in _dicts((audit_event or {}).get("extension")):
        if str(extension.get("url", "")).endswith(
            _AUDIT_EVENT_PATIENT_EXTENSION
        ):
            return relative_reference(_reference_text(extension.get("valueReference")))
    return None

"""FHIR polling (CONTRACT §10): the search a poll sends, and each result as an arrival.

For EHRs that offer read-only FHIR and send nothing: the worker searches
`{base_url}/{resource}?status=finished|fulfilled&_lastUpdated=gt{cursor - overlap}` and every
result is a completion under the dedupe rules of the notification route. The delivery id is the
resource (`Encounter/{id}`), so one visit seen by several polls (the overlap) is one event; the
session keys are the FHIR route's (`Encounter/{id}`, `Appointment/{id}`), so a practice can run
notifications and polling side by side and still get one survey per visit.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from service.intake.facts import Arrival, storable_ids
from service.intake.sessions import COMPLETED_STATUSES, classify_resource

SOURCE = "poll"


def search_params(
    resource: str, since: datetime, overlap_minutes: int, prefix: str = "gt"
) -> dict[str, str]:
    """Finished visits updated after `since` minus the overlap, oldest first (so a poll cut
    short by its page bound can resume from the newest one it saw: prefix `ge`, no overlap)."""
    start = (since - timedelta(minutes=overlap_minutes)).astimezone(timezone.utc)
    return {
        "status": COMPLETED_STATUSES[resource],
        "_lastUpdated": f"{prefix}{start.strftime('%Y-%m-%dT%H:%M:%SZ')}",
        "_sort": "_lastUpdated",
    }


def arrival_from_resource(resource: dict) -> Arrival:
    """One search result as an arrival; what cannot be a session is recorded as ignored."""
    signal = classify_resource(resource)
    kind, resource_id = resource.get("resourceType"), resource.get("id")
    delivery_id = f"{kind}/{resource_id}"
    event_type = f"{kind}.{resource.get('status')}"[:100]
    if not isinstance(resource_id, str) or not storable_ids(delivery_id):
        raise ValueError(f"a search result without a usable id ({kind})")
    # A search result carries no Patient: the worker reads the contact from the EHR.
    return Arrival(SOURCE, delivery_id, event_type, signal.outcome())


def last_updated(resource: dict) -> datetime | None:
    """meta.lastUpdated as an aware datetime; None when absent or not an instant."""
    value = (resource.get("meta") or {}).get("lastUpdated")
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else None

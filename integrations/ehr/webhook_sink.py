"""For EHRs without FHIR write access: the same write-back as signed Standard Webhooks events.

Events POSTed to the practice's URL: `alliance.scored`, `alliance.rupture` (data.status
`raised` or `unresolved`) and `alliance.repaired`. Each event's `webhook-id` is derived from
what it reports, so a retried delivery carries the same id and the receiver can drop repeats.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import requests
from standardwebhooks.webhooks import Webhook

from integrations.ehr.errors import EhrTransientError, refused_destination
from integrations.ehr.fhir_client import error_for_response
from integrations.ehr.records import AllianceRecord, FlagRef, WrittenScores
from integrations.ehr.resources import fhir_datetime
from integrations.http import DEFAULT_TIMEOUT, TRANSPORT_FAILURES, build_session
from integrations.network import DestinationRefused
from integrations.settings import PUBLIC_ONLY, NetworkSettings


class WebhookRecordSink:
    """AllianceRecordWriter's methods, delivered as signed webhook events."""

    def __init__(
        self,
        url: str,
        secret: str,
        session: requests.Session | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.time,
        network: NetworkSettings = PUBLIC_ONLY,
    ) -> None:
        self._url = url
        self._signer = Webhook(secret)
        self._session = session or build_session(timeout, network=network)
        self._timeout = timeout
        self._clock = clock

    def write_scores(self, record: AllianceRecord) -> WrittenScores:
        """Send alliance.scored; both returned ids are the event id (no EHR ids exist)."""
        event_id = f"msg_scored_{record.response_id}"
        self._deliver(event_id, "alliance.scored", _scored_data(record))
        return WrittenScores(event_id, event_id)

    def raise_flag(self, record: AllianceRecord, text: str, episode_id: str) -> FlagRef:
        """Send alliance.rupture (raised) for an episode."""
        data = {
            **_context(record),
            "episode_id": episode_id,
            "status": "raised",
            "text": text,
            "started_at": fhir_datetime(record.authored),
            "reasons": list(record.reasons),
        }
        self._deliver(f"msg_rupture_{episode_id}", "alliance.rupture", data)
        return FlagRef(episode_id, None, episode_id)

    def update_flag_text(self, flag: FlagRef, text: str) -> FlagRef:
        """Send alliance.rupture (unresolved) with the new text for the same episode."""
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        data = {"episode_id": flag.identifier, "status": "unresolved", "text": text}
        self._deliver(f"msg_unresolved_{flag.identifier}_{digest}", "alliance.rupture", data)
        return flag

    def resolve_flag(self, flag: FlagRef, ended_at: datetime) -> FlagRef:
        """Send alliance.repaired for the episode."""
        data = {"episode_id": flag.identifier, "ended_at": fhir_datetime(ended_at)}
        self._deliver(f"msg_repaired_{flag.identifier}", "alliance.repaired", data)
        return flag

    def _deliver(self, event_id: str, event_type: str, data: dict) -> None:
        now = self._clock()
        body = json.dumps(
            {"type": event_type, "timestamp": _iso(now), "data": data}, separators=(",", ":")
        )
        sent_at = datetime.fromtimestamp(int(now), tz=UTC)
        headers = {
            "Content-Type": "application/json",
            "webhook-id": event_id,
            "webhook-timestamp": str(int(now)),
            "webhook-signature": self._signer.sign(event_id, sent_at, body),
        }
        try:
            response = self._session.post(
                self._url,
                data=body.encode("utf-8"),
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except TRANSPORT_FAILURES as exc:
            raise EhrTransientError(f"webhook {event_type} failed: {type(exc).__name__}") from exc
        except DestinationRefused as exc:
            raise refused_destination(f"webhook {event_type}", exc) from None
        if not 200 <= response.status_code < 300:
            raise error_for_response(response, f"webhook {event_type}", now)


def _scored_data(record: AllianceRecord) -> dict:
    return {
        **_context(record),
        "response_id": record.response_id,
        "instrument": {
            "url": record.instrument_url,
            "version": record.instrument_version,
            "title": record.instrument_title,
        },
        "authored": fhir_datetime(record.authored),
        "answers": {answer.link_id: answer.value for answer in record.answers},
        "scores": {
            "total": record.total,
            "total_max": record.total_max,
            "subscales": dict(record.subscales),
            "pomp": record.pomp,
        },
        "decision": record.decision,
        "reasons": list(record.reasons),
        "interpretation": record.interpretation,
    }


def _context(record: AllianceRecord) -> dict:
    return {
        "practice_id": record.practice_id,
        "patient_id": record.patient_id,
        "session_id": record.session_id,
    }


def _iso(epoch: float) -> str:
    return fhir_datetime(datetime.fromtimestamp(int(epoch), tz=UTC))

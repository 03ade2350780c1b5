"""The CDS Hooks service behind the routes (CONTRACT §8.1): who may call, what cards to show,
what feedback means.

The request path reads the database only: the practice (cached), one insert for the `jti`, and
one indexed read of the client's clinician state. It never calls the EHR.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from service.clinician.cards import ACKNOWLEDGED, CardSettings, build_cards
from service.clinician.cds_auth import TokenRefused, VerifiedToken, bearer_token, verify_cds_token
from service.domain.alert_actions import ACKNOWLEDGE
from service.domain.instruments import TOTAL
from service.persistence.queries import alert_actions, audit
from service.persistence.queries import clinician as queries
from service.practices import Practice

log = structlog.get_logger(__name__)

SERVICES = {"alliance-patient-view": "patient-view", "alliance-encounter-start": "encounter-start"}
PREFETCH = {"patient": "Patient/{{context.patientId}}"}
DESCRIPTIONS = {
    "patient-view": ("Therapeutic alliance",
                     "A rupture of the therapeutic alliance seen in the client's session surveys "
                     "(with the reasons), or else the latest alliance score and its direction."),
    "encounter-start": ("Therapeutic alliance before the session",
                        "The same, as the next session begins: the moment to raise a rupture "
                        "with the client."),
}
CLEAN_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Caller:
    """An authenticated CDS client of one practice."""

    practice: Practice
    token: VerifiedToken


def service_descriptions() -> dict:
    services = []
    for service_id, hook in SERVICES.items():
        title, description = DESCRIPTIONS[hook]
        services.append({"hook": hook, "id": service_id, "title": title,
                         "description": description, "prefetch": dict(PREFETCH)})
    return {"services": services}


class CdsHooks:
    """One per web app: the checks, the cards and the feedback, on the app's Services."""

    def __init__(self, services):
        self.services = services
        self._next_cleanup: datetime | None = None

    def authenticate(self, practice_id: str, authorization: str | None, audience: str) -> Caller:
        """The caller, or TokenRefused. An unknown practice has no clients, so it is refused
        exactly as a token from an unregistered issuer is: it does not reveal itself.

        The `jti` is checked by the operation the caller asks for, in its own transaction (one
        database round trip fewer per hook call): see `_remember`."""
        practice = self.services.practice(practice_id)
        section = (practice.document.get("cds_hooks") if practice else None) or {}
        token = verify_cds_token(bearer_token(authorization), clients=section.get("clients") or [],
                                 audience=audience, now=self.services.clock(),
                                 key_sets=self.services.cds_key_sets(
                                     practice.network if practice else None))
        return Caller(practice, token)

    def _remember(self, conn, caller: Caller) -> None:
        """Refuse a jti seen before (in any web process); forget expired ones now and then."""
        now = self.services.clock()
        if self._next_cleanup is None or now >= self._next_cleanup:
            self._next_cleanup = now + CLEAN_EVERY
            queries.forget_expired_token_ids(conn, now)
        key = hashlib.sha256(f"{caller.token.iss}\n{caller.token.jti}".encode()).hexdigest()
        if not queries.remember_token_id(conn, key, caller.token.expires_at):
            raise TokenRefused("jti", "this jti was used before: a token is good for one request")

    def discovery(self, caller: Caller) -> dict:
        with self.services.engine.begin() as conn:
            self._remember(conn, caller)
        return service_descriptions()

    def cards_for(self, caller: Caller, patient_id: str, user_id: str | None = None) -> dict:
        """The cards for one client; the read is audited in its own transaction (the `jti`
        insert makes it a write already, so the audit row adds an insert, not a commit)."""
        with self.services.engine.begin() as conn:
            self._remember(conn, caller)
            state = queries.card_state(conn, caller.practice.id, patient_id)
            audit.record(conn, [audit.Access(
                caller.practice.id, patient_id, _reader(caller, user_id), audit.CDS, audit.READ,
                "cards", state and state["card_uuid"])], self.services.clock())
        return {"cards": build_cards(state, self._card_settings(caller.practice, state))}

    def _card_settings(self, practice: Practice, state: Mapping | None) -> CardSettings:
        section = practice.document.get("cds_hooks") or {}
        launch = None
        if practice.document.get("smart_app"):
            launch = f"{self.services.settings.public_url}/smart/{practice.id}/launch"
        instrument = self.services.instruments().get(state["instrument_id"]) \
            if state and state["instrument_id"] else None
        return CardSettings(info_cards=section.get("info_cards", True),
                            timezone=practice.timezone, smart_launch_url=launch,
                            total_max=instrument.scale_range(TOTAL)[1] if instrument else None,
                            now=self.services.clock())

    def record_feedback(self, caller: Caller, service_id: str, items: list[dict]) -> dict:
        """Store each item; an `overridden` with reason `acknowledged` on a rupture card shown
        now also records an acknowledgment of that rupture (a repeated delivery adds nothing)."""
        now = self.services.clock()
        acknowledged = 0
        with self.services.engine.begin() as conn:
            self._remember(conn, caller)
            for item in items:
                row = self._feedback_row(caller, service_id, item, now)
                queries.add_feedback(conn, row)
                if _acknowledges(item) and self._acknowledge(conn, caller, item, row, now):
                    acknowledged += 1
        log.info("cds feedback stored", practice_id=caller.practice.id, service_id=service_id,
                 items=len(items), acknowledged=acknowledged)
        return {"stored": len(items), "acknowledged": acknowledged}

    def _feedback_row(self, caller: Caller, service_id: str, item: dict, now: datetime) -> dict:
        reason = (item.get("overrideReason") or {}).get("reason") or {}
        comment = (item.get("overrideReason") or {}).get("userComment")
        identity = json.dumps([caller.practice.id, service_id, caller.token.iss, item],
                              sort_keys=True, default=str)
        return dict(
            id=str(uuid.uuid4()), practice_id=caller.practice.id, service_id=service_id,
            client_iss=caller.token.iss[:500], card_uuid=item["card"], outcome=item["outcome"],
            reason_system=reason.get("system"), reason_code=reason.get("code"),
            # The clinician's free text may speak of the client: sealed as client data is.
            comment=self.services.vault.seal({"text": comment}) if comment else None,
            accepted_suggestions=[s["id"] for s in item.get("acceptedSuggestions") or []],
            outcome_at=item["outcomeTimestamp"], received_at=now,
            dedupe_key=hashlib.sha256(identity.encode()).hexdigest())

    def _acknowledge(self, conn, caller: Caller, item: dict, feedback: dict,
                     now: datetime) -> bool:
        state = queries.state_for_card(conn, caller.practice.id, item["card"])
        if state is None:
            return False  # not a rupture card shown now (repaired since, or another stage)
        alert_actions.add(conn, dict(
            id=str(uuid.uuid4()), practice_id=caller.practice.id, episode_id=state["episode_id"],
            action=ACKNOWLEDGE, actor=f"cds-client:{caller.token.iss}"[:500],
            source="cds-feedback", note=feedback["comment"], at=now,
            dedupe_key=f"cds-feedback:{feedback['dedupe_key']}"))
        return True


def _reader(caller: Caller, user_id: str | None) -> str:
    """The user the EHR names in the hook's context (it vouches for them: the call is signed),
    and the EHR itself."""
    client = f"cds-client:{caller.token.iss}"
    return f"{user_id} via {client}" if user_id else client


def _acknowledges(item: Mapping) -> bool:
    reason = (item.get("overrideReason") or {}).get("reason") or {}
    return item["outcome"] == "overridden" and reason.get("code") == ACKNOWLEDGED["code"]

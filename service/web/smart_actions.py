"""The SMART view's actions on the launch patient's open rupture: acknowledge and snooze
(CONTRACT §9.1; the rules are service/clinician/alert_actions.py).

Each form carries a single-use token signed with the SMART session, the episode and the action
(service/crypto.py FormSigner.action_token): a form posted from another site has no token, and
a replayed one finds its nonce stored as the action's dedupe key. Every check runs before
anything is stored, in the transaction that stores the action and its audit row; a refusal
rolls it back, so nothing changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from zoneinfo import ZoneInfo

import structlog

from service.clinician.alert_actions import (
    ACKNOWLEDGE,
    ALREADY_ACKNOWLEDGED,
    DONE,
    SNOOZE,
    SOURCE,
    ActionRefused,
    Entry,
    EpisodeActions,
    Limits,
    checked_days,
    checked_note,
    decide,
    moment_words,
)
from service.persistence.queries import alert_actions as queries
from service.persistence.queries import audit

log = structlog.get_logger(__name__)


def load(conn, services, practice, patient_id: str, episode_id: str) -> EpisodeActions:
    """The episode's actions with their notes opened (the caller's read is audited)."""
    rows = queries.actions_of(conn, practice.id, episode_id)
    entries = tuple(Entry(action=row["action"], actor=row["actor"], source=row["source"],
                          at=row["at"], until=row["until"],
                          note=services.vault.open(row["note"])["text"] if row["note"] else None)
                    for row in rows)
    return EpisodeActions(episode_id, entries,
                          queries.stage_since(conn, practice.id, patient_id, episode_id),
                          limits(practice), services.clock())


def limits(practice) -> Limits:
    return Limits(practice.alerts.max_snooze_days, practice.alerts.max_snoozes)


def tokens(services, session_key: str, episode_id: str) -> dict[str, str]:
    """A fresh single-use token for each action form of the view."""
    return {action: services.forms.action_token(session_key, episode_id, action)
            for action in (ACKNOWLEDGE, SNOOZE)}


def perform(services, practice, session, session_key: str, episode_id: str, action: str,
            form: Mapping[str, str]) -> str:
    """Check and store one action of the session's user; the view's status word after it."""
    nonce = services.forms.action_nonce(session_key, episode_id, action, form.get("token"))
    if nonce is None:
        raise ActionRefused(403, "This form cannot be used",
                            "The form's security token is missing, belongs to another sign-in "
                            "or another rupture, or was altered. Open the trend again and use "
                            "its buttons. Nothing was stored.")
    note = checked_note(form.get("note")) if action == ACKNOWLEDGE else None
    days = checked_days(form.get("days"), limits(practice)) if action == SNOOZE else None
    actor = reader(session)
    with services.engine.begin() as conn:
        _check_episode(conn, practice.id, session.patient_id, episode_id)
        if queries.dedupe_key_used(conn, _dedupe_key(nonce)):
            raise _replayed()
        state = load(conn, services, practice, session.patient_id, episode_id)
        until = decide(action, state, days)
        if until == ALREADY_ACKNOWLEDGED:
            return ALREADY_ACKNOWLEDGED
        _store(conn, services, practice.id, session.patient_id, episode_id, action, actor,
               note, until, nonce, state.now)
    log.info("alert action stored", practice_id=practice.id, action=action, source=SOURCE)
    return DONE[action]


def status_text(done: str | None, state: EpisodeActions | None,
                timezone: str) -> dict | None:
    """The message the view announces after an action (the `done` parameter): a short `title`
    (it leads the page title) and the `text`; None for no (or an unknown) action."""
    if done == DONE[ACKNOWLEDGE]:
        return {"title": "Acknowledged", "text": "Acknowledged. The EHR's card now says so; "
                "the rupture stays open until the alliance recovers."}
    if done == ALREADY_ACKNOWLEDGED:
        return {"title": "Already acknowledged",
                "text": "This rupture was already acknowledged; nothing was added."}
    if done == DONE[SNOOZE] and state is not None and state.snoozed_until is not None:
        until = moment_words(state.snoozed_until, ZoneInfo(timezone))
        return {"title": "Snoozed", "text": f"Snoozed until {until}: the EHR shows no card "
                "for this rupture until then."}
    return None


def _check_episode(conn, practice_id: str, patient_id: str, episode_id: str) -> None:
    episode = queries.episode_for_update(conn, practice_id, episode_id)
    if episode is None or episode.patient_id != patient_id:
        raise ActionRefused(403, "Not this patient's rupture",
                            "The rupture in the form is not one of the patient the EHR opened "
                            "the app for. Open the trend again from the patient's chart. "
                            "Nothing was stored.")
    if episode.status != "open":
        raise ActionRefused(409, "This rupture is no longer open",
                            "The alliance has recovered since the page was shown, so the "
                            "rupture is closed. Nothing was stored.")


def _replayed() -> ActionRefused:
    return ActionRefused(409, "This form was sent already",
                         "Each form of the trend works once, and this one has been used. Open "
                         "the trend again to see what was recorded. Nothing more was stored.")


def _store(conn, services, practice_id: str, patient_id: str, episode_id: str, action: str,
           actor: str, note: str | None, until, nonce: str, now) -> None:
    added = queries.add(conn, dict(
        id=str(uuid.uuid4()), practice_id=practice_id, episode_id=episode_id, action=action,
        actor=actor[:500], source=SOURCE, at=now, until=until, dedupe_key=_dedupe_key(nonce),
        # The clinician's free text may speak of the client: sealed as client data is.
        note=services.vault.seal({"text": note}) if note else None))
    if not added:
        raise _replayed()  # the same form, sent twice at once
    audit.record(conn, [audit.Access(practice_id, patient_id, actor, audit.SMART, audit.WRITE,
                                     f"alert {action}", episode_id)], now)


def _dedupe_key(nonce: str) -> str:
    return f"{SOURCE}:{nonce}"


def reader(session) -> str:
    """Who reads or acts: the signed-in user's FHIR reference, else the EHR that launched the
    app (the audit rows of reading the view and of acting on it name the same person)."""
    return session.fhir_user or f"smart-launch:{session.iss}"

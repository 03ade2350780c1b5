"""Alert governance for the command line: the what-if replay of a practice's rupture rules,
and the report of what was done about the alerts. Counts only leave here."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import structlog

from service.domain.governance import EpisodeActivity, GovernanceReport, governance_report
from service.domain.instruments import Instrument
from service.domain.rupture_rules import RuptureRules
from service.domain.what_if import ReplayedSession, WhatIf, proposed_rules, what_if
from service.handlers.ports import Ports
from service.handlers.writeback import stored_observation
from service.persistence.queries import audit, governance

log = structlog.get_logger(__name__)


class UnknownPractice(LookupError):
    """No practice with that id."""


class NoHistory(LookupError):
    """The practice has no stored survey history to replay."""


class RefusedChanges(ValueError):
    """Proposed rule changes the rules' own validation refuses (names each)."""


class UnknownInstruments(LookupError):
    """The history uses instruments the catalogue no longer holds (their ids)."""


def what_if_rules(ports: Ports, practice_id: str, changes: Mapping[str, object],
                  actor: str) -> tuple[WhatIf, RuptureRules, RuptureRules]:
    """The practice's history replayed under its rules and under them with `changes`:
    (the counts, the current rules, the proposed rules). RefusedChanges names bad changes
    (nothing read); reading the history writes one audit row in the same transaction."""
    practice = ports.practice(practice_id)
    if practice is None:
        raise UnknownPractice(practice_id)
    current = RuptureRules.from_overrides(practice.rupture_rules)
    try:
        proposed = proposed_rules(practice.rupture_rules, changes)
    except ValueError as error:
        raise RefusedChanges(str(error)) from None
    with ports.engine.begin() as conn:
        histories = governance.practice_histories(conn, practice_id)
        if histories:
            audit.record(conn, [audit.Access(practice_id, None, actor, audit.CLI, audit.READ,
                                             "rupture what-if")], ports.clock())
    if not histories:
        raise NoHistory(practice_id)
    instruments = ports.instruments()
    replayed = (_sessions(governance.opened_history(ports.vault, history), instruments)
                for history in histories)  # one client's answers in the clear at a time
    result = what_if(replayed, current, proposed)
    log.info("rupture what-if replayed", practice_id=practice_id, clients=result.clients,
             sessions=result.sessions, changed=sorted(changes))
    return result, current, proposed


def _sessions(history: list[dict], instruments: Mapping[str, Instrument]) -> list[ReplayedSession]:
    missing = sorted({row["instrument_id"] for row in history} - set(instruments))
    if missing:
        raise UnknownInstruments(missing)
    return [ReplayedSession(instruments[row["instrument_id"]],
                            stored_observation(row, instruments[row["instrument_id"]]))
            for row in history]


def alerts_report(ports: Ports, practice_id: str | None,
                  since: datetime | None) -> GovernanceReport:
    """The governance figures of the episodes opened since `since` (of one practice, or all)."""
    with ports.engine.begin() as conn:
        activity = [EpisodeActivity(row["practice_id"], row["opened_at"],
                                    row["status"] == "resolved", row["first_acknowledged_at"],
                                    bool(row["snoozed"]), bool(row["escalated"]))
                    for row in governance.episode_activity(conn, practice_id, since)]
    return governance_report(activity)

"""A client's rights over their data, for the command line: everything the service holds on
them, exported or erased, each recorded in the audit log in the same transaction."""

from __future__ import annotations

import structlog
from sqlalchemy import Connection

from service.clinician.cards import info_card_uuid, rupture_card_uuid
from service.clinician.clinician_state import OPEN_STAGES
from service.handlers.ports import Ports
from service.persistence.queries import audit, erasure

log = structlog.get_logger(__name__)


def export_client(ports: Ports, practice_id: str, patient_id: str, actor: str) -> dict | None:
    """Everything held on the client, opened; None (and no audit row) when nothing is held."""
    with ports.engine.begin() as conn:
        found = erasure.export_client(conn, ports.vault, practice_id, patient_id,
                                      _card_uuids(conn, practice_id, patient_id))
        if found is not None:
            audit.record(conn, [audit.Access(practice_id, patient_id, actor, audit.CLI,
                                             audit.EXPORT, "everything held")], ports.clock())
    log.info("client exported", practice_id=practice_id, found=found is not None)
    return found


def erase_client(ports: Ports, practice_id: str, patient_id: str,
                 actor: str) -> tuple[dict[str, int], list[str]]:
    """Delete everything held on the client: (counts by table, references to the alert
    resources that stay in the EHR). One transaction, with its audit row."""
    with ports.engine.begin() as conn:
        kept = erasure.alerts_in_the_ehr(conn, practice_id, patient_id)
        counts = erasure.erase_client(conn, practice_id, patient_id,
                                      _card_uuids(conn, practice_id, patient_id))
        audit.record(conn, [audit.Access(practice_id, patient_id, actor, audit.CLI,
                                         audit.ERASE, "everything held")], ports.clock())
    log.info("client erased", practice_id=practice_id, rows=sum(counts.values()))
    return counts, kept


def _card_uuids(conn: Connection, practice_id: str, patient_id: str) -> list[str]:
    """Every CDS card uuid the client's data can have produced: rupture cards per episode and
    stage, information cards per session (and the one before any)."""
    episodes, sessions = erasure.card_keys(conn, practice_id, patient_id)
    rupture = [rupture_card_uuid(practice_id, episode, stage)
               for episode in episodes for stage in OPEN_STAGES]
    info = [info_card_uuid(practice_id, patient_id, when) for when in [*sessions, None]]
    return rupture + info

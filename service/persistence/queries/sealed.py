"""Everything stored encrypted, re-encrypted as a whole under the newest key (key rotation).

Each sealed column holds Fernet tokens, whatever they hold inside (a JSON document such as a
practice document or the answers, or a single text such as a phone number), so rotating one
never needs to know its shape: only which box sealed it. A new sealed column is one line here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Column, Connection, Table, bindparam, select, tuple_, update

from service.crypto import SecretBox
from service.persistence.tables import (
    alert_actions,
    cds_feedback,
    clients,
    practices,
    responses,
    smart_launches,
    webhook_events,
)

PRACTICE, CLIENT = "practice", "client"  # the practice-secrets box, the client-data vault
BATCH = 500


@dataclass(frozen=True)
class SealedColumn:
    table: Table
    column: Column
    box: str  # PRACTICE or CLIENT

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column.name}"


SEALED_COLUMNS = (
    SealedColumn(practices, practices.c.sealed_document, PRACTICE),
    SealedColumn(smart_launches, smart_launches.c.sealed_verifier, PRACTICE),
    SealedColumn(clients, clients.c.sealed_phone, CLIENT),
    SealedColumn(clients, clients.c.sealed_email, CLIENT),
    SealedColumn(webhook_events, webhook_events.c.sealed_payload, CLIENT),
    SealedColumn(responses, responses.c.sealed_answers, CLIENT),
    SealedColumn(cds_feedback, cds_feedback.c.comment, CLIENT),
    SealedColumn(alert_actions, alert_actions.c.note, CLIENT),
)


def reseal_all(conn: Connection, boxes: Mapping[str, SecretBox]) -> dict[str, int]:
    """Rewrite every sealed value under the newest key; counts by column ("table.column").

    Read and written in batches of BATCH rows, in key order, so memory stays small; the
    caller's transaction makes it all or nothing.
    """
    return {sealed.name: _reseal_column(conn, sealed, boxes[sealed.box])
            for sealed in SEALED_COLUMNS}


def _reseal_column(conn: Connection, sealed: SealedColumn, box: SecretBox) -> int:
    keys = list(sealed.table.primary_key.columns)
    statement = update(sealed.table).where(
        *(key == bindparam(f"k_{key.name}") for key in keys)).values(
        {sealed.column.name: bindparam("v_sealed")})
    done, after = 0, None
    while True:
        query = (select(*keys, sealed.column).where(sealed.column.is_not(None))
                 .order_by(*keys).limit(BATCH))
        if after is not None:
            query = query.where(tuple_(*keys) > tuple_(*after))
        rows = conn.execute(query).all()
        if not rows:
            return done
        conn.execute(statement, [
            {**{f"k_{key.name}": row[i] for i, key in enumerate(keys)},
             "v_sealed": box.reseal(row[-1])} for row in rows])
        done, after = done + len(rows), tuple(rows[-1][:-1])

"""Clients' data encrypted at rest, the phone's keyed hash, contact retention, the audit log

Phone numbers, e-mail addresses, event payloads (which may carry contact details) and answers
(which carry free text) move into `sealed_*` columns, encrypted with the client-data key; the
plaintext columns are dropped. Clinicians' free text (the CDS feedback comment, an alert
action's note), sealed with the practice-secret key until now, is sealed again with the
client-data key. Existing rows are encrypted here, so the keys are needed when
there are rows: `alliance db upgrade` passes them (ALLIANCE_SECRET_KEY[S]).

Revision ID: 0007_data_at_rest
Revises: 0006_security_findings
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

import service.persistence.types

revision = "0007_data_at_rest"
down_revision = "0006_security_findings"
branch_labels = None
depends_on = None

BATCH = 500


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, service.persistence.types.UtcDateTime(timezone=True), nullable=nullable)


class _Vault:
    """The client-data vault (and, as `.practice_box`, the practice-secret box), made on first
    use (an empty database needs no key) from the keys the caller passed, else from the
    environment (ALLIANCE_SECRET_KEY[S])."""

    def __init__(self):
        self._vault = self.practice_box = None

    def __call__(self):
        if self._vault is None:
            from service.config import Settings
            from service.crypto import ClientVault, KeyRing, SecretBox

            keys = KeyRing(context.config.attributes.get("secret_keys")
                           or Settings.from_env().secret_keys)
            self._vault, self.practice_box = ClientVault(keys), SecretBox(keys)
        return self._vault


_clients = sa.table("clients", sa.column("practice_id"), sa.column("patient_id"),
                    sa.column("phone"), sa.column("email"), sa.column("sealed_phone"),
                    sa.column("sealed_email"), sa.column("phone_hash"),
                    _when("updated_at"), _when("last_session_at"))
_events = sa.table("webhook_events", sa.column("id"), sa.column("payload", sa.JSON),
                   sa.column("sealed_payload"), sa.column("has_contact", sa.Boolean))
_responses = sa.table("responses", sa.column("id"), sa.column("answers", sa.JSON),
                      sa.column("sealed_answers"))


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("sealed_phone", sa.Text(), nullable=True))
        batch.add_column(sa.Column("sealed_email", sa.Text(), nullable=True))
        batch.add_column(sa.Column("phone_hash", sa.String(length=64), nullable=True))
        batch.add_column(_when("last_session_at"))
    with op.batch_alter_table("webhook_events") as batch:
        batch.add_column(sa.Column("sealed_payload", sa.Text(), nullable=True))
        batch.add_column(sa.Column("has_contact", sa.Boolean(), nullable=True))
    with op.batch_alter_table("responses") as batch:
        batch.add_column(sa.Column("sealed_answers", sa.Text(), nullable=True))

    conn, vault = op.get_bind(), _Vault()
    sealed = _seal_clients(conn, vault) + _seal_events(conn, vault) + _seal_answers(conn, vault)
    _reseal_clinician_text(conn, vault, to_client_key=True)
    # For `alliance db upgrade`: rows were plaintext, so freed pages may still hold their text.
    context.config.attributes["rows_sealed"] = sealed

    with op.batch_alter_table("clients") as batch:
        batch.drop_column("phone")
        batch.drop_column("email")
        batch.create_index("ix_clients_phone_hash", ["practice_id", "phone_hash"])
    with op.batch_alter_table("webhook_events") as batch:
        batch.alter_column("sealed_payload", existing_type=sa.Text(), nullable=False)
        batch.alter_column("has_contact", existing_type=sa.Boolean(), nullable=False)
        batch.drop_column("payload")
    with op.batch_alter_table("responses") as batch:
        batch.alter_column("sealed_answers", existing_type=sa.Text(), nullable=False)
        batch.drop_column("answers")

    op.create_table(
        "audit_log",
        sa.Column("id", sa.String(length=36), nullable=False),
        _when("at", False),
        sa.Column("practice_id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=200), nullable=True),
        sa.Column("actor", sa.String(length=500), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("what", sa.String(length=100), nullable=False),
        sa.Column("ref", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_practice_at", "audit_log", ["practice_id", "at"])
    op.create_index("ix_audit_log_patient", "audit_log", ["practice_id", "patient_id"])


def _seal_clients(conn, vault) -> int:
    from integrations.delivery.contact import normalize_phone

    rows = conn.execute(sa.select(_clients.c.practice_id, _clients.c.patient_id,
                                  _clients.c.phone, _clients.c.email,
                                  _clients.c.updated_at)).all()
    changes = []
    for practice_id, patient_id, phone, email, updated_at in rows:
        e164 = normalize_phone(phone)
        changes.append({
            "k_practice": practice_id, "k_patient": patient_id,
            "sealed_phone": vault().seal_text(phone) if phone else None,
            "sealed_email": vault().seal_text(email) if email else None,
            "phone_hash": vault().phone_digest(practice_id, e164) if e164 else None,
            # The best the old rows know: the last change, at the latest the last session.
            "last_session_at": updated_at,
        })
    _update(conn, sa.update(_clients).where(
        _clients.c.practice_id == sa.bindparam("k_practice"),
        _clients.c.patient_id == sa.bindparam("k_patient")), changes)
    return len(changes)


def _seal_events(conn, vault) -> int:
    rows = conn.execute(sa.select(_events.c.id, _events.c.payload)).all()
    changes = [{"k_id": event_id, "sealed_payload": vault().seal(payload or {}),
                "has_contact": _has_contact(payload)} for event_id, payload in rows]
    _update(conn, sa.update(_events).where(_events.c.id == sa.bindparam("k_id")), changes)
    return len(changes)


def _seal_answers(conn, vault) -> int:
    rows = conn.execute(sa.select(_responses.c.id, _responses.c.answers)).all()
    changes = [{"k_id": response_id, "sealed_answers": vault().seal(answers)}
               for response_id, answers in rows]
    _update(conn, sa.update(_responses).where(_responses.c.id == sa.bindparam("k_id")), changes)
    return len(changes)


_CLINICIAN_TEXT = (("cds_feedback", "comment"), ("alert_actions", "note"))


def _reseal_clinician_text(conn, vault, *, to_client_key: bool) -> None:
    """Clinicians' free text from the practice-secret box to the client-data vault, or back."""
    for name, column in _CLINICIAN_TEXT:
        table = sa.table(name, sa.column("id"), sa.column(column))
        rows = conn.execute(sa.select(table.c.id, table.c[column])
                            .where(table.c[column].is_not(None))).all()
        if not rows:
            continue
        client_box = vault()  # makes vault.practice_box as well
        source, target = ((vault.practice_box, client_box) if to_client_key
                          else (client_box, vault.practice_box))
        _update(conn, sa.update(table).where(table.c.id == sa.bindparam("k_id")),
                [{"k_id": row_id, column: target.seal(source.open(sealed))}
                 for row_id, sealed in rows])


def _has_contact(payload) -> bool:
    session = payload.get("session") if isinstance(payload, dict) else None
    if not isinstance(session, dict):
        return False
    contact = session.get("contact") or {}
    return bool(session.get("phone") or session.get("email")
                or (isinstance(contact, dict) and (contact.get("phone") or contact.get("email"))))


def _update(conn, statement, changes: list[dict]) -> None:
    for start in range(0, len(changes), BATCH):
        conn.execute(statement, changes[start:start + BATCH])


def downgrade() -> None:
    op.drop_index("ix_audit_log_patient", table_name="audit_log")
    op.drop_index("ix_audit_log_practice_at", table_name="audit_log")
    op.drop_table("audit_log")
    with op.batch_alter_table("clients") as batch:
        batch.drop_index("ix_clients_phone_hash")
        batch.add_column(sa.Column("phone", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("email", sa.String(length=320), nullable=True))
    with op.batch_alter_table("webhook_events") as batch:
        batch.add_column(sa.Column("payload", sa.JSON(), nullable=True))
    with op.batch_alter_table("responses") as batch:
        batch.add_column(sa.Column("answers", sa.JSON(), nullable=True))
    vault = _Vault()
    _open_all(op.get_bind(), vault)
    _reseal_clinician_text(op.get_bind(), vault, to_client_key=False)
    with op.batch_alter_table("clients") as batch:
        for name in ("sealed_phone", "sealed_email", "phone_hash", "last_session_at"):
            batch.drop_column(name)
    with op.batch_alter_table("webhook_events") as batch:
        batch.alter_column("payload", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("sealed_payload")
        batch.drop_column("has_contact")
    with op.batch_alter_table("responses") as batch:
        batch.alter_column("answers", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("sealed_answers")


def _open_all(conn, vault) -> None:
    """Decrypt back into the plaintext columns (a downgrade puts the data back as it was)."""
    clients = conn.execute(sa.select(_clients.c.practice_id, _clients.c.patient_id,
                                     _clients.c.sealed_phone, _clients.c.sealed_email)).all()
    _update(conn, sa.update(_clients).where(
        _clients.c.practice_id == sa.bindparam("k_practice"),
        _clients.c.patient_id == sa.bindparam("k_patient")),
        [{"k_practice": p, "k_patient": c, "phone": vault().open_text(phone),
          "email": vault().open_text(email)} for p, c, phone, email in clients])
    events = conn.execute(sa.select(_events.c.id, _events.c.sealed_payload)).all()
    _update(conn, sa.update(_events).where(_events.c.id == sa.bindparam("k_id")),
            [{"k_id": i, "payload": vault().open(sealed)} for i, sealed in events])
    answers = conn.execute(sa.select(_responses.c.id, _responses.c.sealed_answers)).all()
    _update(conn, sa.update(_responses).where(_responses.c.id == sa.bindparam("k_id")),
            [{"k_id": i, "answers": vault().open(sealed)} for i, sealed in answers])

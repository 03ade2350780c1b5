"""Security review (issue 12): who opted a client out, inbound SMS already acted on, and survey
messages in flight

Revision ID: 0006_security_findings
Revises: 0005_cds_hooks
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.persistence.types

revision = "0006_security_findings"
down_revision = "0005_cds_hooks"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, service.persistence.types.UtcDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("opted_out_by", sa.String(length=8), nullable=True))
    op.create_table(
        "inbound_sms",
        sa.Column("practice_id", sa.String(length=64), nullable=False),
        sa.Column("message_sid", sa.String(length=64), nullable=False),
        _when("received_at", False),
        sa.PrimaryKeyConstraint("practice_id", "message_sid", name=op.f("pk_inbound_sms")),
    )
    op.create_table(
        "sends_in_flight",
        sa.Column("survey_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        _when("started_at", False),
        sa.PrimaryKeyConstraint("survey_id", "kind", "channel", name=op.f("pk_sends_in_flight")),
    )


def downgrade() -> None:
    op.drop_table("sends_in_flight")
    op.drop_table("inbound_sms")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("opted_out_by")

"""alert actions from the SMART view: a snooze's end (`until`)

Revision ID: 0010_alert_snooze
Revises: 0009_escalations
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.persistence.types

revision = "0010_alert_snooze"
down_revision = "0009_escalations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alert_actions", schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            "until", service.persistence.types.UtcDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alert_actions", schema=None) as batch_op:
        batch_op.drop_column("until")

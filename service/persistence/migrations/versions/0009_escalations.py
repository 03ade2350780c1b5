"""Tasks written for rupture episodes: the alert Task (alerts.write `task`) and the escalation
to the practice's supervisor (CONTRACT §9.1), with the EHR's id and version of each

Revision ID: 0009_escalations
Revises: 0008_alert_documents
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.persistence.types

revision = "0009_escalations"
down_revision = "0008_alert_documents"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, service.persistence.types.UtcDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "episode_tasks",
        sa.Column("episode_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("practice_id", sa.String(length=64), nullable=False),
        sa.Column("task_id", sa.String(length=200), nullable=False),
        sa.Column("task_version", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        _when("unresolved_since"),
        _when("created_at", False),
        _when("completed_at"),
        _when("emailed_at"),
        sa.PrimaryKeyConstraint("episode_id", "kind", name=op.f("pk_episode_tasks")),
    )
    with op.batch_alter_table("episode_tasks", schema=None) as batch_op:
        batch_op.create_index("ix_episode_tasks_status", ["status", "kind"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("episode_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_episode_tasks_status")
    op.drop_table("episode_tasks")

"""poll cursors: where each practice's FHIR polling resumes

Revision ID: 0002_poll_cursor
Revises: 0001
Create Date: 2026-11-29 18:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.persistence.types

revision = "0002_poll_cursor"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "poll_cursors",
        sa.Column("practice_id", sa.String(length=64), nullable=False),
        sa.Column("resource", sa.String(length=32), nullable=False),
        sa.Column("cursor", service.persistence.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("polled_at", service.persistence.types.UtcDateTime(timezone=True),
                  nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("practice_id", "resource", name=op.f("pk_poll_cursors")),
    )


def downgrade() -> None:
    op.drop_table("poll_cursors")

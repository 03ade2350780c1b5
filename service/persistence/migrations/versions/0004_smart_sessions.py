"""SMART trend app: launch state and server-side sessions

Revision ID: 0004_smart_sessions
Revises: 0003_practice_api_keys
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.persistence.types

revision = "0004_smart_sessions"
down_revision = "0003_practice_api_keys"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, service.persistence.types.UtcDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "smart_launches",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("practice_id", sa.String(length=64), nullable=False),
        sa.Column("browser_hash", sa.String(length=64), nullable=False),
        sa.Column("iss", sa.String(length=500), nullable=False),
        sa.Column("launch", sa.String(length=500), nullable=True),
        sa.Column("sealed_verifier", sa.Text(), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        _when("created_at", False),
        _when("expires_at", False),
        _when("used_at"),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_smart_launches")),
    )
    op.create_index("ix_smart_launches_expiry", "smart_launches", ["expires_at"])
    op.create_table(
        "smart_sessions",
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("practice_id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=200), nullable=False),
        sa.Column("fhir_user", sa.String(length=500), nullable=True),
        sa.Column("iss", sa.String(length=500), nullable=False),
        _when("created_at", False),
        _when("expires_at", False),
        sa.PrimaryKeyConstraint("session_hash", name=op.f("pk_smart_sessions")),
    )
    op.create_index("ix_smart_sessions_expiry", "smart_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_smart_sessions_expiry", table_name="smart_sessions")
    op.drop_table("smart_sessions")
    op.drop_index("ix_smart_launches_expiry", table_name="smart_launches")
    op.drop_table("smart_launches")

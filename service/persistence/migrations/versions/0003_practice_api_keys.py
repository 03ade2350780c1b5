"""practice API keys for the alerts API

Revision ID: 0003_practice_api_keys
Revises: 0002_poll_cursor
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.persistence.types

revision = "0003_practice_api_keys"
down_revision = "0002_poll_cursor"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "practice_api_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("practice_id", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("created_at", service.persistence.types.UtcDateTime(timezone=True),
                  nullable=False),
        sa.Column("revoked_at", service.persistence.types.UtcDateTime(timezone=True),
                  nullable=True),
        sa.ForeignKeyConstraint(["practice_id"], ["practices.id"],
                                name=op.f("fk_practice_api_keys_practice_id_practices")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_practice_api_keys")),
    )
    with op.batch_alter_table("practice_api_keys", schema=None) as batch_op:
        batch_op.create_index("ix_api_keys_practice", ["practice_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("practice_api_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_api_keys_practice")
    op.drop_table("practice_api_keys")

"""Alert documents: where a rupture episode's latest DocumentReference is (alerts.write document)

An open rupture is written as a DocumentReference with a one-page PDF of the trend; each new
one (the words changed, or the rupture was repaired) replaces the one before, so the episode
keeps the latest's id and version (for If-Match when it is superseded) and how many it has had
(the next one's identifier is `{episode id}.{number}`).

Revision ID: 0008_alert_documents
Revises: 0007_data_at_rest
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_alert_documents"
down_revision = "0007_data_at_rest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rupture_episodes") as batch:
        batch.add_column(sa.Column("document_id", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("document_version", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("document_number", sa.Integer(), nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("rupture_episodes") as batch:
        batch.drop_column("document_number")
        batch.drop_column("document_version")
        batch.drop_column("document_id")

"""Sync: the confirmed object URL of each asset, and chunked upload jobs that survive a crash.

Revision ID: 0003_sync
Revises: 0002_rid_pool
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_sync"
down_revision = "0002_rid_pool"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assets") as batch:
        batch.add_column(sa.Column("object_url", sa.Text(), nullable=True))
    op.create_table(
        "upload_jobs",
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("job", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("url", name=op.f("pk_upload_jobs")),
    )


def downgrade() -> None:
    op.drop_table("upload_jobs")
    with op.batch_alter_table("assets") as batch:
        batch.drop_column("object_url")

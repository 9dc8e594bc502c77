"""The sync history and the cache pins.

``sync_log`` keeps one row per push, pull, bundle export or bundle import:
written when it starts (``outcome = 'running'``) and completed when it ends,
so a sync whose process died shows as one that never finished. ``cache_pins``
names the assets whose bytes ``satchel gc`` must keep even once the server
has them (``satchel get --pin``, ``download_asset(use_cache=True)``).

Revision ID: 0011_sync_log_pins
Revises: 0010_bundles
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_sync_log_pins"
down_revision = "0010_bundles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("remote", sa.Text(), nullable=True),
        sa.Column("started_at", sa.String(40), nullable=False),
        sa.Column("finished_at", sa.String(40), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sync_log"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "cache_pins",
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("pinned_at", sa.String(40), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], name="fk_cache_pins_asset_id_assets"),
        sa.PrimaryKeyConstraint("asset_id", name="pk_cache_pins"),
    )


def downgrade() -> None:
    op.drop_table("cache_pins")
    op.drop_table("sync_log")

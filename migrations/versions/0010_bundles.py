"""Air-gap bundles: the bundles this store wrote or took in, and the rows that came in them.

``bundles`` keeps one row per bundle imported (``direction = 'import'``, its id
makes a second import of it a no-op) or exported. ``bundle_rows`` names every
workflow, execution and asset that came in a bundle, so that the store can
later tell the store that sent them what became of them (``--for-offline``
bundles carry those confirmations back).

Revision ID: 0010_bundles
Revises: 0009_term_rids
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_bundles"
down_revision = "0009_term_rids"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bundles",
        sa.Column("bundle_id", sa.String(64), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("peer_store", sa.String(64), nullable=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("recorded_at", sa.String(40), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("bundle_id", "direction", name="pk_bundles"),
    )
    op.create_table(
        "bundle_rows",
        sa.Column("rid", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("bundle_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("rid", name="pk_bundle_rows"),
    )


def downgrade() -> None:
    op.drop_table("bundle_rows")
    op.drop_table("bundles")

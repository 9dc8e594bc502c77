"""Indexes on sync_state: status and the push plan count unsynced rows without scanning every row.

Revision ID: 0005_sync_state_indexes
Revises: 0004_conflicts
"""

from __future__ import annotations

from alembic import op

revision = "0005_sync_state_indexes"
down_revision = "0004_conflicts"
branch_labels = None
depends_on = None

TABLES = ("assets", "asset_tags", "asset_links", "executions", "workflows", "vocabulary_terms")


def upgrade() -> None:
    for table in TABLES:
        op.create_index(op.f(f"ix_{table}_sync_state"), table, ["sync_state"], unique=False)


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(op.f(f"ix_{table}_sync_state"), table_name=table)

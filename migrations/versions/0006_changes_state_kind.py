"""Outbox counts by kind from an index: status counts pending changes without reading every row.

Revision ID: 0006_changes_state_kind
Revises: 0005_sync_state_indexes
"""

from __future__ import annotations

from alembic import op

revision = "0006_changes_state_kind"
down_revision = "0005_sync_state_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_changes_state_kind", "changes", ["state", "kind"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_changes_state_kind", table_name="changes")

"""RID pool: RIDs leased from the catalog while online, used by rows created offline.

Revision ID: 0002_rid_pool
Revises: 0001_journal
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002_rid_pool'
down_revision = '0001_journal'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rid_pool',
    sa.Column('rid', sa.String(length=64), nullable=False),
    sa.Column('lease_id', sa.String(length=64), nullable=False),
    sa.Column('leased_at', sa.String(length=40), nullable=False),
    sa.Column('used_by', sa.String(length=16), nullable=True),
    sa.PrimaryKeyConstraint('rid', name=op.f('pk_rid_pool')),
    sa.UniqueConstraint('lease_id', name=op.f('uq_rid_pool_lease_id'))
    )


def downgrade() -> None:
    op.drop_table('rid_pool')

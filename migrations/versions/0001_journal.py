"""The journal: executions, workflows, assets, tags, links, vocabulary, outbox.

Revision ID: 0001_journal
Revises: None
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001_journal'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('asset_tables',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('schema_name', sa.String(length=200), nullable=True),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('metadata_columns', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_asset_tables'))
    )
    op.create_table('assets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rid', sa.String(length=64), nullable=False),
    sa.Column('remote_rid', sa.String(length=64), nullable=True),
    sa.Column('asset_table', sa.String(length=200), nullable=False),
    sa.Column('filename', sa.Text(), nullable=False),
    sa.Column('length', sa.BigInteger(), nullable=False),
    sa.Column('md5', sa.String(length=32), nullable=False),
    sa.Column('blake3', sa.String(length=64), nullable=True),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('asset_metadata', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.String(length=40), nullable=False),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('sync_state', sa.String(length=16), nullable=False),
    sa.Column('sync_error', sa.Text(), nullable=True),
    sa.Column('remote_description', sa.Text(), nullable=True),
    sa.Column('remote_rmt', sa.String(length=40), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assets')),
    sa.UniqueConstraint('asset_table', 'url', name=op.f('uq_assets_asset_table_url')),
    sa.UniqueConstraint('rid', name=op.f('uq_assets_rid'))
    )
    op.create_index('ix_assets_blake3', 'assets', ['blake3'], unique=False)
    op.create_index('ix_assets_md5', 'assets', ['md5'], unique=False)
    op.create_index(op.f('ix_assets_remote_rid'), 'assets', ['remote_rid'], unique=False)
    op.create_table('changes',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('entity_kind', sa.String(length=16), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_changes'))
    )
    op.create_index('ix_changes_state_seq', 'changes', ['state', 'seq'], unique=False)
    op.create_table('rid_aliases',
    sa.Column('alias', sa.String(length=64), nullable=False),
    sa.Column('rid', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('alias', name=op.f('pk_rid_aliases'))
    )
    op.create_index(op.f('ix_rid_aliases_rid'), 'rid_aliases', ['rid'], unique=False)
    op.create_table('store_info',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_store_info'))
    )
    op.create_table('vocabulary_terms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('vocabulary', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('synonyms', sa.JSON(), nullable=False),
    sa.Column('remote_rid', sa.String(length=64), nullable=True),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('sync_state', sa.String(length=16), nullable=False),
    sa.Column('sync_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vocabulary_terms')),
    sa.UniqueConstraint('vocabulary', 'name', name=op.f('uq_vocabulary_terms_vocabulary_name'))
    )
    op.create_table('workflows',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rid', sa.String(length=64), nullable=False),
    sa.Column('remote_rid', sa.String(length=64), nullable=True),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('checksum', sa.String(length=128), nullable=True),
    sa.Column('version', sa.String(length=64), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('workflow_type', sa.String(length=200), nullable=True),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('sync_state', sa.String(length=16), nullable=False),
    sa.Column('sync_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflows')),
    sa.UniqueConstraint('rid', name=op.f('uq_workflows_rid'))
    )
    op.create_index(op.f('ix_workflows_checksum'), 'workflows', ['checksum'], unique=False)
    op.create_index(op.f('ix_workflows_remote_rid'), 'workflows', ['remote_rid'], unique=False)
    op.create_table('asset_tags',
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('term', sa.String(length=200), nullable=False),
    sa.Column('sync_state', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_asset_tags_asset_id_assets')),
    sa.PrimaryKeyConstraint('asset_id', 'term', name=op.f('pk_asset_tags'))
    )
    op.create_index(op.f('ix_asset_tags_term'), 'asset_tags', ['term'], unique=False)
    op.create_table('executions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rid', sa.String(length=64), nullable=False),
    sa.Column('remote_rid', sa.String(length=64), nullable=True),
    sa.Column('workflow_id', sa.Integer(), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('status_detail', sa.Text(), nullable=True),
    sa.Column('configuration', sa.JSON(), nullable=False),
    sa.Column('working_dir', sa.Text(), nullable=True),
    sa.Column('created_at', sa.String(length=40), nullable=False),
    sa.Column('start_time', sa.String(length=40), nullable=True),
    sa.Column('stop_time', sa.String(length=40), nullable=True),
    sa.Column('execution_duration', sa.Float(), nullable=True),
    sa.Column('commit_time', sa.String(length=40), nullable=True),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('sync_state', sa.String(length=16), nullable=False),
    sa.Column('sync_error', sa.Text(), nullable=True),
    sa.Column('remote_status', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflows.id'], name=op.f('fk_executions_workflow_id_workflows')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_executions')),
    sa.UniqueConstraint('rid', name=op.f('uq_executions_rid'))
    )
    op.create_index(op.f('ix_executions_remote_rid'), 'executions', ['remote_rid'], unique=False)
    op.create_table('asset_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('execution_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('remote_rid', sa.String(length=64), nullable=True),
    sa.Column('sync_state', sa.String(length=16), nullable=False),
    sa.Column('sync_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_asset_links_asset_id_assets')),
    sa.ForeignKeyConstraint(['execution_id'], ['executions.id'], name=op.f('fk_asset_links_execution_id_executions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_asset_links')),
    sa.UniqueConstraint('asset_id', 'execution_id', name=op.f('uq_asset_links_asset_id_execution_id'))
    )
    op.create_index(op.f('ix_asset_links_execution_id'), 'asset_links', ['execution_id'], unique=False)
    op.create_table('execution_status_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('execution_id', sa.Integer(), nullable=False),
    sa.Column('from_status', sa.String(length=32), nullable=True),
    sa.Column('to_status', sa.String(length=32), nullable=False),
    sa.Column('at', sa.String(length=40), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['execution_id'], ['executions.id'], name=op.f('fk_execution_status_events_execution_id_executions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_execution_status_events'))
    )
    op.create_index(op.f('ix_execution_status_events_execution_id'), 'execution_status_events', ['execution_id'], unique=False)
    op.create_table('registrations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('execution_id', sa.Integer(), nullable=False),
    sa.Column('asset_table', sa.String(length=200), nullable=False),
    sa.Column('file_name', sa.Text(), nullable=False),
    sa.Column('staged_path', sa.Text(), nullable=False),
    sa.Column('source_path', sa.Text(), nullable=True),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('asset_types', sa.JSON(), nullable=False),
    sa.Column('asset_metadata', sa.JSON(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('asset_id', sa.Integer(), nullable=True),
    sa.Column('registered_at', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_registrations_asset_id_assets')),
    sa.ForeignKeyConstraint(['execution_id'], ['executions.id'], name=op.f('fk_registrations_execution_id_executions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registrations')),
    sa.UniqueConstraint('execution_id', 'asset_table', 'file_name', name=op.f('uq_registrations_execution_id_asset_table_file_name'))
    )
    op.create_index(op.f('ix_registrations_execution_id'), 'registrations', ['execution_id'], unique=False)

def downgrade() -> None:
    op.drop_table('registrations')
    op.drop_table('execution_status_events')
    op.drop_table('asset_links')
    op.drop_table('executions')
    op.drop_table('asset_tags')
    op.drop_table('workflows')
    op.drop_table('vocabulary_terms')
    op.drop_table('store_info')
    op.drop_table('rid_aliases')
    op.drop_table('changes')
    op.drop_table('assets')
    op.drop_table('asset_tables')

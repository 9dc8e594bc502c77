"""A smaller journal: committed registrations and done outbox rows are not kept; indexes that no query used go.

* ``registrations``: a row is deleted by the commit that makes its asset (a
  trigger on ``asset_id``, in the commit's transaction). A name already
  committed as an ``Output`` of the execution is refused by a trigger that
  looks in ``assets``/``asset_links`` (``ix_assets_filename``), as the unique
  key refused it while committed rows were kept. Ids are ``AUTOINCREMENT``:
  an id read by one commit never names a later registration.
* ``changes``: a row marked ``done`` is deleted (a trigger); ``seq`` is
  ``AUTOINCREMENT`` so a seq read before the push never names a later change.
  One partial index on the pending rows by (kind, entity) replaces
  (state, seq) and (state, kind).
* ``assets``: the blake3 index goes (nothing looks assets up by blake3); a
  partial index on the local rows covers what ``status`` counts and what push
  looks for.
* ``asset_tags`` is ``WITHOUT ROWID``: its primary key is the table.
* The ``sync_state`` indexes of assets and tags hold only the rows a query
  looks for: failed assets, local tags. A synced row costs them nothing.

Revision ID: 0007_compact_journal
Revises: 0006_changes_state_kind
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_compact_journal"
down_revision = "0006_changes_state_kind"
branch_labels = None
depends_on = None

# the models (satchel.journal.models.TRIGGERS) carry the same statements; a test compares them
TRIGGERS = {
    "tr_registrations_committed": (
        "CREATE TRIGGER tr_registrations_committed AFTER UPDATE OF asset_id ON registrations"
        " FOR EACH ROW WHEN NEW.asset_id IS NOT NULL"
        " BEGIN DELETE FROM registrations WHERE id = NEW.id; END"
    ),
    "tr_registrations_committed_name": (
        "CREATE TRIGGER tr_registrations_committed_name BEFORE INSERT ON registrations"
        " FOR EACH ROW WHEN EXISTS (SELECT 1 FROM assets a WHERE a.filename = NEW.file_name"
        " AND a.asset_table = NEW.asset_table AND EXISTS (SELECT 1 FROM asset_links l"
        " WHERE l.asset_id = a.id AND l.execution_id = NEW.execution_id AND l.role = 'Output'))"
        " BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: registrations.execution_id,"
        " registrations.asset_table, registrations.file_name (already committed)'); END"
    ),
    "tr_changes_done": (
        "CREATE TRIGGER tr_changes_done AFTER UPDATE OF state ON changes"
        " FOR EACH ROW WHEN NEW.state = 'done'"
        " BEGIN DELETE FROM changes WHERE seq = NEW.seq; END"
    ),
}


def _autoincrement(table: str, key: str, keep: str) -> None:
    """Keep only the rows ``keep`` selects and make ``key`` AUTOINCREMENT, starting past every key ever used."""
    conn = op.get_bind()
    top = conn.exec_driver_sql(f"SELECT max({key}) FROM {table}").scalar()
    op.execute(f"DELETE FROM {table} WHERE NOT ({keep})")  # before the copy: only what is kept is copied
    with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": True}):
        pass
    if top is not None:
        op.execute(f"DELETE FROM sqlite_sequence WHERE name = '{table}'")
        op.execute(f"INSERT INTO sqlite_sequence (name, seq) VALUES ('{table}', {int(top)})")


def upgrade() -> None:
    op.drop_index("ix_registrations_execution_id", table_name="registrations")
    _autoincrement("registrations", "id", "asset_id IS NULL")
    op.create_index("ix_assets_filename", "assets", ["filename"], unique=False)

    op.drop_index("ix_changes_state_seq", table_name="changes")
    op.drop_index("ix_changes_state_kind", table_name="changes")
    _autoincrement("changes", "seq", "state != 'done'")
    op.create_index(
        "ix_changes_pending", "changes", ["kind", "entity_id", "state"], unique=False,
        sqlite_where=sa.text("state = 'pending'"),
    )

    op.drop_index("ix_assets_blake3", table_name="assets")
    op.create_index(
        "ix_assets_local", "assets", ["sync_state", "object_url", "length"], unique=False,
        sqlite_where=sa.text("sync_state = 'local'"),
    )

    # sync_state indexes only where a query looks: failed assets, local tags (status, push)
    op.drop_index("ix_assets_sync_state", table_name="assets")
    op.create_index("ix_assets_sync_state", "assets", ["sync_state"], unique=False,
                    sqlite_where=sa.text("sync_state = 'failed'"))
    with op.batch_alter_table("asset_tags", recreate="always", table_kwargs={"sqlite_with_rowid": False}) as batch:
        batch.drop_index("ix_asset_tags_sync_state")
    op.create_index("ix_asset_tags_sync_state", "asset_tags", ["sync_state"], unique=False,
                    sqlite_where=sa.text("sync_state = 'local'"))

    for sql in TRIGGERS.values():
        op.execute(sql)


def downgrade() -> None:
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name}")
    op.drop_index("ix_asset_tags_sync_state", table_name="asset_tags")
    with op.batch_alter_table("asset_tags", recreate="always", table_kwargs={"sqlite_with_rowid": True}) as batch:
        batch.create_index("ix_asset_tags_sync_state", ["sync_state"], unique=False)
    op.drop_index("ix_assets_sync_state", table_name="assets")
    op.create_index("ix_assets_sync_state", "assets", ["sync_state"], unique=False)
    op.drop_index("ix_assets_local", table_name="assets")
    op.create_index("ix_assets_blake3", "assets", ["blake3"], unique=False)
    op.drop_index("ix_changes_pending", table_name="changes")
    with op.batch_alter_table("changes", recreate="always", table_kwargs={"sqlite_autoincrement": False}):
        pass
    op.create_index("ix_changes_state_seq", "changes", ["state", "seq"], unique=False)
    op.create_index("ix_changes_state_kind", "changes", ["state", "kind"], unique=False)
    op.drop_index("ix_assets_filename", table_name="assets")
    with op.batch_alter_table("registrations", recreate="always", table_kwargs={"sqlite_autoincrement": False}) as batch:
        batch.create_index("ix_registrations_execution_id", ["execution_id"], unique=False)

"""Terms made or seeded here get a provisional RID (``term.rid`` is never None; the catalog's replaces it at sync);
deriva-ml's seeded ``Workflow_Type`` terms join the seeded vocabularies (``create_workflow(workflow_type="Training")``
works in a new store, as it does against a new deriva-ml catalog).

Revision ID: 0009_term_rids
Revises: 0008_hatrac_leaf_names
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from satchel.rid import provisional_rid

revision = "0009_term_rids"
down_revision = "0008_hatrac_leaf_names"
branch_labels = None
depends_on = None

#: as seeded in this revision (frozen here: later changes to satchel.mlschema do not rewrite history)
WORKFLOW_TYPES = (
    ("Training", "Model training"),
    ("Testing", "Model testing"),
    ("Prediction", "Prediction with a trained model"),
    ("Feature_Creation", "Creation of feature values"),
    ("Visualization", "Visualization of data or results"),
    ("Analysis", "Analysis of data or results"),
    ("Ingest", "Loading data into the catalog"),
    ("Data_Cleaning", "Cleaning of data"),
    ("Dataset_Management", "Creation and management of datasets"),
)


def upgrade() -> None:
    op.add_column("vocabulary_terms", sa.Column("rid", sa.String(64), nullable=True))
    conn = op.get_bind()
    info = dict(conn.execute(sa.text("SELECT key, value FROM store_info")).all())
    if "store_id" not in info:
        return  # a new journal: the store's seeding gives its terms and their RIDs
    conn.execute(
        sa.text("INSERT OR IGNORE INTO vocabulary_terms (vocabulary, name, description, synonyms, origin, sync_state) "
                "VALUES ('Workflow_Type', :name, :description, '[]', 'builtin', 'synced')"),
        [{"name": name, "description": description} for name, description in WORKFLOW_TYPES],
    )
    ids = conn.execute(sa.text("SELECT id FROM vocabulary_terms WHERE remote_rid IS NULL ORDER BY id")).scalars().all()
    serial = int(info.get("rid_serial") or 0)
    for n, term_id in enumerate(ids, start=serial + 1):
        conn.execute(sa.text("UPDATE vocabulary_terms SET rid = :rid WHERE id = :id"),
                     {"rid": provisional_rid(info["store_id"], n), "id": term_id})
    if ids:
        conn.execute(sa.text("UPDATE store_info SET value = :v WHERE key = 'rid_serial'"), {"v": str(serial + len(ids))})


def downgrade() -> None:
    op.execute("DELETE FROM vocabulary_terms WHERE vocabulary = 'Workflow_Type' AND origin = 'builtin'")
    with op.batch_alter_table("vocabulary_terms") as batch:
        batch.drop_column("rid")

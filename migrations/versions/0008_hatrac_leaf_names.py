"""Object names that Hatrac can store: unsent assets whose name's last component is too long get a shorter one.

Hatrac's filesystem backend keeps a version as the file ``<last name
component>:<version>``, so that component may have at most 228 characters
(docs/remote.md, "How long a request may be"); a longer one fails every push
with 500 ``File name too long``. Names are now shortened when an asset is
committed (:func:`satchel.mlschema.hatrac_url`); this gives the assets
committed before, and not yet sent, the name they would get today. Assets
whose bytes reached Hatrac keep theirs.

Revision ID: 0008_hatrac_leaf_names
Revises: 0007_compact_journal
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from satchel.mlschema import MAX_LEAF, hatrac_url

revision = "0008_hatrac_leaf_names"
down_revision = "0007_compact_journal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    unsent = conn.execute(sa.text(
        "SELECT id, asset_table, md5, filename, url FROM assets"
        " WHERE object_url IS NULL AND sync_state IN ('local', 'failed') AND length(url) > :shortest"),
        {"shortest": MAX_LEAF + len("/hatrac/")}).fetchall()
    for asset_id, table, md5, filename, url in unsent:
        if len(url.rsplit("/", 1)[-1]) > MAX_LEAF:
            conn.execute(sa.text("UPDATE assets SET url = :url WHERE id = :id"),
                         {"url": hatrac_url(table, md5, filename), "id": asset_id})


def downgrade() -> None:
    pass  # the shorter names are as good on older satchels

"""Pull, second half: rows deleted on the server, which no ``RMT`` watermark can show.

ERMrest keeps no tombstones: a deleted row simply stops being returned. So for
each table the mirror covers (an asset table, its ``_Asset_Type`` and its
``_Execution`` association) a pull compares one ``cnt(*)`` with the number of
rows the journal believes the server holds. Equal counts (the usual case) cost
that one request. Otherwise the table's keys are read (the attribute API, RID
plus the key columns, paged) and every mirrored row the server no longer has is
dealt with:

* a tag or an execution link that is gone was removed over there: it is
  removed here too, so tag sets merge both ways (our own pending additions and
  removals are not mirrored rows and are left alone);
* an asset row that came from the server, with nothing pending here, is
  dropped from the mirror (its cached bytes stay in the cache);
* an asset this store recorded, or one with local work pending (a tag, a link,
  a description edit), is never dropped silently: a ``Deleted`` conflict is
  opened, shown by ``satchel status`` and settled by ``satchel resolve``:
  ``--keep remote`` accepts the deletion, ``--keep local`` sends the asset
  again (a new row; the old RID keeps resolving here).

If a deletion and an insertion balance exactly between two pulls the counts
agree and nothing is swept; the next pull that sees the insertion notices the
difference, so the mirror converges.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, select, update

from satchel.journal import read_transaction, write_transaction
from satchel.journal.models import AssetLink, AssetRow, AssetTag, CachePin, Change, ConflictRow, ExecutionRow
from satchel.remote.catalog import CatalogClient
from satchel.store import now
from satchel.sync.mapping import AssetTarget
from satchel.sync.result import SyncResult

#: asset rows the journal believes the catalog holds
MIRRORED = ("synced", "remote")
#: the conflict field of an asset that the catalog deleted while it mattered here
DELETED = "Deleted"
#: assets with an open Deleted conflict: their tags and links are kept while it waits
OPEN_DELETED = select(ConflictRow.asset_id).where(ConflictRow.field == DELETED, ConflictRow.resolved_at.is_(None))
#: outbox kinds whose entity is an asset
ASSET_CHANGES = ("asset", "tag_add", "tag_remove", "description")


def sweep_deletions(engine: Any, catalog: CatalogClient, target: AssetTarget, result: SyncResult) -> None:
    """Bring the mirror of one asset table and its two associations in line with the server's deletions."""
    _sweep_assets(engine, catalog, target, result)
    _sweep_tags(engine, catalog, target, result)
    _sweep_links(engine, catalog, target, result)


def _counts_agree(engine: Any, catalog: CatalogClient, schema: str, table: str, local_count: Any) -> bool:
    with read_transaction(engine) as conn:
        local = conn.execute(local_count).scalar_one()
    return catalog.count(schema, table) == local


def _sweep_assets(engine: Any, catalog: CatalogClient, target: AssetTarget, result: SyncResult) -> None:
    mirrored = (AssetRow.asset_table == target.name, AssetRow.remote_rid.is_not(None),
                AssetRow.sync_state.in_(MIRRORED))
    if _counts_agree(engine, catalog, target.schema, target.name,
                     select(func.count()).select_from(AssetRow).where(*mirrored)):
        return
    present = catalog.rids(target.schema, target.name)
    at = now()
    with write_transaction(engine) as conn:
        gone = [r for r in conn.execute(select(AssetRow.id, AssetRow.remote_rid, AssetRow.origin,
                                               AssetRow.description).where(*mirrored))
                if r.remote_rid not in present]
        if not gone:
            return
        ids = [r.id for r in gone]
        busy = _with_local_work(conn, ids)
        for r in gone:
            if r.origin == "remote" and r.id not in busy:
                forget_asset(conn, r.id)
                result.pulled["deleted"] += 1
                continue
            already = conn.execute(select(ConflictRow.id).where(
                ConflictRow.asset_id == r.id, ConflictRow.field == DELETED, ConflictRow.resolved_at.is_(None))).first()
            if already is None:
                conn.execute(insert(ConflictRow).values(asset_id=r.id, field=DELETED, local_value=r.description,
                                                        remote_value=None, detected_at=at))
                result.pulled["conflicts"] += 1


def _with_local_work(conn: Any, ids: list[int]) -> set[int]:
    """Those of the assets ``ids`` that have something here the catalog has not got."""
    busy: set[int] = set()
    for i in range(0, len(ids), 500):
        part = ids[i:i + 500]
        busy.update(conn.execute(select(AssetTag.asset_id).where(
            AssetTag.asset_id.in_(part), AssetTag.sync_state != "synced")).scalars())
        busy.update(conn.execute(select(AssetLink.asset_id).where(
            AssetLink.asset_id.in_(part), AssetLink.sync_state != "synced")).scalars())
        busy.update(conn.execute(select(Change.entity_id).where(  # by ix_changes_pending (kind, entity_id)
            Change.state == "pending", Change.kind.in_(ASSET_CHANGES), Change.entity_id.in_(part))).scalars())
        busy.update(conn.execute(select(ConflictRow.asset_id).where(
            ConflictRow.asset_id.in_(part), ConflictRow.resolved_at.is_(None))).scalars())
    return busy


def forget_asset(conn: Any, asset_id: int) -> None:
    """Remove an asset and everything hanging from it from the journal (the cache keeps its bytes)."""
    conn.execute(delete(AssetTag).where(AssetTag.asset_id == asset_id))
    conn.execute(delete(AssetLink).where(AssetLink.asset_id == asset_id))
    conn.execute(delete(ConflictRow).where(ConflictRow.asset_id == asset_id))
    conn.execute(delete(CachePin).where(CachePin.asset_id == asset_id))
    conn.execute(update(Change).where(Change.state == "pending", Change.kind.in_(ASSET_CHANGES),
                                      Change.entity_id == asset_id).values(state="done"))
    conn.execute(delete(AssetRow).where(AssetRow.id == asset_id))


def _sweep_tags(engine: Any, catalog: CatalogClient, target: AssetTarget, result: SyncResult) -> None:
    a = target.assoc
    if a.asset_type is None:
        return
    synced = (AssetRow.asset_table == target.name, AssetRow.sync_state.in_(MIRRORED), AssetTag.sync_state == "synced")
    count = select(func.count()).select_from(AssetTag).join(AssetRow, AssetRow.id == AssetTag.asset_id).where(*synced)
    if _counts_agree(engine, catalog, a.asset_type.schema, a.asset_type.name, count):
        return
    present = {(r[a.asset_type_column], r[a.type_column]) for r in catalog.project(
        a.asset_type.schema, a.asset_type.name, (a.asset_type_column, a.type_column))}
    with write_transaction(engine) as conn:
        rows = conn.execute(select(AssetTag.asset_id, AssetTag.term, AssetRow.remote_rid)
                            .join(AssetRow, AssetRow.id == AssetTag.asset_id)
                            .where(*synced, AssetTag.asset_id.not_in(OPEN_DELETED))).all()
        for r in rows:
            if (r.remote_rid, r.term) not in present:
                conn.execute(delete(AssetTag).where(AssetTag.asset_id == r.asset_id, AssetTag.term == r.term))
                result.pulled["tags_removed"] += 1


def _sweep_links(engine: Any, catalog: CatalogClient, target: AssetTarget, result: SyncResult) -> None:
    a = target.assoc
    if a.execution is None:
        return
    synced = (AssetRow.asset_table == target.name, AssetRow.sync_state.in_(MIRRORED), AssetLink.sync_state == "synced")
    joined = (select(func.count()).select_from(AssetLink)
              .join(AssetRow, AssetRow.id == AssetLink.asset_id).where(*synced))
    if _counts_agree(engine, catalog, a.execution.schema, a.execution.name, joined):
        return
    present = {(r[a.execution_asset_column], r[a.execution_column]) for r in catalog.project(
        a.execution.schema, a.execution.name, (a.execution_asset_column, a.execution_column))}
    with write_transaction(engine) as conn:
        rows = conn.execute(select(AssetLink.id, AssetRow.remote_rid.label("asset_rid"),
                                   ExecutionRow.remote_rid.label("exe_rid"))
                            .join(AssetRow, AssetRow.id == AssetLink.asset_id)
                            .join(ExecutionRow, ExecutionRow.id == AssetLink.execution_id)
                            .where(*synced, AssetLink.asset_id.not_in(OPEN_DELETED))).all()
        for r in rows:
            if (r.asset_rid, r.exe_rid) not in present:
                conn.execute(delete(AssetLink).where(AssetLink.id == r.id))
                result.pulled["links_removed"] += 1

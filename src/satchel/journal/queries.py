"""Reads and writes of the journal used by the API; every write appends to the outbox.

Functions take an open ``Connection`` (inside ``write_transaction`` for writes)
so callers compose several into one atomic transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from satchel.journal.models import (
    AssetLink,
    AssetRow,
    AssetTableDef,
    AssetTag,
    Change,
    ExecutionRow,
    Registration,
    RidAlias,
    StatusEvent,
    StoreInfo,
    VocabularyTerm,
    WorkflowRow,
)

assets_t = AssetRow.__table__
tags_t = AssetTag.__table__
links_t = AssetLink.__table__
changes_t = Change.__table__
executions_t = ExecutionRow.__table__
registrations_t = Registration.__table__

#: SQLite allows 32k bound parameters; stay well below
CHUNK = 500


def chunks(seq: Sequence[Any], n: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


# --- outbox -------------------------------------------------------------------


def append_changes(conn: Connection, rows: list[dict[str, Any]], at: str) -> None:
    """Append outbox rows: dicts with kind, entity_kind, entity_id and optional detail."""
    if rows:
        conn.execute(
            insert(changes_t),
            [
                {
                    "kind": r["kind"],
                    "entity_kind": r["entity_kind"],
                    "entity_id": r["entity_id"],
                    "detail": r.get("detail", {}),
                    "created_at": at,
                    "state": "pending",
                    "attempts": 0,
                }
                for r in rows
            ],
        )


# --- store info, model, vocabulary ----------------------------------------------------


def store_info(conn: Connection) -> dict[str, str]:
    return dict(conn.execute(select(StoreInfo.key, StoreInfo.value)).all())


def set_store_info(conn: Connection, key: str, value: str) -> None:
    stmt = sqlite_insert(StoreInfo.__table__).values(key=key, value=value)
    conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value}))


def asset_tables(conn: Connection) -> dict[str, Any]:
    rows = conn.execute(select(AssetTableDef)).all()
    return {r.name: r for r in rows}


def model_known(conn: Connection) -> bool:
    return conn.execute(select(StoreInfo.value).where(StoreInfo.key == "model_pulled_at")).first() is not None


def add_local_asset_table(conn: Connection, name: str, schema: str | None = None,
                          columns: Sequence[str] = ()) -> None:
    conn.execute(
        sqlite_insert(AssetTableDef.__table__)
        .values(name=name, schema_name=schema, origin="local", metadata_columns=list(columns))
        .on_conflict_do_nothing()
    )


def terms(conn: Connection, vocabulary: str) -> dict[str, Any]:
    rows = conn.execute(
        select(VocabularyTerm).where(VocabularyTerm.vocabulary == vocabulary).order_by(VocabularyTerm.name)
    ).all()
    return {r.name: r for r in rows}


def add_term(
    conn: Connection, vocabulary: str, name: str, description: str, synonyms: list[str], at: str,
    rid: str | None = None,
) -> tuple[int, bool]:
    """Insert a local term (with its provisional ``rid``); returns (id, created)."""
    existing = conn.execute(
        select(VocabularyTerm.id).where(VocabularyTerm.vocabulary == vocabulary, VocabularyTerm.name == name)
    ).scalar()
    if existing is not None:
        return existing, False
    term_id = conn.execute(
        insert(VocabularyTerm)
        .values(
            vocabulary=vocabulary,
            name=name,
            description=description,
            synonyms=synonyms,
            rid=rid,
            origin="local",
            sync_state="local",
        )
        .returning(VocabularyTerm.id)
    ).scalar_one()
    append_changes(conn, [{"kind": "term", "entity_kind": "term", "entity_id": term_id}], at)
    return term_id, True


# --- RIDs ------------------------------------------------------------------------------


def resolve_rid(conn: Connection, rid: str) -> tuple[str, int] | None:
    """(kind, row id) for a RID: a row's own RID, its remote RID, or an alias. RIDs are case-insensitive
    (ERMrest decodes ``13w`` as ``13W``): one typed in lower case is found too."""
    found = _resolve_rid(conn, rid)
    if found is None and isinstance(rid, str) and rid != rid.upper():
        found = _resolve_rid(conn, rid.upper())
    return found


def _resolve_rid(conn: Connection, rid: str) -> tuple[str, int] | None:
    for _ in range(4):  # aliases may chain once or twice (provisional -> leased -> adopted)
        for kind, model in (("asset", AssetRow), ("execution", ExecutionRow), ("workflow", WorkflowRow)):
            row_id = conn.execute(
                select(model.id).where((model.rid == rid) | (model.remote_rid == rid))
            ).scalar()
            if row_id is not None:
                return kind, row_id
        alias = conn.execute(select(RidAlias.rid).where(RidAlias.alias == rid)).scalar()
        if alias is None:
            return None
        rid = alias
    return None


def resolve_asset_rids(conn: Connection, rids: Sequence[str]) -> dict[str, int]:
    """Bulk :func:`resolve_rid` for assets: {rid: asset id} for every RID that names an asset."""
    raw = conn.connection.driver_connection
    found: dict[str, int] = {}
    todo = list(dict.fromkeys(rids))
    for part in chunks(todo):
        wanted = set(part)
        marks = ",".join("?" * len(part))
        for asset_id, rid, remote_rid in raw.execute(
            f"SELECT id, rid, remote_rid FROM assets WHERE rid IN ({marks}) OR remote_rid IN ({marks})", (*part, *part)
        ):
            for key in (rid, remote_rid):
                if key in wanted:
                    found[key] = asset_id
    upper = {r.upper(): r for r in todo if r not in found and isinstance(r, str) and r != r.upper()}
    if upper:  # RIDs are case-insensitive: 13w names 13W
        for key, asset_id in resolve_asset_rids(conn, list(upper)).items():
            found[upper[key]] = asset_id
    missing = [r for r in todo if r not in found]
    for part in chunks(missing):  # aliases: another RID naming the same asset
        aliases = dict(raw.execute(
            f"SELECT alias, rid FROM rid_aliases WHERE alias IN ({','.join('?' * len(part))})", tuple(part)
        ).fetchall())
        if aliases:
            targets = resolve_asset_rids(conn, list(set(aliases.values())))
            found.update({alias: targets[t] for alias, t in aliases.items() if t in targets})
    return found


# --- workflows and executions -------------------------------------------------------------------


def find_workflow(conn: Connection, *, checksum: str | None, url: str | None, name: str, version: str | None) -> Any:
    q = select(WorkflowRow)
    if checksum:
        q = q.where(WorkflowRow.checksum == checksum)
    elif url:
        q = q.where(WorkflowRow.url == url)
    else:
        q = q.where(WorkflowRow.name == name, WorkflowRow.version.is_(None) if version is None else WorkflowRow.version == version)
    return conn.execute(q.order_by(WorkflowRow.id).limit(1)).first()


def record_status(
    conn: Connection, execution_id: int, from_status: str | None, to_status: str, at: str, detail: str | None = None,
    **columns: Any,
) -> None:
    conn.execute(
        update(executions_t)
        .where(executions_t.c.id == execution_id)
        .values(status=to_status, status_detail=detail, **columns)
    )
    conn.execute(
        insert(StatusEvent).values(
            execution_id=execution_id, from_status=from_status, to_status=to_status, at=at, detail=detail
        )
    )
    append_changes(
        conn,
        [{"kind": "execution_status", "entity_kind": "execution", "entity_id": execution_id, "detail": {"status": to_status}}],
        at,
    )


def execution_status(conn: Connection, execution_id: int) -> str:
    return conn.execute(select(executions_t.c.status).where(executions_t.c.id == execution_id)).scalar_one()


# --- registrations -------------------------------------------------------------------------------


def registration_exists(conn: Connection, execution_id: int, table: str, file_name: str) -> bool:
    return (
        conn.execute(
            select(Registration.id).where(
                Registration.execution_id == execution_id,
                Registration.asset_table == table,
                Registration.file_name == file_name,
            )
        ).first()
        is not None
    )


def pending_registrations(conn: Connection, execution_id: int) -> list[Any]:
    return list(
        conn.execute(
            select(Registration)
            .where(Registration.execution_id == execution_id, Registration.asset_id.is_(None))
            .order_by(Registration.id)
        ).all()
    )


# --- assets ----------------------------------------------------------------------------------------


def existing_assets_by_url(conn: Connection, table: str, urls: Sequence[str]) -> dict[str, tuple[int, str]]:
    found: dict[str, tuple[int, str]] = {}
    for part in chunks(list(urls)):
        for row in conn.execute(
            select(assets_t.c.id, assets_t.c.rid, assets_t.c.url).where(
                assets_t.c.asset_table == table, assets_t.c.url.in_(part)
            )
        ):
            found[row.url] = (row.id, row.rid)
    return found


def digests_by_md5(conn: Connection, md5: str, length: int) -> list[Any]:
    """The digests (blake3, MD5, size) of assets with these bytes that were captured or fetched here.

    The cache names objects by blake3; this is how bytes known only by their
    MD5 (a pulled asset) are found in it: through ``ix_assets_md5``."""
    from satchel.cache import Digest

    rows = conn.exec_driver_sql(
        "SELECT DISTINCT blake3 FROM assets WHERE md5 = ? AND length = ? AND blake3 IS NOT NULL", (md5, length))
    return [Digest(b3, md5, length) for (b3,) in rows]


def download_rows(conn: Connection, asset_ids: Sequence[int]) -> dict[int, Any]:
    """The columns a download needs, for many assets, with the bare driver (the hot path)."""
    raw = conn.connection.driver_connection
    out: dict[int, Any] = {}
    for part in chunks(list(asset_ids)):
        cur = raw.execute(
            "SELECT id, rid, remote_rid, asset_table, filename, length, md5, blake3, description, asset_metadata"
            f" FROM assets WHERE id IN ({','.join('?' * len(part))})",
            tuple(part),
        )
        for row in cur:
            out[row[0]] = _DownloadRow(*row)
    return out


class _DownloadRow(NamedTuple):
    id: int
    rid: str
    remote_rid: str | None
    asset_table: str
    filename: str
    length: int
    md5: str
    blake3: str | None
    description: str | None
    asset_metadata: Any


def _present_pairs(conn: Connection, sql_by_term: str, pairs: Sequence[tuple[int, Any]]) -> set[tuple[int, Any]]:
    """Which (asset_id, x) pairs exist, asking per distinct x for the asset ids in chunks (bare driver)."""
    raw = conn.connection.driver_connection
    present: set[tuple[int, Any]] = set()
    by_x: dict[Any, list[int]] = defaultdict(list)
    for a, x in pairs:
        by_x[x].append(a)
    for x, ids in by_x.items():
        for part in chunks(sorted(set(ids))):
            cur = raw.execute(sql_by_term.format(marks=",".join("?" * len(part))), (x, *part))
            present.update((a, x) for (a,) in cur)
    return present


def present_links(conn: Connection, asset_ids: Sequence[int], execution_id: int) -> set[tuple[int, int]]:
    return _present_pairs(
        conn, "SELECT asset_id FROM asset_links WHERE execution_id = ? AND asset_id IN ({marks})",
        [(a, execution_id) for a in asset_ids],
    )


def add_tags(conn: Connection, pairs: Sequence[tuple[int, str]], at: str) -> int:
    """Add (asset_id, term) tags that are not there yet; each new one goes to the outbox."""
    if not pairs:
        return 0
    present = _present_pairs(conn, "SELECT asset_id FROM asset_tags WHERE term = ? AND asset_id IN ({marks})", pairs)
    new = sorted({p for p in pairs if p not in present})
    if new:
        conn.execute(insert(tags_t), [{"asset_id": a, "term": t, "sync_state": "local"} for a, t in new])
        append_changes(
            conn,
            [{"kind": "tag_add", "entity_kind": "asset", "entity_id": a, "detail": {"term": t}} for a, t in new],
            at,
        )
    return len(new)


def remove_tags(conn: Connection, pairs: Sequence[tuple[int, str]], at: str) -> int:
    n = 0
    for asset_id, term in pairs:
        res = conn.execute(delete(tags_t).where(tags_t.c.asset_id == asset_id, tags_t.c.term == term))
        if res.rowcount:
            n += 1
            append_changes(
                conn, [{"kind": "tag_remove", "entity_kind": "asset", "entity_id": asset_id, "detail": {"term": term}}], at
            )
    return n


def add_links(conn: Connection, links: Sequence[tuple[int, int, str]], at: str) -> int:
    """Add (asset_id, execution_id, role) links; an existing (asset, execution) pair is left as it is,
    as the catalog's unique key does."""
    if not links:
        return 0
    present = _present_pairs(
        conn, "SELECT asset_id FROM asset_links WHERE execution_id = ? AND asset_id IN ({marks})",
        [(a, e) for a, e, _ in links],
    )
    new: list[tuple[int, int, str]] = []
    for a, e, role in links:
        if (a, e) not in present:
            present.add((a, e))
            new.append((a, e, role))
    if new:
        rows = conn.execute(
            insert(links_t).returning(links_t.c.id, sort_by_parameter_order=True),
            [{"asset_id": a, "execution_id": e, "role": r, "sync_state": "local"} for a, e, r in new],
        ).scalars().all()
        append_changes(conn, [{"kind": "link", "entity_kind": "link", "entity_id": i} for i in rows], at)
    return len(new)


def asset_records(conn: Connection, where: Any = None, *, limit: int | None = None, after_id: int = 0) -> list[dict[str, Any]]:
    """Asset rows with their tags and links, in two bulk queries (not one per row)."""
    q = select(assets_t).where(assets_t.c.id > after_id).order_by(assets_t.c.id)
    if where is not None:
        q = q.where(where)
    if limit is not None:
        q = q.limit(limit)
    rows = [dict(r._mapping) for r in conn.execute(q)]
    if not rows:
        return rows
    by_id = {r["id"]: r for r in rows}
    for r in rows:
        r["tags"] = []
        r["links"] = []
    ids = list(by_id)
    for part in chunks(ids):
        for t in conn.execute(
            select(tags_t.c.asset_id, tags_t.c.term).where(tags_t.c.asset_id.in_(part)).order_by(tags_t.c.term)
        ):
            by_id[t.asset_id]["tags"].append(t.term)
        for link in conn.execute(
            select(links_t.c.asset_id, links_t.c.role, executions_t.c.rid, executions_t.c.remote_rid)
            .join(executions_t, executions_t.c.id == links_t.c.execution_id)
            .where(links_t.c.asset_id.in_(part))
            .order_by(links_t.c.id)
        ):
            by_id[link.asset_id]["links"].append((link.remote_rid or link.rid, link.role))
    return rows


def asset_ids_with_tag(terms_any: Sequence[str]) -> Any:
    """A WHERE clause: assets carrying any of these tags."""
    return assets_t.c.id.in_(select(tags_t.c.asset_id).where(tags_t.c.term.in_(list(terms_any))))


def execution_links(conn: Connection, execution_id: int, role: str | None = None) -> list[tuple[str, str, str]]:
    """(asset RID, asset table, role) of an execution's links."""
    q = (
        select(assets_t.c.rid, assets_t.c.remote_rid, assets_t.c.asset_table, links_t.c.role)
        .join(links_t, links_t.c.asset_id == assets_t.c.id)
        .where(links_t.c.execution_id == execution_id)
        .order_by(links_t.c.id)
    )
    if role is not None:
        q = q.where(links_t.c.role == role)
    return [(r.remote_rid or r.rid, r.asset_table, r.role) for r in conn.execute(q)]


def tags_by_asset(conn: Connection, asset_ids: Sequence[int]) -> dict[int, list[str]]:
    raw = conn.connection.driver_connection
    out: dict[int, list[str]] = defaultdict(list)
    for part in chunks(sorted(set(asset_ids))):
        for asset_id, term in raw.execute(
            f"SELECT asset_id, term FROM asset_tags WHERE asset_id IN ({','.join('?' * len(part))})", tuple(part)
        ):
            out[asset_id].append(term)
    return out



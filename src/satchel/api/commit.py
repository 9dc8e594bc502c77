"""The commit of an execution's outputs: capture the registered files, then one journal transaction.

Capture puts every registered file's bytes into the cache (reflink, hardlink
or copy, hashed once); the journal transaction then records the assets (a row
per new URL, reused otherwise), their tags (the caller's plus ``Output_File``),
their ``Output`` links and the execution's status. The filesystem sync of the
captured objects runs beside the transaction's preparation, and the
transaction commits only once it returned: bytes are durable first.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from collections.abc import Callable
from concurrent import futures
from typing import Any, NamedTuple

from satchel._crashpoints import crash_point
from satchel.api.workspace import Workspace
from satchel.errors import CommitError, ExecutionError
from satchel.journal import queries as q
from satchel.journal import write_transaction
from satchel.mlschema import INPUT_FILE, OUTPUT_FILE, hatrac_url
from satchel.status import Status, check_transition
from satchel.store import allocate_rids, now


class Pending(NamedTuple):
    """A registration waiting for the commit, as the commit reads it (metadata kept as stored JSON)."""

    id: int | None  # None for a file recorded without a registration (an input)
    asset_table: str
    file_name: str
    staged_path: str
    mode: str
    asset_types: list[str]
    asset_metadata: str | None
    description: str | None


class Recorded(NamedTuple):
    """What one commit recorded: each registration's asset RID, in order, and the capture's figures."""

    rids: list[str]
    bytes_captured: int
    new_objects: int


def pending(raw: sqlite3.Connection, execution_id: int) -> list[Pending]:
    """The execution's pending registrations, in order, read with the bare driver (one row per file)."""
    types_of: dict[str, list[str]] = {}
    out = []
    for rid, table, name, staged, mode, types, meta, description in raw.execute(
        "SELECT id, asset_table, file_name, staged_path, mode, asset_types, asset_metadata, description"
        " FROM registrations WHERE execution_id = ? AND asset_id IS NULL ORDER BY id",
        (execution_id,),
    ):
        parsed = types_of.get(types)
        if parsed is None:
            parsed = types_of[types] = (json.loads(types) if types else None) or []
        out.append(Pending(rid, table, name, staged, mode, parsed, meta, description))
    return out


def sizes_of(execution_rid: str, items: list[Pending]) -> list[int]:
    """Each staged file's size; a file never written fails the whole commit, which then records nothing."""
    sizes: list[int] = []
    missing = []
    for r in items:
        try:
            sizes.append(os.stat(r.staged_path).st_size)
        except FileNotFoundError:
            missing.append(r)
    if missing:
        names = ", ".join(f"{r.asset_table}/{r.file_name} ({r.staged_path})" for r in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise CommitError(
            f"execution {execution_rid}: {len(missing)} registered file(s) were never written: {names}{more}; "
            "write them, or drop them with exe.unregister_asset(path), then commit again. Nothing was committed."
        )
    return sizes


def capture_and_record(
    ws: Workspace, execution_id: int, execution_rid: str, items: list[Pending], sizes: list[int], *,
    clean: bool, on_capture: Callable[[int, int], None],
) -> Recorded:
    """Capture the staged files into the cache, then record them in one transaction ending at Uploaded
    (into the store: docs/api.md, "What Uploaded means")."""
    store = ws.store
    # staged files (new or copied, not symlinks) that the clean-up deletes may become the cache objects
    # themselves, by hardlink: no second write of their bytes (see ObjectCache._take)
    try:
        captured, seal = store.cache.capture_many(
            [r.staged_path for r in items], sizes=sizes,
            disposable=[clean and r.mode != "symlink" for r in items], progress=on_capture,
        )
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise CommitError(f"execution {execution_rid}: no space left on the file system of the cache "
                          f"({store.cache.root}) while capturing {exc.filename or 'the outputs'}; nothing was "
                          "committed and the staged files are as they were: free some space, then commit "
                          "again") from exc
    crash_point("commit.after_capture")
    # the filesystem sync runs while the journal transaction is prepared; the transaction
    # commits only once the sync has returned: bytes durable first, as always
    sealing = store.cache.in_background(seal)
    at = now()
    try:
        with write_transaction(ws.engine) as conn:
            rids = record_assets(conn, store.store_id, execution_id, items, [c.digest for c in captured], at) \
                if items else []
            cur = q.execution_status(conn, execution_id)
            for step in _to_uploaded(cur):
                tgt = check_transition(execution_rid, cur, step.value)
                extra = {"commit_time": at} if tgt is Status.Pending_Upload else {}
                q.record_status(conn, execution_id, cur, tgt.value, at, None, **extra)
                cur = tgt.value
            sealing.result()
            crash_point("commit.before_journal_commit")
    finally:
        futures.wait([sealing])  # never leave the sync running behind an error
    crash_point("commit.after_journal_commit")
    return Recorded(rids, sum(c.digest.size for c in captured), sum(1 for c in captured if c.copied))


def capture_inputs(ws: Workspace, paths: list[str], table: str = "File") -> tuple[list[Pending], list[Any]]:
    """Files on this machine an execution reads (deriva-ml's ``LocalFile``), captured into the cache and
    made durable: what :func:`record_assets` (``role="Input"``) records, in the caller's transaction.
    The bytes travel at the next push."""
    items = [Pending(None, table, os.path.basename(p), p, "symlink", [], None, None) for p in paths]
    try:
        sizes = [os.stat(p).st_size for p in paths]
        captured, seal = ws.store.cache.capture_many(paths, sizes=sizes, disposable=[False] * len(paths))
        seal()
    except OSError as exc:
        raise ExecutionError(f"the input file {exc.filename or ''} cannot be read ({exc.strerror or exc}); "
                             "check the LocalFile path and its permissions. Nothing was recorded.") from None
    return items, [c.digest for c in captured]


def _to_uploaded(current: str) -> list[Status]:
    """The statuses a commit passes through: Pending_Upload (unless there already), then Uploaded."""
    return [Status.Uploaded] if current == Status.Pending_Upload.value else [Status.Pending_Upload, Status.Uploaded]


def record_assets(conn: Any, store_id: str, execution_id: int, items: list[Pending], digests: list[Any],
                  at: str, role: str = "Output") -> list[str]:
    """Asset rows (reused when the table already has the same URL), tags and links (in ``role``), inside ``conn``.

    Returns each registration's asset RID, in order. A new asset gets one outbox
    row; its first tags and its Output link are new with it (``sync_state='local'``)
    and travel with it. Tags and links added to an asset that already existed
    get outbox rows of their own.
    """
    rows = [(reg, d, hatrac_url(reg.asset_table, d.md5, reg.file_name)) for reg, d in zip(items, digests, strict=True)]
    ids_by_key: dict[tuple[str, str], int] = {}
    rid_of: dict[int, str] = {}
    by_table: dict[str, list[str]] = {}
    for reg, _, url in rows:
        by_table.setdefault(reg.asset_table, []).append(url)
    raw = conn.connection.driver_connection  # same sqlite3 connection, same transaction
    for table, urls in by_table.items():
        for part in q.chunks(urls):
            for asset_id, rid, url in raw.execute(
                f"SELECT id, rid, url FROM assets WHERE asset_table = ? AND url IN ({','.join('?' * len(part))})",
                (table, *part),
            ):
                ids_by_key[(table, url)] = asset_id
                rid_of[asset_id] = rid
    existing_ids = set(ids_by_key.values())
    new_rows = []
    for reg, d, url in rows:
        key = (reg.asset_table, url)
        if key not in ids_by_key:
            ids_by_key[key] = -1  # placeholder: the first registration of this key makes the row
            new_rows.append((reg, d, url))
    rids = allocate_rids(conn, store_id, "asset", len(new_rows))
    # we hold the write lock (BEGIN IMMEDIATE), so ids past the current maximum are ours
    next_id = raw.execute("SELECT coalesce(max(id), 0) FROM assets").fetchone()[0] + 1
    new_ids = list(range(next_id, next_id + len(new_rows)))
    for (reg, _, url), asset_id, rid in zip(new_rows, new_ids, rids, strict=True):
        ids_by_key[(reg.asset_table, url)] = asset_id
        rid_of[asset_id] = rid
    raw.executemany(
        "INSERT INTO assets (id, rid, asset_table, filename, length, md5, blake3, url, description,"
        " asset_metadata, created_at, origin, sync_state) VALUES (?,?,?,?,?,?,?,?,?,?,?,'local','local')",
        [
            (i, rid, reg.asset_table, reg.file_name, d.size, d.md5, d.blake3, url, reg.description,
             metadata_json(reg.asset_metadata), at)
            for (reg, d, url), rid, i in zip(new_rows, rids, new_ids, strict=True)
        ],
    )
    raw.executemany(
        "INSERT INTO changes (kind, entity_kind, entity_id, detail, created_at, state, attempts)"
        " VALUES ('asset', 'asset', ?, '{}', ?, 'pending', 0)",
        [(i, at) for i in new_ids],
    )
    asset_ids = [ids_by_key[(reg.asset_table, url)] for reg, _, url in rows]
    tag = OUTPUT_FILE if role == "Output" else INPUT_FILE
    new_tags = sorted(
        {(a, t) for (reg, _, _), a in zip(rows, asset_ids, strict=True) if a not in existing_ids
         for t in (*reg.asset_types, tag)}
    )
    raw.executemany("INSERT INTO asset_tags (asset_id, term, sync_state) VALUES (?, ?, 'local')", new_tags)
    raw.executemany(
        "INSERT INTO asset_links (asset_id, execution_id, role, sync_state) VALUES (?, ?, ?, 'local')",
        [(a, execution_id, role) for a in new_ids],
    )
    old = [(reg, a) for (reg, _, _), a in zip(rows, asset_ids, strict=True) if a in existing_ids]
    if old:
        q.add_tags(conn, [(a, t) for reg, a in old for t in {*reg.asset_types, tag}], at)
        q.add_links(conn, [(a, execution_id, role) for _, a in old], at)
    raw.executemany(
        "UPDATE registrations SET asset_id = ? WHERE id = ?",
        [(a, reg.id) for reg, a in zip(items, asset_ids, strict=True) if reg.id is not None],
    )
    return [rid_of[a] for a in asset_ids]


def metadata(stored: Any) -> dict[str, Any]:
    """Asset metadata as the journal stores it (JSON text, most often ``{}``), as a dict of its own."""
    if not isinstance(stored, str):
        return stored or {}
    return {} if stored == "{}" else json.loads(stored)


def metadata_json(meta: Any) -> str:
    """Asset metadata as the journal stores it: JSON text passes through, a dict is encoded."""
    if isinstance(meta, str):
        return meta if meta != "null" else "{}"
    return json.dumps(meta or {}, default=str)

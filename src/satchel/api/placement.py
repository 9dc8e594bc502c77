"""Putting assets' bytes in a directory: plan (reads only), then apply (writes), for downloads.

Every RID is resolved and every object found before any file is written; a
file already holding the asset's bytes is left alone (one ``lstat`` per file
and one stat-cache query per batch: the no-op re-download hot path).
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from sqlalchemy import Connection, select

from satchel.journal.resolve import asset_id
from satchel.cache import Digest
from satchel.cache.durable import sync_filesystem
from satchel.errors import DestinationError, ExecutionError, ObjectMissingError, SatchelError
from satchel.journal import queries as q
from satchel.journal import read_transaction
from satchel.journal.models import AssetRow
from satchel.store import Store

log = logging.getLogger("satchel")


@dataclass
class Placed:
    """One asset put (or found already) at its destination by a download."""

    asset_id: int
    rid: str
    row: Any  # the download_rows row: table, filename, md5, description, metadata...
    digest: Digest | None
    dest: str
    skipped: bool = False


#: the longest file name (bytes) common file systems take
MAX_NAME_BYTES = 255


def safe_filename(name: str, fallback: str) -> str:
    """A catalog ``Filename`` made safe to join to a directory: no separators, no ``..``, no NUL, and short
    enough for a file system (a longer one keeps its start and its extension, with ``fallback``, the RID,
    between them, so two long names stay apart)."""
    cleaned = name.replace("\0", "").replace("/", "_").replace("\\", "_").strip()
    if cleaned in ("", ".", ".."):
        cleaned = fallback
    if len(os.fsencode(cleaned)) > MAX_NAME_BYTES:
        stem, dot, ext = cleaned.rpartition(".")
        ext = f".{ext}" if dot and stem and len(ext.encode()) <= 20 else ""
        room = MAX_NAME_BYTES - len(ext.encode()) - len(fallback.encode()) - 1
        head = os.fsencode(cleaned[: len(cleaned) - len(ext)])[:room].decode("utf-8", "ignore")
        cleaned = f"{head}-{fallback}{ext}"
    if cleaned != name:
        log.warning("file name %r from the catalog is unsafe; writing it as %r", name, cleaned)
    return cleaned


def place(store: Store, rids: list[str], dest_dir: Path) -> list[Placed]:
    """Put the bytes of these assets in ``dest_dir``, skipping files that already hold them."""
    with read_transaction(store.engine) as conn:
        planned = plan(store, conn, rids, dest_dir)
    return apply(store, planned, dest_dir)


def digest_for(store: Store, rid: str, md5: str, length: int, filename: str, blake3: str | None = None) -> Digest:
    """The cached object holding an asset's bytes, or a clear error saying how to fetch it."""
    cache = store.cache
    if blake3 is None:
        with read_transaction(store.engine) as conn:
            blake3 = conn.execute(select(AssetRow.blake3).where(AssetRow.id == asset_id(conn, rid))).scalar()
    if blake3 and cache.has(blake3):
        return Digest(blake3, md5, length)
    with read_transaction(store.engine) as conn:
        same_bytes = q.digests_by_md5(conn, md5, length)
    for d in same_bytes:  # the same bytes captured or fetched here for another asset
        if cache.has(d):
            return d
    raise ObjectMissingError(
        f"the bytes of asset {rid} ({filename}, {length} bytes, MD5 {md5}) are not in the "
        f"local cache; while online, fetch them with `satchel pull --asset {rid}`"
    )


def plan(store: Store, conn: Connection, rids: list[str], dest_dir: Path) -> list[Placed]:
    """Where each asset goes, and which destinations already hold its bytes (reads only)."""
    ids = q.resolve_asset_rids(conn, rids)
    unknown = [r for r in rids if r not in ids]
    if unknown:
        asset_id(conn, unknown[0])  # raises the precise error for the first one
    rows = q.download_rows(conn, sorted(set(ids.values())))
    out = []
    names: dict[str, str] = {}
    base = str(dest_dir)
    cache = store.cache
    for rid in rids:
        row = rows[ids[rid]]
        shown = row.remote_rid or row.rid
        name = safe_filename(row.filename, shown)
        dest = f"{base}/{name}"
        if names.setdefault(dest, shown) != shown:
            raise ExecutionError(
                f"assets {names[dest]} and {shown} both have the file name {name!r}; download them "
                f"into separate directories (e.g. dest_dir / rid)"
            )
        digest = Digest(row.blake3, row.md5, row.length) if row.blake3 else None
        out.append(Placed(row.id, shown, row, digest, dest))
    # what is already in place: one lstat per file, the stat cache asked once for the batch
    stats: dict[str, os.stat_result] = {}
    for p in out:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):  # the latter: reported by the write
            stats[p.dest] = os.lstat(p.dest)
    if len(out) > 1:
        cache.index.prefetch(list(stats.values()))
    for p in out:
        st = stats.get(p.dest)
        p.skipped = p.digest is not None and st is not None and cache.file_matches(p.dest, p.digest, st=st)
    return out


def apply(store: Store, planned: list[Placed], dest_dir: Path) -> list[Placed]:
    """Write the files a plan still needs: all objects checked first, then one filesystem sync.

    While objects are read out, the cache's use lock is held shared: no gc removes one between the
    check and the copy. A repeated download that finds every file in place reads no object, and
    takes no lock."""
    if planned and all(p.skipped for p in planned):  # every file is in place, so is its folder
        return planned
    with store.cache.use.shared():
        return _write(store, planned, dest_dir)


def _write(store: Store, planned: list[Placed], dest_dir: Path) -> list[Placed]:
    cache = store.cache
    for p in planned:  # every object a file still needs must be here before anything is written
        if not p.skipped and (p.digest is None or not cache.has(p.digest)):
            p.digest = digest_for(store, p.rid, p.row.md5, p.row.length, p.row.filename)
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DestinationError(
            f"cannot use {dest_dir} as the download directory: {exc.strerror or exc}; "
            "pass a directory you can write to (a file of that name is in the way, or rights are missing)"
        ) from exc
    batch = len(planned) > 1  # one filesystem sync for the batch instead of an fsync per file
    exported = False
    for p in planned:
        if p.skipped:
            continue
        if os.path.lexists(p.dest):
            log.warning("replacing %s (MD5 %s) with asset %s (MD5 %s): the file there held other bytes",
                        p.dest, _md5_of(store, p.dest), p.rid, p.row.md5)
        try:
            cache.export(p.digest, Path(p.dest), durable=not batch)
        except SatchelError:
            raise
        except OSError as exc:
            raise DestinationError(
                f"cannot write asset {p.rid} to {p.dest}: {exc.strerror or exc}; "
                "free space or rights in the download directory, or pass another one"
            ) from exc
        exported = True
    if batch and exported:
        sync_filesystem(dest_dir)
    return planned


def _md5_of(store: Store, path: str) -> str:
    """The MD5 of what a download is about to replace, for the warning."""
    try:
        if os.path.isfile(path) and not os.path.islink(path):
            return store.cache.hash_file(Path(path)).md5
        return "(not a file)"
    except OSError:
        return "(unreadable)"

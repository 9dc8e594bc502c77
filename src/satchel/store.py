"""A store: one journal, one object cache, one staging area, for one catalog.

Layout (docs/internals.md has the full on-disk format)::

    <store>/journal.db              the journal (SQLite, WAL)
    <store>/cache/                  content-addressed objects (satchel.cache)
    <store>/executions/<RID>/assets/<Table>/<file>    staging for outputs

The default location is ``~/.satchel/<hostname>/<catalog_id>``; ``SATCHEL_HOME``
replaces ``~/.satchel``, and an explicit ``working_dir`` is used as given.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Integer, Text, insert, select, update
from sqlalchemy.exc import DatabaseError as SQLAlchemyDatabaseError

from satchel import mlschema
from satchel.cache import DEFAULT_LINK_MODES, ObjectCache
from satchel.cache.statcache import damaged
from satchel.errors import StoreError
from satchel.journal import make_engine, read_transaction, upgrade, write_transaction
from satchel.journal.engine import read_only_media
from satchel.journal.engine import FastWriter
from satchel.journal.models import AssetTableDef, RidLease, StoreInfo, VocabularyTerm
from satchel.rid import new_store_id, provisional_rid


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


def instant(stored: str | None) -> datetime | None:
    """A journal timestamp (ISO text, UTC) as an aware datetime; None stays None."""
    if not stored:
        return None
    value = datetime.fromisoformat(stored)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def default_store_dir(hostname: str, catalog_id: str | int) -> Path:
    home = os.environ.get("SATCHEL_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".satchel"
    return base / _safe_segment(hostname) / _safe_segment(str(catalog_id))


def _safe_segment(s: str) -> str:
    if not s or s in (".", "..") or "/" in s or "\\" in s or "\0" in s:
        raise ValueError(f"{s!r} cannot name a store directory; use a plain host name or catalog id")
    return s


class Store:
    """The files of one store. Opening applies pending migrations and seeds a new journal."""

    def __init__(
        self,
        root: os.PathLike[str] | str,
        *,
        hostname: str | None = None,
        catalog_id: str | None = None,
        cache_dir: os.PathLike[str] | str | None = None,
        link_modes: tuple[str, ...] = DEFAULT_LINK_MODES,
    ) -> None:
        self.root = Path(root).expanduser().absolute()
        #: on media mounted read-only: every read works, every write is a StoreError saying why
        self.read_only = (self.root / "journal.db").is_file() and read_only_media(self.root)
        try:
            if not self.read_only:
                self.root.mkdir(parents=True, exist_ok=True)
                (self.root / "executions").mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store at {self.root}: {exc.strerror}; choose a writable working_dir") from exc
        self.journal_path = self.root / "journal.db"
        try:
            self.engine = make_engine(self.journal_path, read_only=self.read_only)
            if self.read_only:
                check_current(self.engine, self.journal_path)
            else:
                upgrade(self.engine)
            self.fast_writer = FastWriter(self.journal_path)
            cache_root = Path(cache_dir) if cache_dir else self.root / "cache"
            self.cache = ObjectCache(cache_root, link_modes=link_modes,
                                     read_only=self.read_only or read_only_media(cache_root))
            self.info = self._seed(hostname, catalog_id)
        except (sqlite3.DatabaseError, SQLAlchemyDatabaseError, OSError) as exc:
            raise StoreError(unusable(self.root, exc)) from exc
        self.store_id = self.info["store_id"]

    def close(self) -> None:
        self.fast_writer.close()
        self.cache.close()
        self.engine.dispose()

    def execution_dir(self, rid: str) -> Path:
        return self.root / "executions" / rid

    # --- seeding --------------------------------------------------------------

    def _seed(self, hostname: str | None, catalog_id: str | None) -> dict[str, str]:
        with read_transaction(self.engine) as conn:
            info = dict(conn.execute(select(StoreInfo.key, StoreInfo.value)).all())
        if "store_id" in info and (hostname is None or info.get("hostname") == hostname):
            _check_catalog(self.root, info, catalog_id)
            return info
        with write_transaction(self.engine) as conn:
            info = dict(conn.execute(select(StoreInfo.key, StoreInfo.value)).all())
            if "store_id" not in info:
                seed = {"store_id": new_store_id(), "rid_serial": "0", "created_at": now()}
                if hostname is not None:
                    seed["hostname"] = hostname
                if catalog_id is not None:
                    seed["catalog_id"] = str(catalog_id)
                conn.execute(insert(StoreInfo), [{"key": k, "value": v} for k, v in seed.items()])
                conn.execute(
                    insert(AssetTableDef),
                    [
                        {"name": t, "schema_name": mlschema.ML_SCHEMA, "origin": "builtin", "metadata_columns": []}
                        for t in mlschema.ML_ASSET_TABLES
                    ],
                )
                seeded = [(vocab, name, desc) for vocab, terms in mlschema.SEEDED_VOCABULARIES.items()
                          for name, desc in terms.items()]
                rids = provisional_rids(conn, seed["store_id"], len(seeded))
                conn.execute(
                    insert(VocabularyTerm),
                    [
                        {"vocabulary": vocab, "name": name, "description": desc, "synonyms": [], "rid": rid,
                         "origin": "builtin", "sync_state": "synced"}
                        for (vocab, name, desc), rid in zip(seeded, rids, strict=True)
                    ],
                )
                info = seed
            elif hostname is not None and info.get("hostname") not in (None, hostname):
                raise StoreError(
                    f"the store at {self.root} belongs to host {info['hostname']!r}, not {hostname!r}; "
                    "pass another working_dir for this host"
                )
            else:
                _check_catalog(self.root, info, catalog_id)
        return info


def check_current(engine: Any, path: Path) -> None:
    """A journal on read-only media is read as it is: it must be at the revision this satchel reads."""
    from satchel.journal.migrate import LATEST, current_revision

    with read_transaction(engine) as conn:
        rev = current_revision(conn)
    if rev != LATEST:
        raise StoreError(f"the journal {path} is on read-only media at schema revision {rev!r}, and this satchel "
                         f"reads {LATEST!r}; copy the store to a writable disk and open it there (that upgrades it)")


def unusable(root: Path, exc: BaseException) -> str:
    """What to tell a user whose store cannot be opened: which file, why, that nothing changed, what to do."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause)
    lowered = text.lower()
    journal = root / "journal.db"
    if damaged(cause):
        return (f"the journal {journal} is damaged ({text}); nothing was changed. Restore journal.db (with its "
                "-wal file) from a backup, or move the store aside and start a new one (its cache's objects are "
                "intact: `satchel verify --store NEW` after copying cache/objects over)")
    if "readonly" in lowered or "read-only" in lowered or "permission denied" in lowered or \
            getattr(cause, "errno", None) in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (f"the store at {root} cannot be written ({text}): it is on a read-only filesystem or belongs to "
                "another user; nothing was changed. Open a writable copy, or `satchel status` (which only reads)")
    if "disk is full" in lowered or getattr(cause, "errno", None) == errno.ENOSPC:
        return f"no space left for the store at {root} ({text}); nothing was changed: free some space and try again"
    if "unable to open" in lowered:
        return f"cannot open the journal {journal} ({text}); check the path and its permissions"
    return f"cannot open the store at {root}: {text}"


def _check_catalog(root: Path, info: dict[str, str], catalog_id: str | None) -> None:
    """A store holds one catalog's work: RIDs mean nothing in another catalog of the same host."""
    if catalog_id is not None and info.get("catalog_id") not in (None, str(catalog_id)):
        raise StoreError(
            f"the store at {root} belongs to catalog {info['catalog_id']!r} of its host, not {str(catalog_id)!r}; "
            "pass another working_dir for this catalog"
        )


def allocate_rids(conn: Connection, store_id: str, kind: str, count: int) -> list[str]:
    """``count`` fresh RIDs: leased ones from the pool first, then provisional ones.

    Runs inside the caller's write transaction, so a RID is never handed out twice.
    """
    rids: list[str] = []
    if count <= 0:
        return rids
    free = conn.execute(
        select(RidLease.rid).where(RidLease.used_by.is_(None)).order_by(RidLease.leased_at).limit(count)
    ).scalars().all()
    if free:
        conn.execute(update(RidLease).where(RidLease.rid.in_(free)).values(used_by=kind))
        rids.extend(free)
    rids.extend(provisional_rids(conn, store_id, count - len(rids)))
    return rids


def provisional_rids(conn: Connection, store_id: str, count: int) -> list[str]:
    """``count`` fresh provisional RIDs (``L_<store>_<n>``), for rows whose catalog RID comes at sync."""
    if count <= 0:
        return []
    serial = int(
        conn.execute(
            update(StoreInfo)
            .where(StoreInfo.key == "rid_serial")
            .values(value=(StoreInfo.value.cast(Integer) + count).cast(Text))
            .returning(StoreInfo.value)
        ).scalar_one()
    )
    return [provisional_rid(store_id, s) for s in range(serial - count + 1, serial + 1)]


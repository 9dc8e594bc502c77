"""The stat cache: (device, inode, size, mtime_ns, ctime_ns) -> digest.

An unchanged file is never hashed twice. Entries live in the cache's
``index.db`` (SQLite, WAL) with an in-process memo in front, so a hit costs one
``lstat`` and a dict lookup.

Racy entries: a file modified within the filesystem's timestamp granularity
after we hashed it could keep its mtime. As git does, an entry whose mtime is
not clearly older than the moment it was recorded is *racy* and is not trusted;
the file is hashed again (and recorded again, no longer racy). Files satchel
writes itself (cache objects, exported copies) are recorded as they are written,
since no one else can have written them.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from urllib.parse import quote

from satchel.cache.digest import Digest

#: an entry is trusted only if the file's mtime is this much older than the record
RACY_NS = 20_000_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stat_entries (
    device INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    recorded_ns INTEGER NOT NULL,
    trusted INTEGER NOT NULL,
    blake3 TEXT NOT NULL,
    md5 TEXT NOT NULL,
    ctime_ns INTEGER NOT NULL,
    PRIMARY KEY (device, inode)
) WITHOUT ROWID;
DROP TABLE IF EXISTS objects;
"""


def damaged(exc: BaseException) -> bool:
    """Whether an SQLite error means the file is not (or no longer) a readable database."""
    text = str(exc).lower()
    return any(m in text for m in ("not a database", "malformed", "file is encrypted", "disk image"))


def _trusted(trusted: int, mtime_ns: int, recorded_ns: int) -> bool:
    """Written by us, or modified clearly before it was recorded (not racy)."""
    return bool(trusted) or mtime_ns < recorded_ns - RACY_NS


def stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class CacheIndex:
    """The cache's own small SQLite file: the stat entries (the journal keeps each asset's digests).

    Everything in it can be rebuilt from the bytes, so it is written with
    ``synchronous=NORMAL``; losing its last transactions costs a re-hash, never
    correctness.
    """

    def __init__(self, path: os.PathLike[str] | str, *, read_only: bool = False) -> None:
        self._path = os.fspath(path)
        self._local = threading.local()
        self._memo: dict[tuple[int, int], tuple[int, int, int, Digest]] = {}
        self._lock = threading.Lock()
        #: on read-only media: looked up if it is there, never written (a miss costs a hash)
        self.read_only = read_only
        if read_only:
            return
        try:
            conn = self._conn()
            columns = {row[1] for row in conn.execute("PRAGMA table_info(stat_entries)")}
            if columns and "ctime_ns" not in columns:  # written before entries kept the ctime: start anew
                conn.execute("DROP TABLE stat_entries")
            conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            if not damaged(exc):
                raise
            self._rebuild(exc)

    def _rebuild(self, exc: sqlite3.DatabaseError) -> None:
        """A damaged index.db holds nothing that cannot be rebuilt from the bytes: set it aside, start anew."""
        self.close()
        aside = f"{self._path}.damaged-{time.time_ns()}"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self._path + suffix):
                os.replace(self._path + suffix, aside + suffix)
        logging.getLogger("satchel.cache").warning(
            "the stat cache %s was damaged (%s); set aside as %s and rebuilt (files are hashed again once)",
            self._path, exc, aside)
        self._conn().executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None and self.read_only:
            conn = sqlite3.connect(f"file:{quote(self._path)}?mode=ro&immutable=1", uri=True, isolation_level=None,
                                   check_same_thread=False)
            self._local.conn = conn
            with self._lock:
                self._all_conns = getattr(self, "_all_conns", []) + [conn]
        if conn is None:
            conn = sqlite3.connect(self._path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=60000")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._lock:
                self._all_conns = getattr(self, "_all_conns", []) + [conn]
        return conn

    def close(self) -> None:
        for conn in getattr(self, "_all_conns", []):
            conn.close()
        self._all_conns = []
        self._local = threading.local()

    # --- stat entries ---------------------------------------------------------

    def prefetch(self, stats: list[os.stat_result]) -> None:
        """Load the entries of many files into the memo at once (a batch's lookups then cost no query).

        A batch download in a fresh process would otherwise ask once per file."""
        wanted = [(st.st_dev, st.st_ino) for st in stats if (st.st_dev, st.st_ino) not in self._memo]
        if len(wanted) < 16:
            return
        by_device: dict[int, list[int]] = {}
        for dev, ino in wanted:
            by_device.setdefault(dev, []).append(ino)
        conn = self._conn()
        for dev, inodes in by_device.items():
            for i in range(0, len(inodes), 500):
                part = inodes[i:i + 500]
                rows = conn.execute(
                    "SELECT inode, size, mtime_ns, recorded_ns, trusted, blake3, md5, ctime_ns FROM stat_entries"
                    f" WHERE device=? AND inode IN ({','.join('?' * len(part))})", (dev, *part))
                for ino, size, mtime_ns, recorded_ns, trusted, b3, md5, ctime_ns in rows:
                    if _trusted(trusted, mtime_ns, recorded_ns):
                        self._memo[(dev, ino)] = (size, mtime_ns, ctime_ns, Digest(b3, md5, size))

    def lookup(self, st: os.stat_result) -> Digest | None:
        """The digest recorded for this exact file state, if trusted."""
        key = (st.st_dev, st.st_ino)
        hit = self._memo.get(key)
        if hit is None and self.read_only and not os.path.exists(self._path):
            return None
        if hit is None:
            row = self._conn().execute(
                "SELECT size, mtime_ns, recorded_ns, trusted, blake3, md5, ctime_ns FROM stat_entries"
                " WHERE device=? AND inode=?",
                key,
            ).fetchone()
            if row is None:
                return None
            size, mtime_ns, recorded_ns, trusted, b3, md5, ctime_ns = row
            if not _trusted(trusted, mtime_ns, recorded_ns):
                return None
            hit = (size, mtime_ns, ctime_ns, Digest(b3, md5, size))
            self._memo[key] = hit
        size, mtime_ns, ctime_ns, digest = hit
        # the ctime too: a write that put size and mtime back (utime) still moves it, and nobody can set it
        if size != st.st_size or mtime_ns != st.st_mtime_ns or ctime_ns != st.st_ctime_ns:
            return None
        return digest

    def record(self, entries: list[tuple[os.stat_result, Digest, bool]]) -> None:
        """Record (stat, digest, written_by_us) triples in one transaction."""
        if not entries or self.read_only:
            return
        now = time.time_ns()
        racy_after = now - RACY_NS
        memo = self._memo
        rows = []
        for st, digest, ours in entries:
            key = (st.st_dev, st.st_ino)
            size, mtime_ns = st.st_size, st.st_mtime_ns
            rows.append((*key, size, mtime_ns, now, ours, digest.blake3, digest.md5, st.st_ctime_ns))
            if ours or mtime_ns < racy_after:
                memo[key] = (size, mtime_ns, st.st_ctime_ns, digest)
            else:
                memo.pop(key, None)
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT OR REPLACE INTO stat_entries (device, inode, size, mtime_ns, recorded_ns, trusted,"
                             " blake3, md5, ctime_ns) VALUES (?,?,?,?,?,?,?,?,?)", rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


"""The journal's SQLite engine: WAL, busy timeout, ``BEGIN IMMEDIATE`` writers.

Several processes on one machine write one journal at once. Every writer
starts its transaction with ``BEGIN IMMEDIATE``, so it takes the write lock up
front (waiting up to the busy timeout) instead of failing with "database is
locked" when a read transaction tries to upgrade. Readers use plain ``BEGIN``
and see a consistent snapshot (WAL).

pysqlite's own transaction handling is switched off (``isolation_level=None``)
and SQLAlchemy's ``begin`` event emits our BEGIN instead: SQLAlchemy's
documented recipe for correct SQLite transactions, which also makes DDL
transactional for the migrations.
"""

from __future__ import annotations

import os
import sqlite3
from urllib.parse import quote
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import NullPool

from satchel.errors import StoreBusyError, StoreError

#: how long a writer waits for another process's transaction, in seconds
BUSY_TIMEOUT_S = 120.0

_BEGIN_KEY = "satchel.begin"


def read_only_media(path: Path) -> bool:
    """Whether ``path`` lies on a file system mounted read-only (a DVD, a read-only bind mount, a snapshot)."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def make_engine(path: Path, *, echo: bool = False, read_only: bool = False) -> Engine:
    """The journal's engine. ``read_only``: a journal on read-only media, opened ``immutable`` (nothing can
    change it, so SQLite needs no lock and no ``-shm`` file, which it could not create there)."""
    url = f"sqlite:///file:{quote(str(path))}?mode=ro&immutable=1&uri=true" if read_only else f"sqlite:///{path}"
    engine = create_engine(
        url,
        connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False},
        poolclass=NullPool if str(path) == ":memory:" else None,
        echo=echo,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if read_only:
            cur.execute("PRAGMA query_only=1")
            cur.close()
            return
        cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk (the WAL is fsynced) before we report success
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.info.pop(_BEGIN_KEY, "BEGIN"))

    return engine


@contextmanager
def write_transaction(engine: Engine, *, durable: bool = True) -> Iterator[Connection]:
    """One ``BEGIN IMMEDIATE`` transaction; committed on clean exit, else rolled back.

    ``durable=False`` commits with ``synchronous=NORMAL``: it survives a crash
    of the process but not of the machine. Used only for records whose loss on
    power failure is harmless (registrations before commit).
    """
    with engine.connect() as conn:
        raw = conn.connection.driver_connection  # pragmas go below SQLAlchemy, outside any transaction
        if not durable:
            raw.execute("PRAGMA synchronous=NORMAL")
        try:
            conn.info[_BEGIN_KEY] = "BEGIN IMMEDIATE"
            try:
                with conn.begin():
                    yield conn
            except Exception as exc:  # translate sqlite's lock errors, keep the rest
                _translate(exc)
                raise
        finally:
            conn.info.pop(_BEGIN_KEY, None)
            if not durable:
                raw.execute("PRAGMA synchronous=FULL")


class FastWriter:
    """A bare sqlite3 connection per thread for the hottest small writes (asset registration).

    It commits with ``synchronous=NORMAL``: safe from process crashes, and on
    power loss it may lose its last transactions (see docs/internals.md for why
    that is acceptable for registrations). ``BEGIN IMMEDIATE`` as everywhere.
    """

    def __init__(self, path: Path) -> None:
        self._path = str(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:  # SQLite may have rolled back by itself (a full disk)
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            _translate(exc)
            raise

    def close(self) -> None:
        for conn in self._all:
            conn.close()
        self._all.clear()
        self._local = threading.local()


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A consistent snapshot for reading."""
    with engine.connect() as conn:
        with conn.begin():
            yield conn


def _sqlite_cause(exc: BaseException) -> BaseException:
    """The SQLite error behind ``exc``. A failed statement can leave SQLite with no transaction to roll back
    ("database or disk is full" rolls back by itself): the rollback's error then hides the first one."""
    seen: BaseException | None = exc
    first = getattr(exc, "orig", exc)
    while seen is not None:
        orig = getattr(seen, "orig", seen)
        if isinstance(orig, sqlite3.OperationalError) and "cannot rollback" not in str(orig):
            return orig
        seen = seen.__context__
    return first


def _translate(exc: Exception) -> None:
    orig = _sqlite_cause(exc)
    if isinstance(orig, sqlite3.OperationalError):
        text = str(orig)
        if "disk is full" in text:
            raise StoreError(f"no space left for the journal ({text}): nothing of this call was recorded; free some "
                             "space on its file system, then try again") from exc
        if "locked" in text or "busy" in text:
            raise StoreBusyError(
                f"the journal stayed locked by another process for {BUSY_TIMEOUT_S:.0f} s ({text}); "
                "find the process holding it (a stuck satchel or sqlite3 shell) and retry"
            ) from exc
        if "readonly" in text:
            raise StoreError(f"the store cannot be changed ({text}): it is on read-only media or not writable by "
                             "this user; reading it works (status, ls, show, lookups), changes need a writable copy"
                             ) from exc
        if "disk I/O" in text or "unable to open" in text:
            raise StoreError(f"the journal could not be written: {text}; check the disk and permissions") from exc

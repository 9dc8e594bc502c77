"""The sync history: one ``sync_log`` row per push, pull, bundle export or bundle import.

A row is written when the operation starts (``outcome = 'running'``, one short
transaction of its own) and completed when it ends: ``ok``, ``partial`` (some
items failed, the rest went through), ``failed`` (with the error) or
``interrupted``. Writing the history never stops a sync: if the journal cannot
take the row (a full disk), the sync goes on and a warning is logged.

**Rows that never finished.** While its operation runs, the process holds an
``flock`` on ``<store>/sync-log/<id>.lock``, taken before the row is committed
and released only after its end is. The kernel drops the lock when the process
dies, however it dies. So a row still ``running`` whose lock nobody holds is an
operation whose process ended before it finished (killed, crashed, power lost):
:func:`history` reports it with the outcome ``unfinished``. Nothing rewrites
it; the row stays as the dead process left it.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import insert, select, update

from satchel.errors import BadArgumentError, Interrupted
from satchel.journal.engine import read_transaction, write_transaction
from satchel.journal.models import SyncLogEntry
from satchel.store import instant, now

log = logging.getLogger("satchel.sync")

OPERATIONS = ("push", "pull", "bundle-export", "bundle-import")
#: outcomes as stored; ``unfinished`` is reported for a ``running`` row whose process is gone
OUTCOMES = ("running", "ok", "partial", "failed", "interrupted")
UNFINISHED = "unfinished"
#: how many failures and warnings a row keeps, and how long each may be
KEPT = 20
TEXT = 300

LOCK_DIR = "sync-log"


@dataclass(frozen=True)
class SyncLogRecord:
    """One entry of the sync history (``DerivaML.sync_history``), newest first."""

    id: int
    operation: str
    remote: str | None
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.outcome not in ("running", UNFINISHED)

    @property
    def duration(self) -> float | None:
        """Seconds from start to end; None while running, and for an entry that never finished."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "operation": self.operation, "remote": self.remote,
                "started_at": self.started_at.isoformat(),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None,
                "duration_s": self.duration, "outcome": self.outcome, "summary": self.summary, "error": self.error}


# --- writing -------------------------------------------------------------------------------------------------


class Running:
    """An entry being recorded: it holds the entry's lock until :meth:`finish`."""

    def __init__(self, store: Any, entry_id: int, fd: int) -> None:
        self.store = store
        self.id = entry_id
        self._fd: int | None = fd

    def finish(self, outcome: str, summary: dict[str, Any] | None = None, error: str | None = None) -> None:
        """Record the end (one short transaction), then let go of the lock."""
        if outcome not in OUTCOMES[1:]:
            raise ValueError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES[1:])}")
        try:
            with write_transaction(self.store.engine, durable=False) as conn:
                conn.execute(update(SyncLogEntry).where(SyncLogEntry.id == self.id).values(
                    finished_at=now(), outcome=outcome, summary=summary or {},
                    error=error[:4000] if error else None))
        finally:
            self.release()

    def release(self) -> None:
        """Let go of the lock (the row stays as it is); a second call does nothing."""
        if self._fd is None:
            return
        try:
            _lock_path(self.store, self.id).unlink(missing_ok=True)
        except OSError:
            pass
        finally:
            os.close(self._fd)
            self._fd = None


def start(store: Any, operation: str, remote: str | None) -> Running:
    """Write a ``running`` entry for ``operation`` on ``remote`` and hold its lock; ``.finish()`` ends it.

    Raises what the journal raises when it cannot take the row (e.g. ``StoreError`` on a full disk).
    """
    if operation not in OPERATIONS:
        raise ValueError(f"operation {operation!r} is not one of {', '.join(OPERATIONS)}")
    folder = store.root / LOCK_DIR
    folder.mkdir(exist_ok=True)
    fd: int | None = None
    try:
        with write_transaction(store.engine, durable=False) as conn:
            entry_id = conn.execute(insert(SyncLogEntry).values(
                operation=operation, remote=remote, started_at=now(), outcome="running", summary={},
            )).inserted_primary_key[0]
            # held before the row is visible: a reader never sees a live entry without its lock
            fd = os.open(_lock_path(store, entry_id), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        if fd is not None:
            Running(store, entry_id, fd).release()
        raise
    _sweep(store, entry_id)
    return Running(store, entry_id, fd)


def _lock_path(store: Any, entry_id: int) -> Path:
    return store.root / LOCK_DIR / f"{entry_id}.lock"


def _sweep(store: Any, mine: int) -> None:
    """Remove the lock files dead processes left behind. Only ids below ours: their rows are committed
    (writers take turns), so a lock free there belongs to no live entry."""
    try:
        names = [p for p in (store.root / LOCK_DIR).iterdir() if p.stem.isdigit() and int(p.stem) < mine]
    except OSError:
        return
    for path in names:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            path.unlink(missing_ok=True)
        except OSError:
            pass  # held: that entry is still running
        finally:
            os.close(fd)


class Recording:
    """``with Recording(store, "push", url, summarize) as rec: return rec.done(work())``: one entry for the
    work, best effort. ``summarize(result)`` gives the summary; a summary with ``failed > 0`` is ``partial``.

    ``Interrupted`` (or Ctrl-C) ends it ``interrupted``, any other exception ``failed`` with its message,
    and the exception goes on. When the journal cannot take the entry, the work still runs and returns.
    """

    def __init__(self, store: Any, operation: str, remote: str | None,
                 summarize: Callable[[Any], dict[str, Any]]) -> None:
        self.store, self.operation, self.remote, self.summarize = store, operation, remote, summarize
        self.entry: Running | None = None
        self.result: Any = None

    def __enter__(self) -> Recording:
        if getattr(self.store, "read_only", False):
            return self  # read-only media: nothing can be written there, and nothing needs to be
        try:
            self.entry = start(self.store, self.operation, self.remote)
        except Exception as exc:  # the history is a side record: the work must not fail for it
            log.warning("the %s goes on without an entry in the sync history: %s", self.operation, exc)
        return self

    def done(self, result: Any) -> Any:
        self.result = result
        return result

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        entry, self.entry = self.entry, None
        if entry is None:
            return
        error = None
        try:
            if exc is None:
                summary = self.summarize(self.result) if self.result is not None else {}
                outcome = "partial" if summary.get("failed") else "ok"
            elif isinstance(exc, Interrupted) or not isinstance(exc, Exception):
                partial = getattr(exc, "result", None)
                summary = self.summarize(partial) if partial is not None else {}
                outcome = "interrupted"
                error = str(exc) if isinstance(exc, Interrupted) else f"stopped at once ({type(exc).__name__})"
            else:
                summary, outcome, error = {}, "failed", str(exc) or type(exc).__name__
            entry.finish(outcome, summary, error)
        except Exception as failure:
            entry.release()
            log.warning("the end of this %s could not be written to the sync history: %s", self.operation, failure)


def clip(text: str) -> str:
    """``text`` cut to what a history entry keeps of one failure or warning."""
    return text if len(text) <= TEXT else text[: TEXT - 1] + "…"


# --- reading -------------------------------------------------------------------------------------------------


def history(store: Any, *, limit: int | None = None, operation: str | None = None) -> list[SyncLogRecord]:
    """The entries, newest first: at most ``limit``, of ``operation`` only if given."""
    if operation is not None and operation not in OPERATIONS:
        raise BadArgumentError(f"operation {operation!r} is not one of {', '.join(OPERATIONS)}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise BadArgumentError(f"limit must be a positive whole number or None, not {limit!r}")
    table = SyncLogEntry.__table__
    query = select(table).order_by(table.c.id.desc()).limit(limit)
    if operation is not None:
        query = query.where(table.c.operation == operation)
    with read_transaction(store.engine) as conn:
        rows = list(conn.execute(query))
    gone = {r.id for r in rows if r.outcome == "running" and not _alive(store, r.id)}
    if gone:  # finished since we read it? A row ends before its lock is let go: read it again
        with read_transaction(store.engine) as conn:
            fresh = {r.id: r for r in conn.execute(select(table).where(table.c.id.in_(gone)))}
        rows = [fresh.get(r.id, r) if r.id in gone else r for r in rows]
    return [_record(r, r.id in gone and r.outcome == "running") for r in rows]


def _alive(store: Any, entry_id: int) -> bool:
    """Whether a process holds the lock of entry ``entry_id`` (nothing runs on read-only media)."""
    if getattr(store, "read_only", False):
        return False
    try:
        fd = os.open(_lock_path(store, entry_id), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _record(row: Any, dead: bool) -> SyncLogRecord:
    return SyncLogRecord(id=row.id, operation=row.operation, remote=row.remote, started_at=instant(row.started_at),
                         finished_at=instant(row.finished_at), outcome=UNFINISHED if dead else row.outcome,
                         summary=dict(row.summary or {}), error=row.error)


__all__ = ["OPERATIONS", "OUTCOMES", "UNFINISHED", "Recording", "Running", "SyncLogRecord", "clip", "history",
           "start"]

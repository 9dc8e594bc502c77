"""What the remote does not have yet, counted from the journal in bare SQL: ``status`` and the push plan.

Every count is read from an index, never from the rows: the local assets from
the partial index ``ix_assets_local``, the outbox from the partial index
``ix_changes_pending``, the rest from the ``sync_state`` indexes
(``tests/journal/test_compaction.py`` checks the query plans). Each count is
one range of one index (the outbox and the executions, small, are grouped by kind
and status), so a store whose rows are synced counts only what is pending.

Nothing here imports SQLAlchemy: ``satchel status`` reads a current journal
with the sqlite3 module alone (:func:`read_status`), and ``DerivaML.status``
passes the driver connection of its own read transaction to :func:`status`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from satchel.journal.migrate import LATEST

#: the count and bytes of the assets in a state ('local': ix_assets_local; 'failed': ix_assets_sync_state)
ASSETS_SQL = "SELECT count(*), coalesce(sum(length), 0) FROM assets WHERE sync_state = '{state}'"
#: the local assets whose bytes the object store already confirmed (the rest are objects to upload)
SENT_SQL = (
    "SELECT count(*), coalesce(sum(length), 0) FROM assets WHERE sync_state = 'local' AND object_url IS NOT NULL"
)
#: the outbox: what is still to send, by kind
PENDING_SQL = "SELECT kind, count(*) FROM changes WHERE state = 'pending' GROUP BY kind"
#: (table, key prefix, states) of the other rows the catalog will hold, counted by ``sync_state``
#: (a tag is never failed: ix_asset_tags_sync_state holds the local ones alone)
STATE_TABLES = (("asset_links", "links", ("local", "failed")), ("executions", "executions", ("local", "failed")),
                ("workflows", "workflows", ("local", "failed")), ("vocabulary_terms", "terms", ("local", "failed")),
                ("asset_tags", "tags", ("local",)))
STATE_SQL = "SELECT count(*) FROM {table} WHERE sync_state = '{state}'"
#: the first 100 failed items of every kind, with the server's reasons: (rid, remote rid, table, reason)
FAILURES_SQL = " UNION ALL ".join(f"SELECT * FROM ({q} LIMIT 100)" for q in (
    "SELECT name, NULL, vocabulary, sync_error FROM vocabulary_terms WHERE sync_state = 'failed'",
    "SELECT rid, remote_rid, 'Workflow', sync_error FROM workflows WHERE sync_state = 'failed'",
    "SELECT rid, remote_rid, 'Execution', sync_error FROM executions WHERE sync_state = 'failed'",
    "SELECT rid, remote_rid, asset_table, sync_error FROM assets WHERE sync_state = 'failed'",
    "SELECT a.rid, a.remote_rid, a.asset_table || '_Execution', l.sync_error FROM asset_links l"
    " JOIN assets a ON a.id = l.asset_id WHERE l.sync_state = 'failed'",
)) + " LIMIT 100"


def sync_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Counts of what the remote does not have: ``<prefix>_<state>``, bytes, and the objects to upload."""
    c: dict[str, int] = {}
    for state in ("local", "failed"):
        c[f"assets_{state}"], c[f"bytes_{state}"] = conn.execute(ASSETS_SQL.format(state=state)).fetchone()
    for table, prefix, states in STATE_TABLES:
        for state in states:
            (c[f"{prefix}_{state}"],) = conn.execute(STATE_SQL.format(table=table, state=state)).fetchone()
    sent, sent_bytes = conn.execute(SENT_SQL).fetchone()
    c["objects"] = c["assets_local"] - sent
    c["object_bytes"] = c["bytes_local"] - sent_bytes
    return c


def pending_change_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute(PENDING_SQL).fetchall())


def push_counts(
    conn: sqlite3.Connection, counts: dict[str, int] | None = None, pending: dict[str, int] | None = None
) -> dict[str, int]:
    """What one push would send, per step: the fields of ``satchel.sync.plan.PushPlan``."""
    c = counts if counts is not None else sync_counts(conn)
    pending = pending if pending is not None else pending_change_counts(conn)
    # as the push counts them: a status change of a row the catalog has, and the second write an execution
    # inserted as Pending_Upload needs to become Uploaded (one inserted with its status needs none)
    (status_updates,) = conn.execute(
        "SELECT count(*) FROM executions WHERE origin = 'local' AND ("
        "(sync_state IN ('synced', 'remote') AND (remote_status IS NULL OR remote_status != status))"
        " OR (sync_state IN ('local', 'failed') AND status = 'Uploaded'))"
    ).fetchone()
    (in_flight,) = conn.execute("SELECT count(*) FROM upload_jobs").fetchone()
    return {
        "terms": c["terms_local"], "workflows": c["workflows_local"], "executions": c["executions_local"],
        "objects": c["objects"], "object_bytes": c["object_bytes"], "assets": c["assets_local"],
        "tags": c["tags_local"], "tag_removals": pending.get("tag_remove", 0), "links": c["links_local"],
        "descriptions": pending.get("description", 0), "status_updates": status_updates,
        "failed": c["terms_failed"] + c["workflows_failed"] + c["executions_failed"] + c["assets_failed"]
        + c["links_failed"],
        "in_flight_uploads": in_flight,
    }


def status(conn: sqlite3.Connection) -> dict[str, Any]:
    """``DerivaML.status()`` without the store's path: run it inside one read transaction (one snapshot)."""
    c = sync_counts(conn)
    pending = pending_change_counts(conn)
    would_send = push_counts(conn, c, pending)
    info = dict(conn.execute("SELECT key, value FROM store_info").fetchall())
    conflicts = [
        {"RID": remote_rid or rid, "field": field, "local": local, "remote": remote, "detected_at": at}
        for rid, remote_rid, field, local, remote, at in conn.execute(
            "SELECT a.rid, a.remote_rid, c.field, c.local_value, c.remote_value, c.detected_at FROM conflicts c"
            " JOIN assets a ON a.id = c.asset_id WHERE c.resolved_at IS NULL ORDER BY c.id"
        )
    ]
    failures = [
        {"RID": remote_rid or rid, "table": table, "reason": reason}
        for rid, remote_rid, table, reason in conn.execute(FAILURES_SQL)
    ]
    return {
        "executions": c["executions_local"] + c["executions_failed"],
        "assets": c["assets_local"] + c["assets_failed"],
        "asset_bytes": c["bytes_local"] + c["bytes_failed"],
        "failed_assets": c["assets_failed"],
        "links": c["links_local"] + c["links_failed"],
        "terms": c["terms_local"] + c["terms_failed"],
        "pending_changes": pending,
        "executions_by_status": dict(conn.execute(
            "SELECT status, count(*) FROM executions WHERE origin = 'local' GROUP BY status").fetchall()),
        "conflicts": conflicts,
        "failures": failures,
        "would_send": would_send,
        "in_flight_uploads": would_send["in_flight_uploads"],
        "store_id": info.get("store_id"),
        "remote": _remote(info),
        "remote_configured": "remote_url" in info,
    }


def _remote(info: dict[str, str]) -> str:
    """As ``DerivaML.remote_url`` (one rule for every command), with sqlite3 alone: no user info, ever."""
    from urllib.parse import urlsplit

    stored = info.get("remote_url")
    if not stored:
        return f"https://{info.get('hostname')}"
    parts = urlsplit(stored)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{':' + str(parts.port) if parts.port else ''}{parts.path}".rstrip("/")


def read_status(root: Path) -> dict[str, Any] | None:
    """``status`` of the store at ``root`` with sqlite3 alone, or None when the store must be opened in full.

    Only a journal at the revision this satchel writes, already seeded, is read
    here; anything else (missing, older, newer, not a journal) returns None, and
    opening the store migrates it or says what is wrong. Nothing is written.
    """
    journal = root / "journal.db"
    if not journal.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{quote(str(journal))}", uri=True, isolation_level=None, timeout=120.0)
    except sqlite3.Error:
        return None
    try:
        conn.execute("PRAGMA query_only = 1")
        conn.execute("BEGIN")  # one snapshot for every count
        rev = conn.execute(
            "SELECT version_num FROM alembic_version WHERE EXISTS"
            " (SELECT 1 FROM store_info WHERE key = 'store_id')"
        ).fetchall()
        if rev != [(LATEST,)]:
            return None
        out = status(conn)
        conn.execute("COMMIT")
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    out["store"] = str(root)
    return out

"""What the cache must keep, read from the journal: the rules ``satchel gc`` obeys.

An object stays when any asset whose bytes it holds is

* ``unsynced``: not yet confirmed by the server (recorded here, failed, or
  waiting in a bundle for a gateway): the cache holds its only copy;
* ``open-execution``: an input or output of an execution of this store that
  is still open (``Created``, ``Running``, ``Stopped``, ``Pending_Upload``);
* also ``unsynced``: in an open conflict (the server may have deleted it: ``resolve --keep local``
  sends these bytes again);
* ``pinned``: named in ``cache_pins`` (``satchel get --pin``, ``satchel pin``,
  ``download_asset(..., use_cache=True)``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects.sqlite import insert

from satchel.journal.models import CachePin

#: executions still at work: their inputs and outputs stay in the cache
OPEN_STATUSES = ("Created", "Running", "Stopped", "Pending_Upload")

_KEEP_SQL = f"""
SELECT blake3, 'unsynced' FROM assets
 WHERE blake3 IS NOT NULL AND sync_state NOT IN ('synced', 'remote')
UNION ALL
SELECT a.blake3, 'open-execution' FROM executions e
  JOIN asset_links l ON l.execution_id = e.id JOIN assets a ON a.id = l.asset_id
 WHERE a.blake3 IS NOT NULL AND e.sync_state != 'remote'
   AND e.status IN ({", ".join(f"'{s}'" for s in OPEN_STATUSES)})
UNION ALL
SELECT a.blake3, 'pinned' FROM cache_pins p JOIN assets a ON a.id = p.asset_id
 WHERE a.blake3 IS NOT NULL
UNION ALL
SELECT a.blake3, 'unsynced' FROM conflicts c JOIN assets a ON a.id = c.asset_id
 WHERE a.blake3 IS NOT NULL AND c.resolved_at IS NULL
"""

#: the order of precedence when several reasons keep one object
_RANK = {"unsynced": 0, "open-execution": 1, "pinned": 2}


def digests_to_keep(conn: Connection) -> dict[str, str]:
    """blake3 digest -> the first reason (in the order above) some asset gives to keep it."""
    keep: dict[str, str] = {}
    for b3, reason in conn.connection.driver_connection.execute(_KEEP_SQL):
        if b3 not in keep or _RANK[reason] < _RANK[keep[b3]]:
            keep[b3] = reason
    return keep


def named_digests(conn: Connection) -> set[str]:
    """Every digest some asset of this journal names: only those may be removed (a cache shared by
    several stores holds the others' objects too, and a crashed commit's objects are left alone)."""
    return {b3 for (b3,) in conn.connection.driver_connection.execute(
        "SELECT DISTINCT blake3 FROM assets WHERE blake3 IS NOT NULL")}


def pin(conn: Connection, asset_ids: Sequence[int], reason: str, at: str) -> int:
    """Pin assets' bytes in the cache (already pinned ones keep their first pin); returns how many were new."""
    if not asset_ids:
        return 0
    rows = [{"asset_id": i, "reason": reason, "pinned_at": at} for i in dict.fromkeys(asset_ids)]
    return conn.execute(insert(CachePin).on_conflict_do_nothing(), rows).rowcount


def unpin(conn: Connection, asset_ids: Sequence[int]) -> int:
    if not asset_ids:
        return 0
    return conn.execute(delete(CachePin).where(CachePin.asset_id.in_(list(asset_ids)))).rowcount


def pinned(conn: Connection, asset_ids: Sequence[int]) -> set[int]:
    if not asset_ids:
        return set()
    return set(conn.execute(select(CachePin.asset_id).where(CachePin.asset_id.in_(list(asset_ids)))).scalars())

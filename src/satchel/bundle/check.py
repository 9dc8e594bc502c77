"""Checks of a bundle's records before anything changes: form, bytes, and identity.

``check_records`` reads every record once: its type is known, every field has
the type the format says (docs/internals.md), and every asset the receiver must
push has its bytes in the bundle (or already in this store's cache).
``check_identities`` refuses a bundle whose RIDs name other rows here than they
name in the bundle: what happens when one setup bundle's leased RIDs were used
by two offline stores. Both raise :class:`BundleError` naming the record and the fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from satchel.errors import BundleError
from satchel.rid import is_provisional, looks_like_ermrest_rid

NONE = type(None)
STR, OPT = (str,), (str, NONE)
STATES = ("local", "synced", "remote")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

#: each record type's fields: name -> (allowed types, required)
FIELDS: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "table": {"name": (STR, True), "schema": (OPT, False), "origin": (OPT, False), "columns": ((list, NONE), False)},
    "term": {"vocabulary": (STR, True), "name": (STR, True), "description": (OPT, False),
             "synonyms": ((list, NONE), False), "rid": (OPT, False), "remote_rid": (OPT, False), "state": (STR, True)},
    "workflow": {"rid": (STR, True), "remote_rid": (OPT, False), "state": (STR, True), "name": (STR, True),
                 "url": (OPT, False), "checksum": (OPT, False), "version": (OPT, False), "description": (OPT, False),
                 "workflow_type": (OPT, False), "created_at": (OPT, False)},
    "execution": {"rid": (STR, True), "remote_rid": (OPT, False), "state": (STR, True), "workflow": (OPT, False),
                  "description": (OPT, False), "status": (STR, True), "status_detail": (OPT, False),
                  "remote_status": (OPT, False), "configuration": ((dict, NONE), False), "created_at": (OPT, False),
                  "start_time": (OPT, False), "stop_time": (OPT, False),
                  "execution_duration": ((int, float, NONE), False), "commit_time": (OPT, False),
                  "origin": (OPT, False), "events": ((list, NONE), False)},
    "asset": {"rid": (STR, True), "remote_rid": (OPT, False), "state": (STR, True), "table": (STR, True),
              "filename": (STR, True), "length": ((int,), True), "md5": (STR, True), "blake3": (OPT, False),
              "url": (STR, True), "description": (OPT, False), "remote_description": (OPT, False),
              "metadata": ((dict, NONE), False), "created_at": (OPT, False), "object_url": (OPT, False),
              "origin": (OPT, False), "tags": ((dict, NONE), False), "removed_tags": ((list, NONE), False),
              "description_edits": ((list, NONE), False), "object": (OPT, False)},
    "link": {"asset": (STR, True), "execution": (STR, True), "role": (OPT, False), "state": (STR, True),
             "remote_rid": (OPT, False)},
    "lease": {"rid": (STR, True)},
}


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def check_records(bundle: Path, records: Path, objects: dict[str, Any], cache: Any) -> dict[str, int]:
    """Counts per record type, once every record is well formed and every needed object is at hand."""
    counts: dict[str, int] = {}
    try:
        for n, r in enumerate(read_records(records), 1):
            kind = r.get("t") if isinstance(r, dict) else None
            if kind not in FIELDS:
                raise BundleError(f"{bundle}: record {n} has unknown type {kind!r}; written by a newer satchel? "
                                  "upgrade satchel here")
            problem = _problem(kind, r) or (_bytes_problem(r, objects, cache) if kind == "asset" else None)
            if problem:
                raise BundleError(f"{bundle}: record {n} ({kind} {r.get('rid') or r.get('name') or ''}): {problem}; "
                                  "the bundle is damaged or altered: export it again")
            counts[kind] = counts.get(kind, 0) + 1
    except ValueError as exc:
        raise BundleError(f"{bundle}: its records have a line that is not JSON ({exc}); the bundle is damaged") from exc
    return counts


def _problem(kind: str, r: dict[str, Any]) -> str | None:
    for name, (types, required) in FIELDS[kind].items():
        value = r.get(name)
        if required and value in (None, ""):
            return f"no {name}"
        if name in r and (not isinstance(value, types) or isinstance(value, bool)):
            return f"{name} is a {type(value).__name__}"
    if "state" in r and r["state"] not in STATES:
        return f"state {r['state']!r} is not one of {', '.join(STATES)}"
    for name in ("rid", "remote_rid", "asset", "execution", "workflow"):
        value = r.get(name)
        if isinstance(value, str) and kind != "table" and not (looks_like_ermrest_rid(value) or is_provisional(value)):
            return f"{name} {value[:40]!r} is not a RID"
    if kind == "asset":
        if r["length"] < 0 or not _HEX32.match(r["md5"]) or (r.get("blake3") and not _HEX64.match(r["blake3"])):
            return "its length, MD5 or blake3 is malformed"
        if any(not isinstance(t, str) or s not in STATES for t, s in (r.get("tags") or {}).items()):
            return "a tag is malformed"
        if any(not isinstance(t, str) for t in r.get("removed_tags") or []) or any(
                not isinstance(e, dict) for e in r.get("description_edits") or []):
            return "a pending tag removal or description edit is malformed"
    if kind == "execution" and any(not isinstance(e, dict) or not isinstance(e.get("to"), str)
                                   or not isinstance(e.get("at"), str) for e in r.get("events") or []):
        return "a status event is malformed"
    if kind in ("table", "term") and any(not isinstance(c, str) for c in r.get("columns") or r.get("synonyms") or []):
        return "a column or synonym is not text"
    return None


def _bytes_problem(r: dict[str, Any], objects: dict[str, Any], cache: Any) -> str | None:
    """An asset the receiver will push needs its bytes: in the bundle, or already in this store's cache."""
    if r.get("object") is not None:
        if r["object"] != f"objects/{r.get('blake3')}":
            return "its object is not named by its blake3"
        p = objects.get(r["blake3"])
        if p is None:
            return "its bytes are missing from the bundle"
        if p.md5 != r["md5"] or p.size != r["length"]:
            return "its bytes do not match its MD5 or length"
    elif r["state"] == "local" and not (r.get("blake3") and cache.has(r["blake3"])):
        return "the bundle does not carry its bytes, and this store does not have them"
    return None


def check_identities(bundle: Path, conn: Connection, records: Path, batch: int = 2000) -> None:
    """Refuse a bundle whose RIDs already name other rows here (one setup bundle's RIDs used by two stores)."""
    chunk: list[dict[str, Any]] = []
    for r in read_records(records):
        if r["t"] in ("asset", "execution", "workflow"):
            chunk.append(r)
        if len(chunk) >= batch:
            _check_chunk(bundle, conn, chunk)
            chunk = []
    _check_chunk(bundle, conn, chunk)


def _check_chunk(bundle: Path, conn: Connection, recs: list[dict[str, Any]]) -> None:
    raw = conn.connection.driver_connection
    rids = sorted({r["rid"] for r in recs})
    if not rids:
        return
    marks = ",".join("?" * len(rids))
    aliases = dict(raw.execute(f"SELECT alias, rid FROM rid_aliases WHERE alias IN ({marks})", rids).fetchall())
    names = sorted(set(rids) | set(aliases.values()))
    marks = ",".join("?" * len(names))
    assets = {rid: (t, u) for rid, t, u in raw.execute(
        f"SELECT rid, asset_table, url FROM assets WHERE rid IN ({marks})", names)}
    workflows = dict(raw.execute(f"SELECT rid, checksum FROM workflows WHERE rid IN ({marks})", names).fetchall())
    executions = dict(raw.execute(f"SELECT rid, id FROM executions WHERE rid IN ({marks})", names).fetchall())
    for r in recs:
        here = aliases.get(r["rid"], r["rid"])
        if r["t"] == "asset":
            other = here in assets and assets[here] != (r["table"], r["url"])
        elif r["t"] == "workflow":
            other = bool(workflows.get(here) and r.get("checksum") and workflows[here] != r["checksum"])
        else:
            other = here in executions and _other_execution(raw, executions[here], r.get("events") or [])
        if other:
            raise BundleError(
                f"{bundle}: RID {r['rid']} names another {r['t']} in this store than in the bundle; this happens "
                "when one --for-offline bundle (its leased RIDs) was imported into two offline stores. Nothing was "
                "imported: push each offline store's work separately, and give each store its own setup bundle")


def _other_execution(raw: Any, exe_id: int, events: list[dict[str, Any]]) -> bool:
    """Both have status events, and the bundle's first one is not among this store's: another execution."""
    if not events:
        return False
    first = min(events, key=lambda e: e["at"])
    mine = raw.execute("SELECT at, to_status FROM execution_status_events WHERE execution_id = ?", (exe_id,)).fetchall()
    return bool(mine) and (first["at"], first["to"]) not in set(mine)

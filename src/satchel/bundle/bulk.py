"""The common case of an import, in bulk: assets and links the store has never seen.

A bundle of 10,000 new assets would cost tens of thousands of statements one
record at a time. Here a batch of asset records (or link records) is looked up
with a few set-based queries; records naming rows the store already has go
through the one-by-one merge of :class:`~satchel.bundle.merge.Merger`, and the
new ones are inserted with one ``executemany`` per table, exactly as the
one-by-one path would have inserted them (tests compare the two).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from sqlalchemy import Connection

from satchel.journal import queries as q

ON_SERVER = ("synced", "remote")


class BulkMerge:
    """Mixed into ``Merger``: its ``conn``, ``ids``, ``counts``, ``at``, ``bundle_id`` and one-by-one methods."""

    conn: Connection
    ids: dict[str, dict[str, int]]
    counts: Counter[str]
    at: str
    bundle_id: str
    new_local_assets: set[int]

    def _asset(self, rec: dict[str, Any]) -> None: ...  # the one-by-one merge (Merger)

    def _link(self, rec: dict[str, Any]) -> None: ...

    def _raw(self) -> Any:
        return self.conn.connection.driver_connection

    def _known_assets(self, recs: list[dict[str, Any]]) -> set[str]:
        """RIDs of the records that name an asset this store has (by RID, remote RID, alias, or table and URL)."""
        raw = self._raw()
        keys = {r["rid"] for r in recs} | {r["remote_rid"] for r in recs if r.get("remote_rid")}
        hit: set[str] = set()
        for part in q.chunks(sorted(keys)):
            marks = ",".join("?" * len(part))
            for rid, remote_rid in raw.execute(
                    f"SELECT rid, remote_rid FROM assets WHERE rid IN ({marks})", part).fetchall() + raw.execute(
                    f"SELECT rid, remote_rid FROM assets WHERE remote_rid IN ({marks})", part).fetchall():
                hit |= {rid, remote_rid}
            hit |= {a for (a,) in raw.execute(f"SELECT alias FROM rid_aliases WHERE alias IN ({marks})", part)}
        by_table: dict[str, list[str]] = {}
        for r in recs:
            by_table.setdefault(r["table"], []).append(r["url"])
        urls: set[tuple[str, str]] = set()
        for table, wanted in by_table.items():
            for part in q.chunks(wanted):
                urls |= {(table, u) for (u,) in raw.execute(
                    f"SELECT url FROM assets WHERE asset_table = ? AND url IN ({','.join('?' * len(part))})",
                    (table, *part))}
        return {r["rid"] for r in recs
                if r["rid"] in hit or r.get("remote_rid") in hit or (r["table"], r["url"]) in urls}

    def _assets_in_bulk(self, recs: list[dict[str, Any]]) -> None:
        known = self._known_assets(recs)
        for r in recs:
            if r["rid"] in known or r["rid"] in self.ids["asset"]:
                self._asset(r)
        new = [r for r in recs if r["rid"] not in known and r["rid"] not in self.ids["asset"]]
        if not new:
            return
        raw = self._raw()
        for table in sorted({r["table"] for r in new}):
            q.add_local_asset_table(self.conn, table)
        first = raw.execute("SELECT coalesce(max(id), 0) FROM assets").fetchone()[0] + 1
        rows, tags, changes, came = [], [], [], []
        for asset_id, r in enumerate(new, first):
            local = r["state"] not in ON_SERVER
            rows.append((asset_id, r["rid"], r.get("remote_rid"), r["table"], r["filename"], r["length"], r["md5"],
                         r.get("blake3"), r["url"], r.get("description"), json.dumps(r.get("metadata") or {}),
                         r.get("created_at") or self.at, "local" if local else "remote", "local" if local else "remote",
                         r.get("remote_description"), None if local else (r.get("object_url") or r["url"])))
            self.ids["asset"][r["rid"]] = asset_id
            for term, state in sorted((r.get("tags") or {}).items()):
                tags.append((asset_id, term, "synced" if state in ON_SERVER else "local"))
                if not local and state not in ON_SERVER:
                    changes.append(("tag_add", asset_id, {"term": term}))
            if local:
                changes.append(("asset", asset_id, {}))
                came.append((r["rid"], "asset", self.bundle_id))
                self.new_local_assets.add(asset_id)
            changes += [("tag_remove", asset_id, {"term": t}) for t in r.get("removed_tags") or []]
            changes += [("description", asset_id, e) for e in r.get("description_edits") or []]
        raw.executemany(
            "INSERT INTO assets (id, rid, remote_rid, asset_table, filename, length, md5, blake3, url, description,"
            " asset_metadata, created_at, origin, sync_state, remote_description, object_url)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        raw.executemany("INSERT INTO asset_tags (asset_id, term, sync_state) VALUES (?,?,?)", tags)
        raw.executemany(
            "INSERT INTO changes (kind, entity_kind, entity_id, detail, created_at, state, attempts)"
            " VALUES (?, 'asset', ?, ?, ?, 'pending', 0)",
            [(kind, asset_id, json.dumps(detail), self.at) for kind, asset_id, detail in changes])
        raw.executemany("INSERT OR IGNORE INTO bundle_rows (rid, kind, bundle_id) VALUES (?,?,?)", came)
        self.counts["assets"] += len(new)

    def _links_in_bulk(self, recs: list[dict[str, Any]]) -> None:
        missing = [r["asset"] for r in recs if r["asset"] not in self.ids["asset"]]
        self.ids["asset"].update(q.resolve_asset_rids(self.conn, missing))
        raw = self._raw()
        asset_ids = sorted({self.ids["asset"][r["asset"]] for r in recs if r["asset"] in self.ids["asset"]})
        present: set[tuple[int, int]] = set()
        for part in q.chunks(asset_ids):
            present |= set(raw.execute(f"SELECT asset_id, execution_id FROM asset_links WHERE asset_id IN "
                                       f"({','.join('?' * len(part))})", part).fetchall())
        new = []
        for r in recs:
            asset_id, exe_id = self.ids["asset"].get(r["asset"]), self.ids["execution"].get(r["execution"])
            if asset_id is None or exe_id is None or (asset_id, exe_id) in present:
                self._link(r)  # unknown here, or there already: the one-by-one merge decides
                continue
            present.add((asset_id, exe_id))
            new.append((asset_id, exe_id, r))
        if not new:
            return
        first = raw.execute("SELECT coalesce(max(id), 0) FROM asset_links").fetchone()[0] + 1
        raw.executemany(
            "INSERT INTO asset_links (id, asset_id, execution_id, role, remote_rid, sync_state) VALUES (?,?,?,?,?,?)",
            [(link_id, a, e, r.get("role") or "Output", r.get("remote_rid"),
              "synced" if r["state"] in ON_SERVER else "local") for link_id, (a, e, r) in enumerate(new, first)])
        raw.executemany(
            "INSERT INTO changes (kind, entity_kind, entity_id, detail, created_at, state, attempts)"
            " VALUES ('link', 'link', ?, '{}', ?, 'pending', 0)",
            [(link_id, self.at) for link_id, (a, _, r) in enumerate(new, first)
             if r["state"] not in ON_SERVER and a not in self.new_local_assets])
        self.counts["links"] += len(new)

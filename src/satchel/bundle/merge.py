"""Applying a bundle's records to the journal: a merge of state, so that applying twice changes nothing.

Each record is the state of one row in the store that wrote the bundle. A row
this store lacks is added as that store had it (``local`` rows with their
outbox rows, so the next push sends them; ``synced``/``remote`` rows as a
mirror of the catalog). A row this store has is only ever moved forward: a
record saying the server holds it makes a pending row synced (its outbox rows
done, the server's RID recorded); tags, links, status events and description
edits the other store made are added, never taken away unless the other store
removed them itself. Everything runs inside the caller's one write transaction.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from satchel.bundle.bulk import BulkMerge
from satchel.bundle.records import PENDING
from satchel.journal import queries as q
from satchel.journal.models import (
    AssetLink,
    AssetRow,
    AssetTableDef,
    AssetTag,
    BundleRow,
    Change,
    ExecutionRow,
    RidAlias,
    RidLease,
    StatusEvent,
    VocabularyTerm,
    WorkflowRow,
)

ON_SERVER = ("synced", "remote")
#: asset or link records merged together (a few set-based queries each, then one insert per table)
BATCH = 2000


class Merger(BulkMerge):
    """Merges one bundle's records, in order, into the journal through ``conn``."""

    def __init__(self, conn: Connection, bundle_id: str, at: str, kind: str = "outbound", *, bulk: bool = True):
        self.conn = conn
        self.bulk = bulk
        self.bundle_id = bundle_id
        self.at = at
        #: an offline bundle is the offline store's pull: it may add what the catalog holds to rows it has
        self.mirror = kind == "offline"
        self.counts: Counter[str] = Counter()
        self.ids: dict[str, dict[str, int]] = {"workflow": {}, "execution": {}, "asset": {}}
        self.new_local_assets: set[int] = set()
        self._batch: list[dict[str, Any]] = []

    def apply(self, rec: dict[str, Any]) -> None:
        """Merge one record. Asset and link records are merged a batch at a time: call :meth:`finish` last."""
        kind = rec["t"]
        if kind in ("asset", "link") and self.bulk:
            if self._batch and self._batch[0]["t"] != kind:
                self.finish()
            self._batch.append(rec)
            if len(self._batch) >= BATCH:
                self.finish()
            return
        self.finish()
        getattr(self, f"_{kind}")(rec)

    def finish(self) -> None:
        batch, self._batch = self._batch, []
        if batch and batch[0]["t"] == "asset":
            self._assets_in_bulk(batch)
        elif batch:
            self._links_in_bulk(batch)

    # --- helpers ------------------------------------------------------------------------------------------

    def _find(self, kind: str, model: Any, rid: str, remote_rid: str | None) -> Any:
        if rid in self.ids[kind]:
            return self.conn.execute(select(model).where(model.id == self.ids[kind][rid])).first()
        keys = [k for k in (rid, remote_rid) if k]
        row = None
        for column in (model.rid, model.remote_rid):  # one indexed lookup each (an OR of the two scans the table)
            row = row or self.conn.execute(select(model).where(column.in_(keys)).limit(1)).first()
        if row is None:
            for key in keys:
                target = self.conn.execute(select(RidAlias.rid).where(RidAlias.alias == key, RidAlias.kind == kind)).scalar()
                if target is not None:
                    row = self.conn.execute(select(model).where(
                        (model.rid == target) | (model.remote_rid == target)).limit(1)).first()
                    if row is not None:
                        break
        if row is not None:
            self.ids[kind][rid] = row.id
        return row

    def _same_as(self, kind: str, rid: str, row: Any) -> None:
        """``rid`` (the other store's) names ``row`` here from now on."""
        self.ids[kind][rid] = row.id
        if rid not in (row.rid, row.remote_rid):
            self.conn.execute(sqlite_insert(RidAlias.__table__).values(
                alias=rid, rid=row.rid, kind=kind, reason="bundle", created_at=self.at).on_conflict_do_nothing())

    def _done(self, kind: str, entity_id: int, **detail: Any) -> None:
        rows = self.conn.execute(select(Change.seq, Change.detail).where(
            Change.state == "pending", Change.kind == kind, Change.entity_id == entity_id)).all()
        for seq, d in rows:
            if all((d or {}).get(k) == v for k, v in detail.items()):
                self.conn.execute(update(Change).where(Change.seq == seq).values(state="done"))

    def _change(self, kind: str, entity_kind: str, entity_id: int, detail: dict[str, Any] | None = None) -> None:
        q.append_changes(self.conn, [{"kind": kind, "entity_kind": entity_kind, "entity_id": entity_id,
                                      "detail": detail or {}}], self.at)

    def _came_in_bundle(self, kind: str, rid: str) -> None:
        self.conn.execute(sqlite_insert(BundleRow.__table__).values(rid=rid, kind=kind, bundle_id=self.bundle_id)
                          .on_conflict_do_nothing())

    def _confirm(self, model: Any, kind: str, row: Any, rec: dict[str, Any], change_kind: str) -> bool:
        """A pending row the other store says the server holds becomes synced. True if it changed."""
        if rec["state"] not in ON_SERVER or not rec.get("remote_rid"):
            return False
        values: dict[str, Any] = {}
        if row.remote_rid != rec["remote_rid"] and (row.remote_rid is None or row.sync_state in PENDING):
            values["remote_rid"] = rec["remote_rid"]
        if row.sync_state in PENDING:
            values.update(sync_state="synced", sync_error=None)
            self._done(change_kind, row.id)
        if values:
            self.conn.execute(update(model).where(model.id == row.id).values(**values))
            self.counts[f"{kind}s_confirmed"] += 1
        return bool(values)

    # --- asset tables, terms, leases ------------------------------------------------------------------------

    def _table(self, rec: dict[str, Any]) -> None:
        if rec.get("origin") == "model":
            stmt = sqlite_insert(AssetTableDef.__table__).values(
                name=rec["name"], schema_name=rec.get("schema"), origin="model", metadata_columns=rec.get("columns") or [])
            self.conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_={
                "schema_name": rec.get("schema"), "origin": "model", "metadata_columns": rec.get("columns") or []}))
            q.set_store_info(self.conn, "model_pulled_at", self.at)
        else:
            q.add_local_asset_table(self.conn, rec["name"], rec.get("schema"), rec.get("columns") or [])
        self.counts["tables"] += 1

    def _term(self, rec: dict[str, Any]) -> None:
        row = self.conn.execute(select(VocabularyTerm).where(
            VocabularyTerm.vocabulary == rec["vocabulary"], VocabularyTerm.name == rec["name"])).first()
        if row is None:
            local = rec["state"] not in ON_SERVER
            term_id = self.conn.execute(insert(VocabularyTerm).values(
                vocabulary=rec["vocabulary"], name=rec["name"], description=rec.get("description") or "",
                synonyms=rec.get("synonyms") or [], rid=rec.get("rid"), remote_rid=rec.get("remote_rid"),
                origin="local" if local else "remote", sync_state="local" if local else "remote",
            ).returning(VocabularyTerm.id)).scalar_one()
            if local:
                self._change("term", "term", term_id)
            self.counts["terms"] += 1
            return
        if rec["state"] in ON_SERVER and rec.get("remote_rid"):
            values: dict[str, Any] = {}
            if row.remote_rid is None:
                values["remote_rid"] = rec["remote_rid"]
            if row.sync_state in PENDING:
                values.update(sync_state="synced", sync_error=None)
                self._done("term", row.id)
            if values:
                self.conn.execute(update(VocabularyTerm).where(VocabularyTerm.id == row.id).values(**values))
                self.counts["terms_confirmed"] += 1

    def _lease(self, rec: dict[str, Any]) -> None:
        res = self.conn.execute(sqlite_insert(RidLease.__table__).values(
            rid=rec["rid"], lease_id=f"bundle:{self.bundle_id}:{rec['rid']}", leased_at=self.at, used_by=None,
        ).on_conflict_do_nothing())
        self.counts["leases"] += res.rowcount or 0

    # --- workflows and executions ---------------------------------------------------------------------------

    def _workflow(self, rec: dict[str, Any]) -> None:
        row = self._find("workflow", WorkflowRow, rec["rid"], rec.get("remote_rid"))
        if row is None and rec.get("checksum"):
            row = q.find_workflow(self.conn, checksum=rec.get("checksum"), url=rec.get("url"), name=rec["name"],
                                  version=rec.get("version"))
            if row is not None:  # the same script, recorded here too: one workflow, the other RID an alias
                self._same_as("workflow", rec["rid"], row)
        if row is not None:
            self._confirm(WorkflowRow, "workflow", row, rec, "workflow")
            return
        local = rec["state"] not in ON_SERVER
        wf_id = self.conn.execute(insert(WorkflowRow).values(
            rid=rec["rid"], remote_rid=rec.get("remote_rid"), name=rec["name"], url=rec.get("url"),
            checksum=rec.get("checksum"), version=rec.get("version"), description=rec.get("description") or "",
            workflow_type=rec.get("workflow_type"), origin="local" if local else "remote",
            sync_state="local" if local else "remote", created_at=rec.get("created_at") or self.at,
        ).returning(WorkflowRow.id)).scalar_one()
        self.ids["workflow"][rec["rid"]] = wf_id
        if local:
            self._change("workflow", "workflow", wf_id)
            self._came_in_bundle("workflow", rec["rid"])
        self.counts["workflows"] += 1

    def _execution(self, rec: dict[str, Any]) -> None:
        row = self._find("execution", ExecutionRow, rec["rid"], rec.get("remote_rid"))
        if row is None:
            self._new_execution(rec)
            return
        self._confirm(ExecutionRow, "execution", row, rec, "execution")
        known = {(e.at, e.to_status) for e in self.conn.execute(
            select(StatusEvent.at, StatusEvent.to_status).where(StatusEvent.execution_id == row.id))}
        latest = max((e.at for e in self.conn.execute(
            select(StatusEvent.at).where(StatusEvent.execution_id == row.id))), default="")
        fresh = [e for e in rec.get("events", []) if (e["at"], e["to"]) not in known]
        self._events(row.id, fresh)
        theirs = not self.mirror and rec.get("origin") == "local"  # the sender's own execution, moved on there
        if fresh and (row.origin == "local" or theirs) and max(e["at"] for e in fresh) > latest:
            # the other store moved the execution on (e.g. committed it after exporting): its state wins
            self.conn.execute(update(ExecutionRow).where(ExecutionRow.id == row.id).values(
                status=rec["status"], status_detail=rec.get("status_detail"), stop_time=rec.get("stop_time"),
                start_time=rec.get("start_time"), execution_duration=rec.get("execution_duration"),
                commit_time=rec.get("commit_time"), origin="local"))
            self._change("execution_status", "execution", row.id, {"status": rec["status"]})
            self.counts["statuses"] += 1
        if rec["state"] in ON_SERVER and rec.get("remote_status"):
            status = self.conn.execute(select(ExecutionRow.status).where(ExecutionRow.id == row.id)).scalar()
            if row.remote_status != rec["remote_status"]:
                self.conn.execute(update(ExecutionRow).where(ExecutionRow.id == row.id).values(
                    remote_status=rec["remote_status"]))
            if status == rec["remote_status"]:
                self._done("execution_status", row.id)

    def _new_execution(self, rec: dict[str, Any]) -> None:
        local = rec["state"] not in ON_SERVER
        workflow_id = None
        if rec.get("workflow"):
            wf = self._find("workflow", WorkflowRow, rec["workflow"], None)
            workflow_id = wf.id if wf is not None else None
        exe_id = self.conn.execute(insert(ExecutionRow).values(
            rid=rec["rid"], remote_rid=rec.get("remote_rid"), workflow_id=workflow_id,
            description=rec.get("description") or "", status=rec["status"], status_detail=rec.get("status_detail"),
            configuration=rec.get("configuration") or {}, created_at=rec.get("created_at") or self.at,
            start_time=rec.get("start_time"), stop_time=rec.get("stop_time"),
            execution_duration=rec.get("execution_duration"), commit_time=rec.get("commit_time"),
            origin="local" if local or (not self.mirror and rec.get("origin") == "local") else "remote",
            sync_state="local" if local else "remote", remote_status=rec.get("remote_status"),
        ).returning(ExecutionRow.id)).scalar_one()
        self.ids["execution"][rec["rid"]] = exe_id
        self._events(exe_id, rec.get("events", []))
        if local:
            self._change("execution", "execution", exe_id)
            self._came_in_bundle("execution", rec["rid"])
        if (local or not self.mirror and rec.get("origin") == "local") and rec.get("remote_status") != rec["status"]:
            self._change("execution_status", "execution", exe_id, {"status": rec["status"]})
        self.counts["executions"] += 1

    def _events(self, exe_id: int, events: list[dict[str, Any]]) -> None:
        if events:
            self.conn.execute(insert(StatusEvent), [
                {"execution_id": exe_id, "from_status": e.get("from"), "to_status": e["to"], "at": e["at"],
                 "detail": e.get("detail")} for e in events])

    # --- assets and links -------------------------------------------------------------------------------------

    def _asset(self, rec: dict[str, Any]) -> None:
        row = self._find("asset", AssetRow, rec["rid"], rec.get("remote_rid"))
        if row is None:  # the same bytes under the same name in the same table: the catalog's one row
            row = self.conn.execute(select(AssetRow).where(
                AssetRow.asset_table == rec["table"], AssetRow.url == rec["url"])).first()
            if row is not None:
                self._same_as("asset", rec["rid"], row)
        if row is None:
            self._new_asset(rec)
            return
        if self._confirm(AssetRow, "asset", row, rec, "asset"):
            self.conn.execute(update(AssetRow).where(AssetRow.id == row.id).values(
                object_url=rec.get("object_url") or row.object_url or rec["url"],
                remote_description=rec.get("remote_description")))
        tags = {t.term: t.sync_state for t in self.conn.execute(
            select(AssetTag.term, AssetTag.sync_state).where(AssetTag.asset_id == row.id))}
        for term, state in (rec.get("tags") or {}).items():
            if term not in tags and term not in _pending_removals(self.conn, row.id):
                if state in ON_SERVER:  # the catalog's tag: only this store's pull (or an offline bundle) adds it
                    if self.mirror:
                        self.conn.execute(insert(AssetTag).values(asset_id=row.id, term=term, sync_state="synced"))
                else:
                    self.counts["tags"] += q.add_tags(self.conn, [(row.id, term)], self.at)
            elif tags.get(term) == "local" and state in ON_SERVER:
                self.conn.execute(update(AssetTag).where(AssetTag.asset_id == row.id, AssetTag.term == term)
                                  .values(sync_state="synced"))
                self._done("tag_add", row.id, term=term)
        removed = rec.get("removed_tags") or []
        self.counts["tag_removals"] += q.remove_tags(self.conn, [(row.id, t) for t in removed if t in tags], self.at)
        if rec["state"] in ON_SERVER and self.mirror:  # removals of ours the other store has carried out
            for term in _pending_removals(self.conn, row.id):
                if term not in (rec.get("tags") or {}) and term not in removed:
                    self._done("tag_remove", row.id, term=term)
        self._description(row, rec)

    def _description(self, row: Any, rec: dict[str, Any]) -> None:
        current = self.conn.execute(select(AssetRow.description).where(AssetRow.id == row.id)).scalar()
        edits = rec.get("description_edits") or []
        if edits and rec.get("description") != current:
            starts = {rec.get("remote_description"), *(e.get("old") for e in edits), *(e.get("new") for e in edits)}
            if current in starts:
                self.conn.execute(update(AssetRow).where(AssetRow.id == row.id).values(description=rec.get("description")))
                self._change("description", "asset", row.id, {"old": current, "new": rec.get("description")})
                self.counts["descriptions"] += 1
        if rec["state"] in ON_SERVER and not edits and rec.get("remote_description") == current:
            self.conn.execute(update(AssetRow).where(AssetRow.id == row.id).values(remote_description=current))
            self._done("description", row.id)

    def _new_asset(self, rec: dict[str, Any]) -> None:
        local = rec["state"] not in ON_SERVER
        q.add_local_asset_table(self.conn, rec["table"])
        asset_id = self.conn.execute(insert(AssetRow).values(
            rid=rec["rid"], remote_rid=rec.get("remote_rid"), asset_table=rec["table"], filename=rec["filename"],
            length=int(rec["length"]), md5=rec["md5"], blake3=rec.get("blake3"), url=rec["url"],
            description=rec.get("description"), asset_metadata=rec.get("metadata") or {},
            created_at=rec.get("created_at") or self.at, origin="local" if local else "remote",
            sync_state="local" if local else "remote", remote_description=rec.get("remote_description"),
            object_url=None if local else (rec.get("object_url") or rec["url"]),
        ).returning(AssetRow.id)).scalar_one()
        self.ids["asset"][rec["rid"]] = asset_id
        tags = rec.get("tags") or {}
        if tags:
            self.conn.execute(insert(AssetTag), [
                {"asset_id": asset_id, "term": t, "sync_state": "synced" if s in ON_SERVER else "local"}
                for t, s in sorted(tags.items())])
        if local:
            self._change("asset", "asset", asset_id)
            self._came_in_bundle("asset", rec["rid"])
            self.new_local_assets.add(asset_id)
        elif tags:  # tags the sender added to a row the catalog has: this store sends them
            for term, state in sorted(tags.items()):
                if state not in ON_SERVER:
                    self._change("tag_add", "asset", asset_id, {"term": term})
        for term in rec.get("removed_tags") or []:  # removals the sender made and did not send
            self._change("tag_remove", "asset", asset_id, {"term": term})
        for edit in rec.get("description_edits") or []:
            self._change("description", "asset", asset_id, edit)
        self.counts["assets"] += 1

    def _link(self, rec: dict[str, Any]) -> None:
        asset = self._find("asset", AssetRow, rec["asset"], None)
        exe = self._find("execution", ExecutionRow, rec["execution"], None)
        if asset is None or exe is None:
            return  # its asset or execution was not in the bundle, nor here: nothing to link
        link = self.conn.execute(select(AssetLink).where(
            AssetLink.asset_id == asset.id, AssetLink.execution_id == exe.id)).first()
        if link is None:
            on_server = rec["state"] in ON_SERVER
            link_id = self.conn.execute(insert(AssetLink).values(
                asset_id=asset.id, execution_id=exe.id, role=rec.get("role") or "Output",
                remote_rid=rec.get("remote_rid"), sync_state="synced" if on_server else "local",
            ).returning(AssetLink.id)).scalar_one()
            if not on_server and asset.id not in self.new_local_assets:
                self._change("link", "link", link_id)
            self.counts["links"] += 1
        elif link.sync_state in PENDING and rec["state"] in ON_SERVER:
            self.conn.execute(update(AssetLink).where(AssetLink.id == link.id).values(
                sync_state="synced", sync_error=None, remote_rid=rec.get("remote_rid") or link.remote_rid))
            self._done("link", link.id)
            self.counts["links_confirmed"] += 1


def _pending_removals(conn: Connection, asset_id: int) -> set[str]:
    return {(d or {}).get("term") for (d,) in conn.execute(select(Change.detail).where(
        Change.state == "pending", Change.kind == "tag_remove", Change.entity_id == asset_id))}

"""Push: the journal's local work reaches the catalog and the object store, exactly once.

Steps, in order (each idempotent, each recorded locally only after the remote
confirmed it): vocabulary terms → workflows → executions → object bytes →
asset rows → tags → execution links → description edits → execution statuses.
An asset row is inserted only once its bytes are confirmed in Hatrac. Rows get
RIDs leased from the catalog, written to the journal *before* the insert that
uses them, so a lost answer is resolved by asking the catalog, never by
sending again blindly. Association rows use their natural keys with
``onconflict=skip``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from satchel import errors
from satchel._crashpoints import crash_point
from satchel.cache import Digest
from satchel.journal import queries as q
from satchel.journal import read_transaction, write_transaction
from satchel.journal.models import (
    AssetLink,
    AssetRow,
    ConflictRow,
    AssetTag,
    Change,
    ExecutionRow,
    RidLease,
    VocabularyTerm,
    WorkflowRow,
)
from satchel.remote import Remote, urls
from satchel.remote.model import Table
from satchel.rid import is_provisional
from satchel.status import Status
from satchel.store import now
from satchel.sync.mapping import AssetTarget, CatalogMap, record_model
from satchel.sync.objects import HEADLESS_PUT, ObjectSender, ObjectToSend, Sent
from satchel.sync.result import ProgressEvent, SyncResult
from satchel.sync.rows import InsertOutcome, RowToInsert, insert_by_key, insert_exactly_once

log = logging.getLogger("satchel.sync")

Progress = Callable[[ProgressEvent], None]

MiB = 1 << 20

#: journal states of rows the catalog holds: pushed by us, or mirrored from it
ON_REMOTE = ("synced", "remote")


class Pusher:
    """One push of one store to one remote. Build it, call :meth:`run`."""

    def __init__(
        self,
        ml: Any,
        remote: Remote,
        *,
        progress: Progress | None = None,
        transfers: int = 4,
        chunked_threshold: int = 25 * MiB,
        chunk_size: int = 25 * MiB,
        rid_pool_size: int = 100,
        stop: threading.Event | None = None,
    ):
        self.ml = ml
        self.store = ml.store
        self.engine = ml.store.engine
        self.remote = remote
        self.catalog = remote.catalog
        self.progress = progress or (lambda event: None)
        self.transfers = transfers
        self.chunked_threshold = chunked_threshold
        self.chunk_size = chunk_size
        self.rid_pool_size = rid_pool_size
        #: set (e.g. by Ctrl-C in the CLI) to stop at the next safe point: between steps, objects or chunks
        self.stop = stop or threading.Event()
        self.result = SyncResult()
        self.map: CatalogMap | None = None

    # --- the whole push ---------------------------------------------------------------

    def run(self) -> SyncResult:
        features = self.catalog.discover().get("features") or {}
        self.leases = bool(features.get("rid_lease"))
        if not self.leases:
            log.info("%s has no RID leases: rows are matched by natural keys and markers", self.remote)
        self.map = CatalogMap(self.catalog.model())
        record_model(self.engine, self.map)
        for step in ("terms", "workflows", "executions", "objects", "assets", "tags", "links", "updates", "status"):
            getattr(self, f"_push_{step}")()
            crash_point(f"push.after_{step}")
            if self.stop.is_set():
                raise errors.Interrupted(
                    f"push stopped when asked, after its {step} step: everything the server confirmed is recorded "
                    f"({stopped_summary(self.result)}); run `satchel push` to send the rest", result=self.result)
        if self.leases:
            self._refill_rid_pool()
        return self.result

    def _emit(self, step: str, done: int, total: int, unit: str = "items") -> None:
        self.progress(ProgressEvent(step, done, total, unit))

    # --- RIDs -----------------------------------------------------------------------

    def _reserve(self, model: Any, kind: str, rows: list[Any]) -> dict[int, str]:
        """The catalog RID of each row: already reserved, the leased RID it was created with, or leased now.

        Written to the journal before anything uses it, so a crash never makes
        us lease twice for one row.
        """
        out: dict[int, str] = {}
        need: list[Any] = []
        for r in rows:
            if r.remote_rid:
                out[r.id] = r.remote_rid
            elif not is_provisional(r.rid):
                out[r.id] = r.rid  # created offline with a RID from the pool: leased already
            else:
                need.append(r)
        if need:
            ids = [f"satchel-{self.store.store_id}-{uuid.uuid4().hex}" for _ in need]
            leased = self.catalog.lease_rids(ids)
            for r, lease_id in zip(need, ids, strict=True):
                out[r.id] = leased[lease_id]
        fresh = {r.id: out[r.id] for r in rows if not r.remote_rid}
        if fresh:
            with write_transaction(self.engine) as conn:
                conn.execute(update(model).where(model.id == bindparam("b_id")).values(remote_rid=bindparam("b_rid")),
                             [{"b_id": k, "b_rid": v} for k, v in fresh.items()])
        crash_point(f"push.{kind}.after_reserve")
        return out

    def _insert_marked(self, model: Any, table: Table, rows: list[Any], marker_column: str,
                       body: Callable[[Any], dict[str, Any]]) -> InsertOutcome:
        """Without leases: insert rows carrying a unique marker in ``marker_column`` (a field satchel manages),
        find them by it, record their RIDs, then put the real value back.

        The RID is written to the journal before the marker is cleared, so a
        crash at any point is resolved by RID or by marker, never by a second insert.
        """
        known = [r for r in rows if r.remote_rid]
        fresh = [r for r in rows if not r.remote_rid]
        outcome = InsertOutcome()
        if known:  # found by marker in an earlier run: confirm by RID
            for row in self.catalog.lookup(table.schema, table.name, "RID", [r.remote_rid for r in known], columns=("RID",)):
                outcome.present[next(r.id for r in known if r.remote_rid == row["RID"])] = row["RID"]
        items = []
        for r in fresh:
            values = {k: v for k, v in body(r).items() if k in table.columns}
            values[marker_column] = f"satchel-pending:{self.store.store_id}:{r.rid}"
            items.append(RowToInsert(r.id, "", values))
        found = insert_by_key(self.catalog, table, items, marker_column, unique=False)
        if found.present:
            with write_transaction(self.engine) as conn:
                for row_id, rid in found.present.items():
                    conn.execute(update(model).where(model.id == row_id).values(remote_rid=rid))
        crash_point(f"push.{table.name}.after_marker_found")
        outcome.present.update(found.present)
        outcome.refused.update(found.refused)
        outcome.unknown |= found.unknown
        by_id = {r.id: r for r in rows}
        real = [{"RID": rid, marker_column: getattr(by_id[k], marker_column.lower(), None)}
                for k, rid in outcome.present.items()]
        if real and marker_column != "Status_Detail":  # executions: the status step writes Status_Detail
            self.catalog.update(table.schema, table.name, real, columns=[marker_column])
        if marker_column == "Status_Detail" and outcome.present:
            with write_transaction(self.engine) as conn:
                for k in outcome.present:
                    conn.execute(update(model).where(model.id == k).values(remote_status=None))
        return outcome

    def _refill_rid_pool(self) -> None:
        """Keep RIDs in hand so executions and assets created offline get their final RID at once."""
        if self.rid_pool_size <= 0:
            return
        with read_transaction(self.engine) as conn:
            free = len(conn.execute(select(RidLease.rid).where(RidLease.used_by.is_(None))).all())
        if free >= self.rid_pool_size // 2:
            return
        want = self.rid_pool_size - free
        ids = [f"satchel-{self.store.store_id}-pool-{uuid.uuid4().hex}" for _ in range(want)]
        leased = self.catalog.lease_rids(ids)
        at = now()
        with write_transaction(self.engine) as conn:
            conn.execute(
                RidLease.__table__.insert(),
                [{"rid": rid, "lease_id": lid, "leased_at": at, "used_by": None} for lid, rid in leased.items()],
            )
        self.result.done["rid_pool"] += len(leased)

    # --- bookkeeping --------------------------------------------------------------------

    def _mark(self, model: Any, step: str, outcome: Any, shown: dict[int, str], kind: str | None) -> None:
        """Record what an insert achieved: synced rows (with the RID the catalog holds), failures."""
        at = now()
        with write_transaction(self.engine) as conn:
            if outcome.present:  # one statement, executed for every row
                conn.execute(update(model).where(model.id == bindparam("b_id")).values(
                    remote_rid=bindparam("b_rid"), sync_state="synced", sync_error=None),
                    [{"b_id": k, "b_rid": v} for k, v in outcome.present.items()])
            for key in outcome.adopted:
                log.info("%s %s: the catalog already had it as %s; adopted", step, shown[key], outcome.present[key])
            if outcome.refused:
                conn.execute(update(model).where(model.id == bindparam("b_id")).values(
                    sync_state="failed", sync_error=bindparam("b_reason")),
                    [{"b_id": k, "b_reason": v} for k, v in outcome.refused.items()])
            if kind and outcome.present:
                _changes_done(conn, kind, list(outcome.present), at)
        self.result.done[step] += len(outcome.present) - len(outcome.adopted)
        self.result.skipped[step] += len(outcome.adopted)
        for key, reason in outcome.refused.items():
            self.result.fail(step, shown[key], reason)
        for key in outcome.unknown:
            self.result.fail(step, shown[key], "the server did not confirm it (network trouble); the next sync retries")

    # --- 1. vocabulary terms -----------------------------------------------------------------

    def _push_terms(self) -> None:
        assert self.map is not None
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(VocabularyTerm).where(VocabularyTerm.sync_state == "local")).all()
        by_vocab: dict[str, list[Any]] = defaultdict(list)
        for r in rows:
            by_vocab[r.vocabulary].append(r)
        total, done = len(rows), 0
        for vocab, terms in by_vocab.items():
            table = self.map.vocabulary(vocab)
            if table is None:
                self._fail_rows(VocabularyTerm, "terms", terms, f"vocabulary {vocab!r} is not in the catalog")
                continue
            try:
                self._ensure_terms(table, {t.name: (t.description, t.synonyms) for t in terms})
            except errors.RemoteStatusError as exc:
                _reraise_unless_refused(exc)
                self._fail_rows(VocabularyTerm, "terms", terms, str(exc), shown=lambda t: f"{vocab}:{t.name}")
                done += len(terms)
                continue
            found = self._remote_terms(table, [t.name for t in terms])
            at = now()
            with write_transaction(self.engine) as conn:
                for t in terms:
                    if t.name in found:
                        conn.execute(
                            update(VocabularyTerm).where(VocabularyTerm.id == t.id).values(
                                remote_rid=found[t.name], sync_state="synced", sync_error=None
                            )
                        )
                _changes_done(conn, "term", [t.id for t in terms if t.name in found], at)
            for t in terms:
                if t.name in found:
                    self.result.done["terms"] += 1
                else:
                    self.result.fail("terms", f"{vocab}:{t.name}", "the catalog did not store the term")
            done += len(terms)
            self._emit("terms", done, total)

    def _ensure_terms(self, table: Table, terms: dict[str, tuple[str, Any]]) -> None:
        """Make sure these terms exist in a vocabulary table (``onconflict=skip`` on ``Name``)."""
        if not terms:
            return
        body = []
        for name, (description, synonyms) in terms.items():
            row: dict[str, Any] = {"Name": name, "Description": description or name}
            if synonyms:
                row["Synonyms"] = list(synonyms)
            body.append(row)
        self.catalog.insert(table.schema, table.name, body, defaults=("ID", "URI"), on_conflict_skip=True)

    def _ensure_used_terms(self, vocabulary: str, used: set[str]) -> tuple[set[str], Exception | None]:
        """Terms rows refer to must be in the catalog, and seeded ones (``Asset_Type``, ``Workflow_Type``)
        may be missing from an older or a hand-made one: add those missing. Returns them, and the
        catalog's refusal if it refused to add them (the rows that need them then report it)."""
        table = self.map.vocabulary(vocabulary) if self.map is not None else None
        if table is None or not used:
            return set(), None
        missing = set(used) - set(self._remote_terms(table, sorted(used)))
        if not missing:
            return missing, None
        with read_transaction(self.engine) as conn:
            local = q.terms(conn, vocabulary)
        try:
            self._ensure_terms(table, {t: (local[t].description if t in local else t, None) for t in missing})
        except errors.RemoteStatusError as exc:
            _reraise_unless_refused(exc)
            return missing, exc
        return missing, None

    def _remote_terms(self, table: Table, names: list[str]) -> dict[str, str]:
        return {r["Name"]: r["RID"] for r in self.catalog.lookup(table.schema, table.name, "Name", names, columns=("RID", "Name"))}

    def _fail_rows(self, model: Any, step: str, rows: list[Any], reason: str, shown: Callable[[Any], str] | None = None) -> None:
        with write_transaction(self.engine) as conn:
            for r in rows:
                conn.execute(update(model).where(model.id == r.id).values(sync_state="failed", sync_error=reason))
        for r in rows:
            self.result.fail(step, shown(r) if shown else getattr(r, "rid", str(r.id)), reason)

    # --- 2. workflows -------------------------------------------------------------------------

    def _push_workflows(self) -> None:
        assert self.map is not None
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(WorkflowRow).where(WorkflowRow.sync_state == "local")).all()
        if not rows:
            return
        table = self.map.ml_table("Workflow")
        # deriva-ml reuses a workflow with the same checksum (or URL): so do we, before leasing a RID
        adopt = self._settle_workflows(table, rows)
        adopted = [r for r in rows if r.id in adopt]
        rows = [r for r in rows if r.id not in adopt]
        if not self.leases:
            outcome = self._insert_marked(WorkflowRow, table, rows, "Checksum", lambda r: {
                "Name": r.name, "Description": r.description, "URL": r.url, "Version": r.version,
                "Checksum": r.checksum})
        else:
            rids = self._reserve(WorkflowRow, "workflows", rows)
            items = []
            for r in rows:
                body = {"RID": rids[r.id], "Name": r.name, "Description": r.description, "URL": r.url,
                        "Checksum": r.checksum, "Version": r.version}
                items.append(RowToInsert(r.id, rids[r.id], {k: v for k, v in body.items() if k in table.columns}))
            outcome = insert_exactly_once(self.catalog, table, items)
            # another machine may have inserted the same workflow at the same moment: all converge on the first
            inserted = [r for r in rows if r.id in outcome.present]
            for row_id, rid in self._settle_workflows(table, inserted, ours=outcome.present).items():
                if rid != outcome.present[row_id]:
                    outcome.adopted.add(row_id)
                outcome.present[row_id] = rid
        outcome.present.update(adopt)
        outcome.adopted.update(adopt)
        rows += adopted
        # a workflow counts as pushed only with its Workflow_Type rows (natural keys, so sending them for an
        # adopted row is harmless): a refusal fails it, and --retry-failed tries again
        for row_id, reason in self._workflow_types([r for r in rows if r.id in outcome.present], outcome.present).items():
            outcome.refused[row_id] = f"its Workflow_Type rows were refused: {reason}"
            outcome.present.pop(row_id, None)
            outcome.adopted.discard(row_id)
        self._mark(WorkflowRow, "workflows", outcome, {r.id: r.rid for r in rows}, "workflow")
        self._emit("workflows", len(rows), len(rows))

    def _settle_workflows(self, table: Table, rows: list[Any], ours: dict[int, str] | None = None) -> dict[int, str]:
        """The catalog row each workflow is, when the catalog has one with its checksum (else its URL).

        Of several rows with that key (machines that inserted the same workflow at
        once), every machine picks the same one, the first created (``RCT``, then
        ``RID``), and deletes its own other row while nothing refers to it yet. No
        catalog key stops the race; this settles it. ``ours`` maps row ids to the RIDs
        this push inserted (else the RID reserved by an earlier push that may have died
        after its insert).
        """
        ours = ours or {}
        settled: dict[int, str] = {}
        for column, attr in (("Checksum", "checksum"), ("URL", "url")):
            # a workflow is its checksum when it has one, else its URL (as find_workflow matches locally);
            # without leases, a remote_rid names our own marked row: it is confirmed by RID, never settled away
            want: dict[str, list[Any]] = defaultdict(list)
            for r in rows:
                key = getattr(r, attr)
                if key and (attr == "checksum" or not r.checksum) and (self.leases or not r.remote_rid):
                    want[key].append(r)
            if not want or column not in table.columns:
                continue
            found: dict[str, list[dict]] = defaultdict(list)
            for f in self.catalog.lookup(table.schema, table.name, column, list(want), columns=("RID", "RCT", column)):
                found[f[column]].append(f)
            for key, group in want.items():
                if not found.get(key):
                    continue
                first = min(found[key], key=lambda f: (_instant(f["RCT"]), f["RID"]))["RID"]
                present = {f["RID"] for f in found[key]}
                for r in group:
                    mine = ours.get(r.id) or (r.remote_rid if self.leases else None)
                    lost = mine in present and mine != first
                    # a losing row of ours that cannot be removed (referred to, or no right) stays ours
                    settled[r.id] = mine if lost and not self._delete_own_workflow(table, mine) else first
        return settled

    def _delete_own_workflow(self, table: Table, rid: str) -> bool:
        """Remove a workflow row of ours that lost the race (its type rows first); False if something refers to it."""
        found = self._workflow_type_table()
        try:
            if found is not None:
                assoc, wf_column, _ = found
                self.catalog.delete(assoc.schema, assoc.name, urls.eq(wf_column, rid))
            self.catalog.delete(table.schema, table.name, urls.eq("RID", rid))
        except errors.RemoteStatusError as exc:
            _reraise_unless_refused(exc)  # 409: something refers to it now; 403: no right to delete
            log.info("workflow %s is a duplicate that cannot be removed (%s); it is kept", rid, exc)
            return False
        log.info("workflow %s: another machine inserted the same workflow first; ours was removed", rid)
        return True

    def _workflow_type_table(self) -> tuple[Table, str, str] | None:
        """``Workflow_Workflow_Type`` found by its foreign keys: (table, workflow column, type column)."""
        assert self.map is not None
        wf = self.map.ml_table("Workflow")
        vocab = self.map.vocabulary("Workflow_Type")
        if vocab is None:
            return None
        for t in self.map.model.tables():
            to_wf = t.fkeys_to(wf.schema, wf.name, "RID")
            to_type = t.fkeys_to(vocab.schema, vocab.name, "Name")
            if len(to_wf) == 1 and len(to_type) == 1:
                return t, to_wf[0].columns[0], to_type[0].columns[0]
        return None

    def _workflow_types(self, rows: list[Any], rids: dict[int, str]) -> dict[int, str]:
        """``Workflow_Workflow_Type`` rows (natural key, ``onconflict=skip``); the refused workflows, with why.

        One request for all; when it is refused, one per workflow, so a bad one fails alone."""
        found = self._workflow_type_table()
        if found is None or not rows:
            return {}
        table, wf_column, type_column = found
        self._ensure_used_terms("Workflow_Type", {wt for r in rows for wt in (r.workflow_type or "").split(",") if wt})

        def body(group: list[Any]) -> list[dict]:
            return [{wf_column: rids[r.id], type_column: wt} for r in group for wt in (r.workflow_type or "").split(",") if wt]

        refused: dict[int, str] = {}
        for group in ([rows], [[r] for r in rows]):
            refused.clear()
            for part in group:
                rows_of_part = body(part)
                if not rows_of_part:
                    continue
                try:
                    self.catalog.insert(table.schema, table.name, rows_of_part, on_conflict_skip=True)
                except errors.RemoteStatusError as exc:
                    _reraise_unless_refused(exc)
                    refused.update({r.id: str(exc) for r in part})
            if not refused or len(rows) == 1:
                break
        return refused

    # --- 3. executions ---------------------------------------------------------------------------

    def _push_executions(self) -> None:
        assert self.map is not None
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(ExecutionRow, WorkflowRow.remote_rid.label("workflow_remote_rid"), WorkflowRow.sync_state.label("wf_state"))
                .outerjoin(WorkflowRow, WorkflowRow.id == ExecutionRow.workflow_id)
                .where(ExecutionRow.sync_state == "local")
            ).all()
        if not rows:
            return
        blocked = [r for r in rows if r.workflow_id is not None and r.wf_state not in ON_REMOTE]
        for r in blocked:  # not a failure of the execution: it waits, pending, for its workflow
            self.result.fail("executions", r.rid, "waiting for its workflow to reach the remote; the next sync retries")
        rows = [r for r in rows if r not in blocked]
        table = self.map.ml_table("Execution")
        if not self.leases:  # the status step rewrites Status_Detail (our marker) with the real value
            outcome = self._insert_marked(ExecutionRow, table, rows, "Status_Detail", lambda r: {
                "Workflow": r.workflow_remote_rid, "Description": r.description, "Status": _inserted_status(r.status),
                **self._durations(table, r)})
        else:
            rids = self._reserve(ExecutionRow, "executions", rows)
            items = []
            for r in rows:
                body = {"RID": rids[r.id], "Workflow": r.workflow_remote_rid, "Description": r.description,
                        "Status": _inserted_status(r.status), "Status_Detail": r.status_detail,
                        **self._durations(table, r)}
                items.append(RowToInsert(r.id, rids[r.id], {k: v for k, v in body.items() if k in table.columns}))
            outcome = insert_exactly_once(self.catalog, table, items)
            with write_transaction(self.engine) as conn:  # the remote now has the status it was inserted with
                for r in rows:
                    if r.id in outcome.present:
                        conn.execute(update(ExecutionRow).where(ExecutionRow.id == r.id).values(
                            remote_status=_inserted_status(r.status)))
        self._requeue_for_lost_workflows(self.map.ml_table("Workflow"), rows, outcome)
        self._mark(ExecutionRow, "executions", outcome, {r.id: r.rid for r in rows}, "execution")
        self._emit("executions", len(rows), len(rows))

    def _requeue_for_lost_workflows(self, wf_table: Table, rows: list[Any], outcome: InsertOutcome) -> None:
        """Executions refused because the workflow row we adopted is gone (its maker removed it, having lost
        the race for the first row): the workflow goes back in line, the executions wait for it."""
        refused = {r.workflow_remote_rid: r for r in rows if r.id in outcome.refused and r.workflow_remote_rid}
        if not refused:
            return
        present = {f["RID"] for f in self.catalog.lookup(wf_table.schema, wf_table.name, "RID", list(refused),
                                                         columns=("RID",))}
        gone = [rid for rid in refused if rid not in present]
        if not gone:
            return
        with write_transaction(self.engine) as conn:
            conn.execute(update(WorkflowRow).where(WorkflowRow.remote_rid.in_(gone)).values(
                remote_rid=None, sync_state="local", sync_error=None))
        for r in rows:
            if r.id in outcome.refused and r.workflow_remote_rid in gone:
                del outcome.refused[r.id]
                self.result.fail("executions", r.rid, "its workflow's catalog row was removed meanwhile; "
                                                      "the workflow goes again, and this execution with the next sync")

    @staticmethod
    def _durations(table: Table, r: Any) -> dict[str, Any]:
        """Durations in the columns this catalog has: ``Duration`` (1.24, text) or ``Execution_Duration`` (main)."""
        if r.execution_duration is None:
            return {}
        seconds = float(r.execution_duration)
        out: dict[str, Any] = {}
        for column in ("Execution_Duration", "Duration"):
            col = table.columns.get(column)
            if col is None:
                continue
            if col.typename in ("float4", "float8", "numeric", "int4", "int8"):
                out[column] = round(seconds, 3) if col.typename.startswith(("float", "numeric")) else int(seconds)
            else:
                h, rest = divmod(int(seconds), 3600)
                m, s = divmod(rest, 60)
                out[column] = f"{h}H {m}min {s}sec"
        return out

    # --- 4. bytes ------------------------------------------------------------------------------------

    def _targets(self, names: set[str]) -> dict[str, AssetTarget | str]:
        assert self.map is not None
        return {n: self.map.asset(n) for n in names}

    def _push_objects(self) -> None:
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(AssetRow.id, AssetRow.rid, AssetRow.asset_table, AssetRow.url, AssetRow.filename,
                       AssetRow.blake3, AssetRow.md5, AssetRow.length)
                .where(AssetRow.sync_state == "local", AssetRow.object_url.is_(None))
                .order_by(AssetRow.id)
            ).all()
        if not rows:
            return
        targets = self._targets({r.asset_table for r in rows})
        bad = [r for r in rows if isinstance(targets[r.asset_table], str)]
        for table_name in {r.asset_table for r in bad}:
            self._fail_rows(AssetRow, "objects", [r for r in bad if r.asset_table == table_name], targets[table_name])  # type: ignore[arg-type]
        rows = [r for r in rows if not isinstance(targets[r.asset_table], str) and r.blake3]
        named = self._urls_in_catalog(targets, [r for r in rows if r.length <= HEADLESS_PUT])
        items = [
            ObjectToSend(r.id, r.rid, r.url, r.filename, Digest(r.blake3, r.md5, r.length),
                         may_exist=named is None or r.length > HEADLESS_PUT or r.url in named)
            for r in rows
        ]
        total_bytes = sum(i.digest.size for i in items)
        sent_bytes = 0

        def on_bytes(n: int) -> None:
            nonlocal sent_bytes
            sent_bytes += n
            self._emit("bytes", sent_bytes, total_bytes, "bytes")

        done = 0
        sender = ObjectSender(
            self.engine, self.store.cache, self.remote.hatrac, chunked_threshold=self.chunked_threshold,
            chunk_size=self.chunk_size, transfers=self.transfers, on_bytes=on_bytes, stop=self.stop,
        )

        def on_done(s: Sent) -> None:
            nonlocal done
            done += 1
            self.result.bytes_sent += s.bytes_sent
            if s.object_url is not None:
                if s.reused:
                    self.result.skipped["objects"] += 1
                else:
                    self.result.done["objects"] += 1
            elif s.error is not None:
                self._fail_rows(AssetRow, "objects", [_Row(s.item.asset_id, s.item.rid)], s.error)
            elif not self.stop.is_set():
                self.result.fail("objects", s.item.rid, "the object store did not confirm the bytes; the next sync retries")
            self._emit("objects", done, len(items))

        sender.send_all(items, on_done)

    def _urls_in_catalog(self, targets: dict[str, Any], rows: list[Any]) -> set[str] | None:
        """Of these objects' URLs, those some catalog row already names (another push sent them): a few
        ``URL=any(...)`` reads for the whole push instead of a HEAD per object. None when the catalog
        did not answer: every object is then HEADed first."""
        found: set[str] = set()
        by_table: dict[str, list[str]] = defaultdict(list)
        for r in rows:
            by_table[r.asset_table].append(r.url)
        try:
            for table_name, wanted in by_table.items():
                target = targets[table_name]
                found.update(row["URL"] for row in self.catalog.lookup(target.schema, target.name, "URL", wanted,
                                                                       columns=("URL",)))
        except errors.AuthenticationError:
            raise
        except errors.RemoteError as exc:
            log.info("the catalog did not say which objects it knows (%s): each is HEADed first", exc)
            return None
        return found

    # --- 5. asset rows -----------------------------------------------------------------------------------

    def _push_assets(self) -> None:
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(AssetRow).where(AssetRow.sync_state == "local", AssetRow.object_url.is_not(None)).order_by(AssetRow.id)
            ).all()
        if not rows:
            return
        targets = self._targets({r.asset_table for r in rows})
        by_table: dict[str, list[Any]] = defaultdict(list)
        for r in rows:
            by_table[r.asset_table].append(r)
        done = 0
        for table_name, group in by_table.items():
            target = targets[table_name]
            if isinstance(target, str):
                self._fail_rows(AssetRow, "assets", group, target)
                continue
            unknown_cols = {
                r.id: sorted(set(r.asset_metadata or {}) - set(target.table.columns)) for r in group
            }
            bad = [r for r in group if unknown_cols[r.id]]
            for r in bad:
                self._fail_rows(
                    AssetRow, "assets", [r],
                    f"metadata column(s) {', '.join(unknown_cols[r.id])} are not in {target.table}; "
                    "add the columns on the server, or fix the metadata, then sync with --retry-failed",
                )
            group = [r for r in group if not unknown_cols[r.id]]
            rids = self._reserve(AssetRow, "assets", group) if self.leases else {r.id: "" for r in group}
            items = [
                RowToInsert(r.id, rids[r.id], {
                    "RID": rids[r.id], "URL": r.url, "Filename": r.filename, "Length": r.length, "MD5": r.md5,
                    **({"Description": r.description} if "Description" in target.table.columns else {}),
                    **(r.asset_metadata or {}),
                })
                for r in group
            ]
            if self.leases:
                outcome = insert_exactly_once(self.catalog, target.table, items, natural_key="URL")
            else:
                outcome = insert_by_key(self.catalog, target.table, items, "URL", unique=True)
            # conflict detection starts from the description the catalog holds when it is one this asset had
            # here (sent now, or by a push that died), else from the value our pending edits started from
            held = self._held_descriptions(target, [outcome.present[r.id] for r in group if r.id in outcome.present])
            with write_transaction(self.engine) as conn:
                present = [r for r in group if r.id in outcome.present]
                edits = _pending_description_edits(conn, [r.id for r in present])
                if present:
                    conn.execute(update(AssetRow).where(AssetRow.id == bindparam("b_id")).values(
                        remote_description=bindparam("b_base")),
                        [{"b_id": r.id, "b_base": _description_base(r, held.get(outcome.present[r.id], r.description),
                                                                     edits.get(r.id, []))} for r in present])
            self._mark(AssetRow, "assets", outcome, {r.id: r.rid for r in group}, "asset")
            done += len(group)
            self._emit("assets", done, len(rows))

    def _held_descriptions(self, target: AssetTarget, rids: list[str]) -> dict[str, Any]:
        if not rids or "Description" not in target.table.columns:
            return {}
        return {row["RID"]: row.get("Description")
                for row in self.catalog.lookup(target.schema, target.name, "RID", rids, columns=("RID", "Description"))}

    # --- 6. tags -------------------------------------------------------------------------------------------

    def _push_tags(self) -> None:
        assert self.map is not None
        with read_transaction(self.engine) as conn:
            adds = conn.execute(
                select(AssetTag.asset_id, AssetTag.term, AssetRow.remote_rid, AssetRow.asset_table)
                .join(AssetRow, AssetRow.id == AssetTag.asset_id)
                .where(AssetTag.sync_state == "local", AssetRow.sync_state.in_(ON_REMOTE))
            ).all()
            removals = conn.execute(
                select(Change.seq, Change.entity_id, Change.detail, AssetRow.remote_rid, AssetRow.asset_table)
                .join(AssetRow, AssetRow.id == Change.entity_id)
                .where(Change.state == "pending", Change.kind == "tag_remove", AssetRow.sync_state.in_(ON_REMOTE))
            ).all()
            current = {(t.asset_id, t.term) for t in conn.execute(select(AssetTag.asset_id, AssetTag.term))} if removals else set()
        if adds:
            missing, refusal = self._ensure_used_terms("Asset_Type", {a.term for a in adds})
            if refusal is not None:
                for a in adds:  # these tags stay local: every sync tries them again, and says why
                    if a.term in missing:
                        self.result.fail("tags", f"{a.remote_rid}:{a.term}",
                                         f"Asset_Type term {a.term!r} is not in the catalog and could not be added: "
                                         f"{refusal}")
                adds = [a for a in adds if a.term not in missing]
        at = now()
        for target, group in self._by_target(adds):
            assoc = target.assoc
            body = [{assoc.asset_type_column: a.remote_rid, assoc.type_column: a.term} for a in group]
            if self._insert_associations("tags", assoc.asset_type, body, [f"{a.remote_rid}:{a.term}" for a in group]):
                continue  # refused: the tags stay local (every sync tries them again, and its result says why)
            with write_transaction(self.engine) as conn:
                conn.connection.driver_connection.executemany(  # one statement for the group, not one per row
                    "UPDATE asset_tags SET sync_state = 'synced' WHERE asset_id = ? AND term = ?",
                    [(a.asset_id, a.term) for a in group])
                _changes_done(conn, "tag_add", sorted({a.asset_id for a in group}), at)
            self.result.done["tags"] += len(group)
        for r in removals:
            term = (r.detail or {}).get("term")
            if (r.entity_id, term) in current:
                with write_transaction(self.engine) as conn:  # re-added since: the add wins, nothing to delete
                    conn.execute(update(Change).where(Change.seq == r.seq).values(state="done"))
                continue
            target = self._targets({r.asset_table})[r.asset_table]
            if isinstance(target, str):
                continue
            assoc = target.assoc
            try:
                self.catalog.delete(
                    assoc.asset_type.schema, assoc.asset_type.name,
                    urls.eq(assoc.asset_type_column, r.remote_rid), urls.eq(assoc.type_column, term),
                )
            except errors.RemoteStatusError as exc:  # stays pending: the next sync tries again
                _reraise_unless_refused(exc)
                self.result.fail("tag_removals", f"{r.remote_rid}:{term}", str(exc))
                continue
            with write_transaction(self.engine) as conn:
                conn.execute(update(Change).where(Change.seq == r.seq).values(state="done"))
            self.result.done["tag_removals"] += 1
        self._emit("tags", len(adds), len(adds))

    def _by_target(self, rows: list[Any]) -> Iterator[tuple[AssetTarget, list[Any]]]:
        """Rows grouped by asset table, with the catalog table each group goes to.

        Tables the catalog lacks are skipped here: the asset step reports those rows.
        """
        by_table: dict[str, list[Any]] = defaultdict(list)
        for r in rows:
            by_table[r.asset_table].append(r)
        for name, group in by_table.items():
            target = self._targets({name})[name]
            if not isinstance(target, str):
                yield target, group

    def _insert_associations(self, step: str, table: Table, body: list[dict], labels: list[str]) -> str | None:
        """Association rows by their natural key, ``onconflict=skip``: repeating them is harmless.

        The server's reason (with each row's failure recorded in the result) when it refused them, else None.
        """
        try:
            self.catalog.insert(table.schema, table.name, body, on_conflict_skip=True)
        except errors.AuthenticationError:
            raise
        except errors.RemoteError as exc:
            for label in labels:
                self.result.fail(step, label, str(exc))
            return str(exc)
        return None

    # --- 7. links ---------------------------------------------------------------------------------------------

    def _push_links(self) -> None:
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(AssetLink.id, AssetLink.role, AssetRow.remote_rid.label("asset_rid"), AssetRow.asset_table,
                       ExecutionRow.remote_rid.label("exe_rid"))
                .join(AssetRow, AssetRow.id == AssetLink.asset_id)
                .join(ExecutionRow, ExecutionRow.id == AssetLink.execution_id)
                .where(AssetLink.sync_state == "local", AssetRow.sync_state.in_(ON_REMOTE), ExecutionRow.sync_state.in_(ON_REMOTE))
            ).all()
        at = now()
        for target, group in self._by_target(rows):
            assoc = target.assoc
            body = []
            for r in group:
                row = {assoc.execution_asset_column: r.asset_rid, assoc.execution_column: r.exe_rid}
                if assoc.role_column:
                    row[assoc.role_column] = r.role
                body.append(row)
            refusal = self._insert_associations("links", assoc.execution, body, [f"{r.asset_rid}/{r.exe_rid}" for r in group])
            if refusal is not None:
                with write_transaction(self.engine) as conn:
                    conn.execute(update(AssetLink).where(AssetLink.id == bindparam("b_id")).values(
                        sync_state="failed", sync_error=refusal), [{"b_id": r.id} for r in group])
                continue
            with write_transaction(self.engine) as conn:
                ids = [r.id for r in group]
                for part in q.chunks(ids):
                    conn.execute(update(AssetLink).where(AssetLink.id.in_(part)).values(sync_state="synced"))
                _changes_done(conn, "link", ids, at)
            self.result.done["links"] += len(group)
        self._emit("links", len(rows), len(rows))

    # --- 8. description edits -------------------------------------------------------------------------------------

    def _push_updates(self) -> None:
        """Description edits: only over the value we last knew the remote had; else a conflict, not an overwrite."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(Change.seq, Change.entity_id, AssetRow.remote_rid, AssetRow.asset_table, AssetRow.description,
                       AssetRow.remote_description)
                .join(AssetRow, AssetRow.id == Change.entity_id)
                .where(Change.state == "pending", Change.kind == "description", AssetRow.sync_state.in_(ON_REMOTE))
                .order_by(Change.seq)
            ).all()
            conflicted = set(conn.execute(select(ConflictRow.asset_id).where(ConflictRow.resolved_at.is_(None))).scalars())
        latest: dict[int, Any] = {}
        for r in rows:
            latest[r.entity_id] = r  # only the current description matters
        at = now()
        for asset_id, r in latest.items():
            if asset_id in conflicted:
                self.result.fail("descriptions", r.remote_rid, "conflict: resolve it with `satchel resolve`")
                continue
            target = self._targets({r.asset_table})[r.asset_table]
            if isinstance(target, str):
                continue
            (current,) = self.catalog.lookup(target.schema, target.name, "RID", [r.remote_rid],
                                             columns=("RID", "Description")) or [{"Description": r.remote_description}]
            if current.get("Description") not in (r.remote_description, r.description):
                with write_transaction(self.engine) as conn:
                    conn.execute(insert(ConflictRow).values(
                        asset_id=asset_id, field="Description", local_value=r.description,
                        remote_value=current.get("Description"), detected_at=at))
                self.result.fail("descriptions", r.remote_rid,
                                 "changed on the server too: a conflict; resolve it with `satchel resolve`")
                continue
            try:
                self.catalog.update(target.schema, target.name, [{"RID": r.remote_rid, "Description": r.description}])
            except errors.RemoteStatusError as exc:  # the edit stays pending: the next sync tries again
                _reraise_unless_refused(exc)
                self.result.fail("descriptions", r.remote_rid, str(exc))
                continue
            with write_transaction(self.engine) as conn:
                conn.execute(update(AssetRow).where(AssetRow.id == asset_id).values(remote_description=r.description))
                conn.execute(
                    update(Change).where(Change.state == "pending", Change.kind == "description",
                                         Change.entity_id == asset_id, Change.seq <= r.seq).values(state="done")
                )
            self.result.done["descriptions"] += 1

    # --- 9. execution status ----------------------------------------------------------------------------------------

    def _push_status(self) -> None:
        assert self.map is not None
        self._mark_uploaded()
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(ExecutionRow).where(
                    ExecutionRow.sync_state.in_(ON_REMOTE),
                    ExecutionRow.origin == "local",
                    (ExecutionRow.remote_status.is_(None)) | (ExecutionRow.remote_status != ExecutionRow.status),
                )
            ).all()
        with read_transaction(self.engine) as conn:
            shown = {r.id: _catalog_status(conn, r.id, r.status) for r in rows}
        rows = [r for r in rows if shown[r.id] != r.remote_status]
        if not rows:
            return
        table = self.map.ml_table("Execution")
        body = []
        for r in rows:
            row = {"RID": r.remote_rid, "Status": shown[r.id], "Status_Detail": r.status_detail,
                   **self._durations(table, r)}
            body.append({k: v for k, v in row.items() if k in table.columns})
        columns = [c for c in body[0] if c != "RID"]
        try:
            self.catalog.update(table.schema, table.name, body, key=("RID",), columns=columns)
        except errors.RemoteStatusError as exc:  # the statuses stay pending: the next sync tries again
            _reraise_unless_refused(exc)
            for r in rows:
                self.result.fail("status", r.remote_rid, str(exc))
            return
        at = now()
        with write_transaction(self.engine) as conn:
            for r in rows:
                conn.execute(update(ExecutionRow).where(ExecutionRow.id == r.id).values(remote_status=shown[r.id]))
            _changes_done(conn, "execution_status", [r.id for r in rows], at)
        self.result.done["status"] += len(rows)

    def _mark_uploaded(self) -> None:
        """Pending_Upload → Uploaded for executions whose outputs the catalog now fully holds (a commit of an
        older satchel stopped at Pending_Upload; commits now end at Uploaded, see ``_catalog_status``)."""
        with write_transaction(self.engine) as conn:
            candidates = conn.execute(
                select(ExecutionRow.id, ExecutionRow.status).where(
                    ExecutionRow.status == Status.Pending_Upload.value, ExecutionRow.sync_state == "synced",
                    ExecutionRow.origin == "local",
                )
            ).all()
            at = now()
            for exe_id, status in candidates:
                if _outputs_on_remote(conn, exe_id):
                    q.record_status(conn, exe_id, status, Status.Uploaded.value, at, None)


def stopped_summary(result: SyncResult) -> str:
    done = ", ".join(f"{n} {k}" for k, n in result.done.items() if n and k != "rid_pool")
    return f"done: {done}" if done else "nothing was finished"


def _inserted_status(status: str) -> str:
    """The Status an execution's row is inserted with: an Uploaded execution's outputs follow the row."""
    return Status.Pending_Upload.value if status == Status.Uploaded.value else status


def _catalog_status(conn: Connection, exe_id: int, status: str) -> str:
    """What the catalog should show: Uploaded (outputs in the store) only once the catalog holds them all."""
    if status == Status.Uploaded.value and not _outputs_on_remote(conn, exe_id):
        return Status.Pending_Upload.value
    return status


def _outputs_on_remote(conn: Connection, exe_id: int) -> bool:
    """Whether every link of the execution, and every tag of its assets, has reached the catalog."""
    pending_links = conn.execute(
        select(AssetLink.id).where(AssetLink.execution_id == exe_id, AssetLink.sync_state != "synced").limit(1)
    ).first()
    pending_tags = conn.execute(
        select(AssetTag.asset_id)
        .join(AssetLink, AssetLink.asset_id == AssetTag.asset_id)
        .where(AssetLink.execution_id == exe_id, AssetTag.sync_state != "synced")
        .limit(1)
    ).first()
    return pending_links is None and pending_tags is None


def _instant(timestamp: str) -> Any:
    """An ERMrest timestamp as a comparable instant (its offset is the server's time zone)."""
    try:
        return datetime.fromisoformat(timestamp).astimezone(timezone.utc)
    except (TypeError, ValueError):
        return datetime.max.replace(tzinfo=timezone.utc)  # unreadable: never the first


def _reraise_unless_refused(exc: errors.RemoteStatusError) -> None:
    """A refusal (4xx) is the item's failure, recorded while the push goes on; a bad login stops the push,
    and a server still failing after the retries (5xx) is left for the next sync."""
    if isinstance(exc, errors.AuthenticationError) or exc.status is None or not 400 <= exc.status < 500:
        raise exc


class _Row:
    """The two fields ``_fail_rows`` needs, for items that are not journal rows."""

    def __init__(self, row_id: int, rid: str):
        self.id = row_id
        self.rid = rid


def _pending_description_edits(conn: Connection, asset_ids: list[int]) -> dict[int, list[dict]]:
    """Each asset's pending description edits (``{"old": ..., "new": ...}``), oldest first."""
    out: dict[int, list[dict]] = defaultdict(list)
    for part in q.chunks(asset_ids):
        for entity_id, detail in conn.execute(
                select(Change.entity_id, Change.detail).where(Change.state == "pending", Change.kind == "description",
                                                              Change.entity_id.in_(part)).order_by(Change.seq)):
            out[entity_id].append(detail or {})
    return out


def _description_base(r: Any, held: Any, edits: list[dict]) -> Any:
    """The remote description our pending edits of asset ``r`` are made over (see ``_push_updates``)."""
    if held in {r.description, *(d.get("old") for d in edits), *(d.get("new") for d in edits)}:
        return held  # the catalog holds a value of ours: edits since go over it
    return edits[0].get("old") if edits else r.description  # another writer's row: compared with where we started


def _changes_done(conn: Connection, kind: str, entity_ids: list[int], at: str) -> None:
    for part in q.chunks(entity_ids):
        conn.execute(
            update(Change).where(Change.state == "pending", Change.kind == kind, Change.entity_id.in_(part)).values(state="done")
        )


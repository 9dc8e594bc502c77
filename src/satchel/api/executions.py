"""Execution calls of ``DerivaML``: create (offline, its RID known at once), resume, and the queries over them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from satchel.api import commit, placement
from satchel.api.config import AssetSpec, ExecutionConfiguration, LocalFile, Workflow
from satchel.api.execution import Execution
from satchel.api.records import AssetFilePath, ExecutionRecord, ExecutionSnapshot, UploadReport
from satchel.api.workflows import record_workflow, workflow_of
from satchel.api.workspace import Workspace
from satchel.errors import ExecutionError, RemoteError, SatchelError, StoreBusyError
from satchel.journal import queries as q
from satchel.journal import read_transaction, write_transaction
from satchel.journal.models import AssetLink, AssetRow, ExecutionRow, Registration, StatusEvent, WorkflowRow
from satchel.journal.resolve import asset_id, row_id
from satchel.mlschema import INPUT_FILE
from satchel.status import TERMINAL, Status, status_of
from satchel.store import allocate_rids, instant, now

FIX = "list them with ml.list_executions() or `satchel ls --executions`"
#: statuses ``find_incomplete_executions`` returns: work a user would resume, retry or clean up
INCOMPLETE = (Status.Created, Status.Running, Status.Stopped, Status.Failed, Status.Pending_Upload)


class ExecutionCalls:
    workspace: Workspace
    mode: Any

    def create_execution(
        self,
        configuration: ExecutionConfiguration | None = None,
        *,
        datasets: Sequence[Any] | None = None,
        assets: Sequence[Any] | None = None,
        workflow: Workflow | str | None = None,
        description: str | None = None,
        dry_run: bool = False,
    ) -> Execution:
        """Create an execution, offline, with its RID known at once.

        Input assets of the configuration are placed in
        ``<working_dir>/downloaded-assets/<Table>/<RID>/<Filename>`` from the
        cache and linked as inputs; all of it is checked before anything is
        recorded. As in deriva-ml, the execution needs a workflow.
        """
        ws = self.workspace
        if configuration is not None and any(x is not None for x in (datasets, assets, description)):
            raise TypeError("pass either an ExecutionConfiguration or keyword arguments, not both")
        if configuration is None:
            configuration = ExecutionConfiguration(
                datasets=list(datasets or []), assets=list(assets or []), workflow=workflow, description=description or ""
            )
        elif workflow is not None:
            configuration.workflow = workflow
        wf = configuration.workflow
        if wf is None:
            raise ExecutionError(
                "Workflow must be specified either in configuration or as a parameter: "
                "pass workflow=ml.create_workflow(name, workflow_type) (or a recorded workflow's URL)"
            )
        if isinstance(wf, str):
            wf = configuration.workflow = self._workflow_named(wf)
        ws.check_terms("Workflow_Type", wf.workflow_types)
        specs = [a for a in configuration.assets if isinstance(a, AssetSpec)]
        local_files = [a for a in configuration.assets if isinstance(a, LocalFile)]
        inputs = [ws.lookup_asset(spec.rid) for spec in specs]
        # from the check that the inputs' bytes are here until they are placed, gc leaves them be
        with ws.store.cache.use.shared():
            for a in inputs:  # each input's bytes are in the cache, or this raises before anything is written
                placement.digest_for(ws.store, a.rid, a.md5, a.length, a.filename)
            for lf in local_files:  # raises before anything is written
                if not Path(lf.path).is_file():
                    raise ExecutionError(f"LocalFile {lf.path} is not a file; pass the path of an existing file")
            local_paths = [os.fspath(Path(lf.path).resolve()) for lf in local_files]
            if dry_run:
                row = ExecutionRow(id=0, rid="0000", configuration=configuration.to_json())  # never stored
                return Execution(ws, row, dry_run=True)
            # local input files go into the cache, durably, before the transaction that records them with the execution
            local_items, local_digests = commit.capture_inputs(ws, local_paths) if local_paths else ([], [])
            at = now()
            with write_transaction(ws.engine) as conn:
                wf_rid = record_workflow(ws, conn, wf)
                wf_id = q.resolve_rid(conn, wf_rid)[1]  # type: ignore[index]
                (rid,) = allocate_rids(conn, ws.store.store_id, "execution", 1)
                exe_id = conn.execute(
                    insert(ExecutionRow)
                    .values(
                        rid=rid, workflow_id=wf_id, description=configuration.description, status=Status.Created.value,
                        configuration=configuration.to_json(), working_dir=str(ws.store.execution_dir(rid)),
                        created_at=at, origin="local", sync_state="local",
                    )
                    .returning(ExecutionRow.id)
                ).scalar_one()
                conn.execute(insert(StatusEvent).values(execution_id=exe_id, from_status=None, to_status="Created", at=at))
                q.append_changes(conn, [{"kind": "execution", "entity_kind": "execution", "entity_id": exe_id}], at)
                if inputs:
                    ids = [asset_id(conn, a.rid) for a in inputs]
                    q.add_links(conn, [(i, exe_id, "Input") for i in ids], at)
                    q.add_tags(conn, [(i, INPUT_FILE) for i in ids], at)
                local_rids = commit.record_assets(conn, ws.store.store_id, exe_id, local_items, local_digests, at,
                                                  role="Input") if local_items else []
                row = conn.execute(select(ExecutionRow).where(ExecutionRow.id == exe_id)).one()
            exe = Execution(ws, row)
            exe.working_dir.mkdir(parents=True, exist_ok=True)
            for asset in inputs:
                dest_dir = exe.working_dir / "downloaded-assets" / asset.asset_table / asset.rid
                (placed,) = exe.download_assets([asset.rid], dest_dir, update_catalog=False)
                placed.asset_types = sorted({*asset.asset_types, INPUT_FILE})
                exe.asset_paths.setdefault(asset.asset_table, []).append(placed)
            for path, item, rid in zip(local_paths, local_items, local_rids, strict=True):
                exe.asset_paths.setdefault(item.asset_table, []).append(AssetFilePath(
                    path, asset_table=item.asset_table, file_name=item.file_name, asset_types=[INPUT_FILE], asset_rid=rid))
        return exe

    def _workflow_named(self, url_or_rid: str) -> Workflow:
        """deriva-ml resolves a string workflow by URL; a RID of a recorded one is taken too."""
        try:
            return self.lookup_workflow_by_url(url_or_rid)  # type: ignore[attr-defined]
        except SatchelError:
            return self.lookup_workflow(url_or_rid)  # type: ignore[attr-defined]

    def resume_execution(self, execution_rid: str) -> Execution:
        """Reopen an execution recorded in this store (by any of its RIDs)."""
        with read_transaction(self.workspace.engine) as conn:
            found = row_id(conn, execution_rid, "execution", FIX)
            row = conn.execute(select(ExecutionRow).where(ExecutionRow.id == found)).one()
            pending = q.pending_registrations(conn, row.id)
        exe = Execution(self.workspace, row)
        exe.adopt_pending(pending)
        return exe

    restore_execution = resume_execution

    def execution_history(self, execution_rid: str) -> list[dict[str, Any]]:
        """Every status change of an execution, in order, with its time and detail."""
        with read_transaction(self.workspace.engine) as conn:
            found = row_id(conn, execution_rid, "execution", FIX)
            rows = conn.execute(select(StatusEvent).where(StatusEvent.execution_id == found).order_by(StatusEvent.id)).all()
        return [{"from": r.from_status, "to": r.to_status, "at": r.at, "detail": r.detail} for r in rows]

    # --- queries -------------------------------------------------------------------------------

    def lookup_execution(self, execution_rid: str) -> ExecutionRecord:
        """The execution with this RID (its own, its server RID or an alias), as a record."""
        with read_transaction(self.workspace.engine) as conn:
            found = row_id(conn, execution_rid, "execution", FIX)
            return self._records(conn, ExecutionRow.id == found)[0]

    def find_executions(self, workflow: Workflow | str | None = None, workflow_type: str | None = None,
                        status: Status | str | None = None, sort: Any = None, dataset: Any = None,
                        dataset_role: str = "any") -> list[ExecutionRecord]:
        """Executions of a workflow (a Workflow or its RID), of a workflow type, and/or in a status, oldest first.

        ``sort`` is accepted and not taken; datasets are a later release, so ``dataset`` is refused.
        """
        if dataset is not None:
            raise ExecutionError("find_executions(dataset=...) needs datasets, which satchel does not record yet; "
                                 "filter by workflow, workflow_type or status")
        where = []
        if workflow is not None:
            wf_rid = workflow.rid if isinstance(workflow, Workflow) else workflow
            with read_transaction(self.workspace.engine) as conn:
                wf_id = row_id(conn, wf_rid or "", "workflow", "find it with ml.find_workflows()")
            where.append(ExecutionRow.workflow_id == wf_id)
        if workflow_type is not None:
            ids = select(WorkflowRow.id).where(func.instr("," + WorkflowRow.workflow_type + ",", f",{workflow_type},") > 0)
            where.append(ExecutionRow.workflow_id.in_(ids))
        if status is not None:
            where.append(ExecutionRow.status == str(status))
        with read_transaction(self.workspace.engine) as conn:
            return self._records(conn, *where)

    def find_executions_consuming(self, rid: str) -> list[ExecutionRecord]:
        """The executions that took this asset as an input (an empty list: nothing recorded used it)."""
        with read_transaction(self.workspace.engine) as conn:
            found = asset_id(conn, rid)
            users = select(AssetLink.execution_id).where(AssetLink.asset_id == found, AssetLink.role == "Input")
            return self._records(conn, ExecutionRow.id.in_(users))

    def list_executions(self, *, status: Status | str | Sequence[Status | str] | None = None,
                        workflow_rid: str | None = None, mode: Any = None,
                        since: datetime | None = None) -> list[ExecutionSnapshot]:
        """Every execution of this store, newest last, optionally by status, workflow or creation time."""
        where = []
        if status is not None:
            wanted = [status] if isinstance(status, str | Status) else list(status)
            where.append(ExecutionRow.status.in_([str(s) for s in wanted]))
        if workflow_rid is not None:
            with read_transaction(self.workspace.engine) as conn:
                where.append(ExecutionRow.workflow_id == row_id(conn, workflow_rid, "workflow",
                                                                "find it with ml.find_workflows()"))
        with read_transaction(self.workspace.engine) as conn:
            found = self._snapshots(conn, *where)
        if since is None:
            return found
        moment = since if since.tzinfo else since.replace(tzinfo=timezone.utc)  # times are compared as instants:
        return [s for s in found if s.created_at >= moment]  # a pulled row's RCT keeps the server's offset

    def find_incomplete_executions(self) -> list[ExecutionSnapshot]:
        """Executions to resume, retry or clean up: any status but Uploaded and Aborted."""
        return self.list_executions(status=list(INCOMPLETE))

    def commit_pending_executions(self, *, execution_rids: Sequence[str] | None = None, clean_folder: bool = False,
                                  remote: Any = None, **push_options: Any) -> Any:
        """Commit what these executions registered, then push.

        The default is every execution with registered files that is past
        Running; one still Created or Running (maybe at work in another
        process) is listed in ``errors``, to be named if it died. deriva-ml
        uploads here; satchel commits into the store (offline) and then pushes
        the store to the catalog. When the push cannot happen (offline, no
        credentials, another sync at work) the commits stand and ``errors`` says
        so; the next ``satchel push`` sends the work.
        """
        skipped: list[str] = []
        with read_transaction(self.workspace.engine) as conn:
            if execution_rids is None:
                pending = select(Registration.execution_id).where(Registration.asset_id.is_(None))
                found = conn.execute(select(ExecutionRow.rid, ExecutionRow.status).where(ExecutionRow.id.in_(pending))
                                     .order_by(ExecutionRow.id)).all()
                # a Running one may be at work in another process: committing would stop it under its feet
                rids = [r.rid for r in found if r.status not in (Status.Created, Status.Running)]
                skipped = [r.rid for r in found if r.status in (Status.Created, Status.Running)]
            else:
                rids = list(execution_rids)
        report = UploadReport(execution_rids=list(rids))
        report.errors += [f"{rid}: not committed, it is still Created or Running (another process may be running "
                          f"it); if it died, name it: commit_pending_executions(execution_rids=[{rid!r}])"
                          for rid in skipped]
        for rid in rids:
            try:
                done = self.resume_execution(rid).commit_output_assets(clean_folder=clean_folder)
            except SatchelError as exc:  # each execution's failure is its own
                report.total_failed += 1
                report.errors.append(f"{rid}: {exc}")
                continue
            report.total_uploaded += done.total_uploaded
            report.assets += done.assets
            for key, counts in done.per_table.items():
                report.count(key, "uploaded", counts["uploaded"])
        try:
            pushed = self.push(remote=remote, **push_options)  # type: ignore[attr-defined]
            report.errors += [str(f) for f in pushed.failed]
        except (RemoteError, StoreBusyError) as exc:  # the commits stand; the push is for later
            report.errors.append(f"committed in the store; not pushed ({exc}); run `satchel push` when online")
        return report

    # --- records -------------------------------------------------------------------------------

    def _records(self, conn: Any, *where: Any) -> list[ExecutionRecord]:
        rows = conn.execute(select(ExecutionRow).where(*where).order_by(ExecutionRow.id)).all()
        workflows = self._workflows(conn, rows)
        return [
            ExecutionRecord(
                execution_rid=r.remote_rid or r.rid, workflow=workflows.get(r.workflow_id), status=status_of(r.status),
                description=r.description or "", start_time=instant(r.start_time), stop_time=instant(r.stop_time),
                duration=r.execution_duration, synced=r.sync_state in ("synced", "remote"), owner=self,
            )
            for r in rows
        ]

    def _snapshots(self, conn: Any, *where: Any) -> list[ExecutionSnapshot]:
        rows = conn.execute(select(ExecutionRow).where(*where).order_by(ExecutionRow.id)).all()
        workflows = self._workflows(conn, rows)
        ids = [r.id for r in rows]
        pending_files = dict(conn.execute(
            select(Registration.execution_id, func.count()).where(Registration.asset_id.is_(None),
                                                                  Registration.execution_id.in_(ids))
            .group_by(Registration.execution_id)).all())
        unsent = dict(conn.execute(
            select(AssetLink.execution_id, func.count()).join(AssetRow, AssetRow.id == AssetLink.asset_id)
            .where(AssetLink.execution_id.in_(ids), AssetRow.sync_state.in_(("local", "failed")),
                   AssetLink.role == "Output").group_by(AssetLink.execution_id)).all())
        failed = dict(conn.execute(
            select(AssetLink.execution_id, func.count()).join(AssetRow, AssetRow.id == AssetLink.asset_id)
            .where(AssetLink.execution_id.in_(ids), AssetRow.sync_state == "failed")
            .group_by(AssetLink.execution_id)).all())
        unsent_links = dict(conn.execute(
            select(AssetLink.execution_id, func.count()).where(AssetLink.execution_id.in_(ids),
                                                               AssetLink.sync_state != "synced")
            .group_by(AssetLink.execution_id)).all())
        root = self.workspace.store.root
        out = []
        for r in rows:
            wf = workflows.get(r.workflow_id)
            events = [t for t in (r.created_at, r.start_time, r.stop_time, r.commit_time) if t]
            out.append(ExecutionSnapshot(
                rid=r.remote_rid or r.rid, workflow_rid=wf.rid if wf else None, description=r.description or "",
                status=status_of(r.status), mode=self.mode, working_dir_rel=_relative(r.working_dir, root),
                start_time=instant(r.start_time), stop_time=instant(r.stop_time),
                last_activity=max(instant(t) for t in events),  # type: ignore[type-var]
                error=r.status_detail if r.status in TERMINAL else None,
                sync_pending=r.sync_state not in ("synced", "remote") or bool(unsent_links.get(r.id))
                or r.remote_status != r.status,
                created_at=instant(r.created_at),  # type: ignore[arg-type]
                pending_rows=unsent_links.get(r.id, 0) + (r.sync_state not in ("synced", "remote")),
                failed_rows=1 if r.sync_state == "failed" else 0,
                pending_files=pending_files.get(r.id, 0) + unsent.get(r.id, 0), failed_files=failed.get(r.id, 0),
            ))
        return out

    @staticmethod
    def _workflows(conn: Any, rows: list[Any]) -> dict[int, Workflow]:
        ids = {r.workflow_id for r in rows if r.workflow_id is not None}
        if not ids:
            return {}
        return {w.id: workflow_of(w) for w in conn.execute(select(WorkflowRow).where(WorkflowRow.id.in_(ids)))}




def _relative(path: str | None, root: Path) -> str:
    if not path:
        return ""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return path

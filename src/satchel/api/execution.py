"""Execution: one run of a workflow, with the files it reads and writes.

Everything here is local: the journal records the execution, its status
history, the files registered for output and the links to every asset it read
or wrote; the sync engine tells the catalog later. Registration lives in
:mod:`satchel.api.registration`, the commit in :mod:`satchel.api.commit`,
downloads in :mod:`satchel.api.placement`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update

from satchel.api import commit, placement, registration
from satchel.api.config import ExecutionConfiguration
from satchel.api.records import Asset, AssetFilePath, UploadProgress, UploadReport
from satchel.api.workspace import Workspace
from satchel.cache.objects import gc_paused
from satchel.errors import ExecutionError
from satchel.journal import queries as q
from satchel.journal import read_transaction, write_transaction
from satchel.journal.models import ExecutionRow, Registration, WorkflowRow
from satchel.mlschema import INPUT_FILE, OUTPUT_FILE
from satchel.status import TERMINAL, Status, check_transition, status_of
from satchel.store import instant, now

log = logging.getLogger("satchel.execution")

#: what ``commit_output_assets`` passes to its ``progress_callback``
ProgressCallback = Callable[[UploadProgress], None]
#: deriva-ml's upload tuning, accepted and unused: a commit moves no bytes over the network
COMMIT_TUNING = frozenset({"chunk_size", "timeout", "max_retries", "retry_delay", "max_workers", "transfers"})


class Execution:
    """A run of a workflow. Create it with ``ml.create_execution``; use it as a context manager."""

    def __init__(self, workspace: Workspace, row: ExecutionRow, *, dry_run: bool = False) -> None:
        self._ws = workspace
        self._id = row.id
        self.execution_rid: str = row.rid
        self.dry_run = dry_run
        self.working_dir = workspace.store.execution_dir(row.rid)
        self._configuration = dict(row.configuration or {})
        self.asset_paths: dict[str, list[AssetFilePath]] = {}
        self._in_block = False
        self._handed_out: dict[tuple[str, str], AssetFilePath] = {}
        self._staged_dirs: dict[str, str] = {}  # asset table -> its staging directory, made
        self._types_json: dict[tuple[str, ...], str] = {}

    def adopt_pending(self, pending: list[Any]) -> None:
        """Hand out again the registrations a resumed execution left pending."""
        for reg in pending:
            self._handed_out[(reg.asset_table, reg.file_name)] = AssetFilePath(
                reg.staged_path, asset_table=reg.asset_table, file_name=reg.file_name, asset_types=reg.asset_types,
                asset_metadata=reg.asset_metadata, description=reg.description, execution=self,
            )

    # --- identity and what it was created with --------------------------------------------

    @property
    def rid(self) -> str:
        return self.execution_rid

    def __repr__(self) -> str:
        return f"<Execution {self.execution_rid}>"

    def _row(self) -> Any:
        with read_transaction(self._ws.engine) as conn:
            return conn.execute(select(ExecutionRow).where(ExecutionRow.id == self._id)).one()

    @property
    def configuration(self) -> ExecutionConfiguration:
        """What the execution was created from (workflow, input assets, description, argv)."""
        return ExecutionConfiguration(**self._configuration)

    @property
    def description(self) -> str:
        return self._configuration.get("description") or ""

    @property
    def workflow_rid(self) -> str | None:
        """The RID of the execution's workflow (the catalog's once synced)."""
        if self.dry_run:
            return None
        with read_transaction(self._ws.engine) as conn:
            found = conn.execute(
                select(WorkflowRow.rid, WorkflowRow.remote_rid)
                .join(ExecutionRow, ExecutionRow.workflow_id == WorkflowRow.id).where(ExecutionRow.id == self._id)
            ).first()
        return None if found is None else found.remote_rid or found.rid

    @property
    def synced(self) -> bool:
        """Whether the catalog has confirmed all of this execution: its row, its status, every link (so every
        asset it produced or used), and no registered file waits for a commit."""
        if self.dry_run:
            return False
        with read_transaction(self._ws.engine) as conn:
            row = conn.execute(select(ExecutionRow.sync_state, ExecutionRow.status, ExecutionRow.remote_status)
                               .where(ExecutionRow.id == self._id)).one()
            if row.sync_state not in ("synced", "remote") or row.remote_status != row.status:
                return False
            waiting = conn.execute(select(q.links_t.c.asset_id).where(
                q.links_t.c.execution_id == self._id, q.links_t.c.sync_state != "synced").limit(1)).first()
            registered = conn.execute(select(Registration.id).where(
                Registration.execution_id == self._id, Registration.asset_id.is_(None)).limit(1)).first()
        return waiting is None and registered is None

    # --- status --------------------------------------------------------------------------

    @property
    def status(self) -> Status:
        if self.dry_run:
            return Status.Created
        with read_transaction(self._ws.engine) as conn:
            return status_of(q.execution_status(conn, self._id))  # type: ignore[return-value]

    @property
    def error(self) -> str | None:
        """The error recorded when the execution failed or was aborted, else None."""
        if self.dry_run:
            return None
        row = self._row()
        return row.status_detail if row.status in TERMINAL else None

    @property
    def start_time(self) -> datetime | None:
        return None if self.dry_run else instant(self._row().start_time)

    @property
    def stop_time(self) -> datetime | None:
        return None if self.dry_run else instant(self._row().stop_time)

    def execute(self) -> Execution:
        """deriva-ml's ``with exe.execute() as e:``; the execution itself is the context manager."""
        return self

    def __enter__(self) -> Execution:
        self.execution_start()
        self._in_block = True
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        self._in_block = False
        if self.status != Status.Running:
            return False
        if exc_type is None:
            self.execution_stop()
        else:
            self.update_status(Status.Failed, error=f"{exc_type.__name__}: {exc}")
        return False

    def execution_start(self) -> None:
        """Created → Running, recording the start time (what entering the ``with`` block does)."""
        self.update_status(Status.Running)

    def execution_stop(self) -> None:
        """Running → Stopped, recording the stop time and duration (what leaving the block does)."""
        self.update_status(Status.Stopped)

    def update_status(self, target: Status | str, message: str | None = None, *, error: str | None = None) -> None:
        """Move to ``target`` if the state machine allows it; recorded locally with its time.

        ``error`` (deriva-ml's keyword) is kept for Failed and Aborted, as ``error`` reads it back;
        ``message`` (the user guide's second argument) is the status detail the catalog shows.
        """
        if self.dry_run:
            return
        at = now()
        with write_transaction(self._ws.engine) as conn:
            row = conn.execute(select(ExecutionRow).where(ExecutionRow.id == self._id)).one()
            tgt = check_transition(self.execution_rid, row.status, str(target))
            if error is not None and tgt not in TERMINAL:
                log.warning("error= is kept only for Failed or Aborted; %s ignores it: %s", tgt.value, error)
                error = None
            extra: dict[str, Any] = {}
            if tgt is Status.Running:
                extra["start_time"] = at
            elif row.status == Status.Running and tgt in (Status.Stopped, *TERMINAL):
                extra["stop_time"] = at
                if row.start_time:
                    extra["execution_duration"] = (
                        datetime.fromisoformat(at) - datetime.fromisoformat(row.start_time)
                    ).total_seconds()
            q.record_status(conn, self._id, row.status, tgt.value, at, error if error is not None else message, **extra)

    def abort(self) -> None:
        self.update_status(Status.Aborted)

    # --- registering outputs ---------------------------------------------------------------

    def asset_file_path(
        self,
        asset_name: str,
        file_name: str | os.PathLike[str],
        asset_types: Sequence[str] | str | None = None,
        copy_file: bool = False,
        rename_file: str | None = None,
        metadata: dict[str, Any] | None = None,
        description: str | None = None,
        **kwargs: Any,
    ) -> AssetFilePath:
        """Register a file as an output of this execution; returns the path to write (or the staged link).

        Modes: a ``file_name`` that does not exist yet is a new file to write at
        the returned path; an existing file is staged as a symlink (or a copy
        with ``copy_file=True``), under ``rename_file`` if given. ``metadata``
        (and extra keyword arguments) become the asset table's metadata columns.
        """
        req = registration.check(self._ws, asset_name, file_name, asset_types, copy_file, rename_file,
                                 metadata, description, kwargs)
        staged_dir = self._staged_dirs.get(asset_name)
        if staged_dir is None:
            staged_dir = os.fspath(self.working_dir / "assets" / asset_name)
            os.makedirs(staged_dir, exist_ok=True)
            if not self.dry_run:
                self._staged_dirs[asset_name] = staged_dir
        if self.dry_run:
            return AssetFilePath(f"{staged_dir}/{req.target}", asset_table=asset_name, file_name=req.target,
                                 asset_types=req.types, asset_metadata=req.metadata)
        if (asset_name, req.target) in self._handed_out:
            raise registration.duplicate(asset_name, req.target, self.execution_rid)
        key = tuple(req.types)
        types_json = self._types_json.get(key)
        if types_json is None:
            types_json = self._types_json[key] = json.dumps(req.types)
        staged = registration.record(self._ws, self._id, self.execution_rid, req, staged_dir, types_json)
        afp = AssetFilePath(staged, asset_table=asset_name, file_name=req.target, asset_types=req.types,
                            asset_metadata=req.metadata, description=description, execution=self)
        self._handed_out[(asset_name, req.target)] = afp
        return afp

    def metrics_file(self, filename: str = "metrics.jsonl") -> AssetFilePath:
        """A path for metrics (``Execution_Metadata``, tagged ``Metrics_File``); the same one every call."""
        known = self._handed_out.get(("Execution_Metadata", filename))
        if known is not None and known.asset_rid is None:
            return known
        return self.asset_file_path("Execution_Metadata", filename, asset_types="Metrics_File")

    def update_registration(self, afp: AssetFilePath, **changes: Any) -> None:
        """Change the types or metadata of a registered, uncommitted file (the journal is the one source)."""
        if "asset_types" in changes:
            changes["asset_types"] = self._ws.check_asset_types(afp.asset_table or "", changes["asset_types"])
        with write_transaction(self._ws.engine, durable=False) as conn:
            res = conn.execute(
                update(Registration)
                .where(
                    Registration.execution_id == self._id,
                    Registration.asset_table == afp.asset_table,
                    Registration.file_name == afp.file_name,
                    Registration.asset_id.is_(None),
                )
                .values(**changes)
            )
            if res.rowcount == 0:
                raise ExecutionError(f"{afp} is not a pending registration of execution {self.execution_rid}")
        for key, value in changes.items():
            setattr(afp, key, value)

    def unregister_asset(self, path: os.PathLike[str] | str) -> None:
        """Forget a registered, uncommitted file (e.g. one that was never written)."""
        staged = Path(path)
        with write_transaction(self._ws.engine, durable=False) as conn:
            res = conn.execute(
                delete(Registration).where(
                    Registration.execution_id == self._id,
                    Registration.staged_path == str(staged),
                    Registration.asset_id.is_(None),
                )
            )
            if res.rowcount == 0:
                raise ExecutionError(f"{path} is not a pending registration of execution {self.execution_rid}")
        if staged.is_symlink():
            staged.unlink()
        self._handed_out = {k: v for k, v in self._handed_out.items() if Path(v) != staged}

    # --- commit --------------------------------------------------------------------------

    def commit_output_assets(
        self, clean_folder: bool | None = None, progress_callback: ProgressCallback | None = None, **tuning: Any
    ) -> UploadReport:
        """Capture every registered file into the cache and record the assets, all in one transaction.

        The bytes recorded are the bytes at commit: later edits to a symlinked
        original change nothing. Each asset gets the caller's tags plus
        ``Output_File`` and an ``Output`` link to this execution, and the
        execution goes Stopped → Pending_Upload → Uploaded: uploaded into the
        store, durable, and sent to the catalog by the next push (docs/api.md,
        "What Uploaded means"). Calling it again with nothing new is a no-op.
        deriva-ml's upload tuning (``chunk_size``, ``timeout``...) is accepted
        and has nothing to tune here; ``satchel push`` takes its own.
        """
        unknown = set(tuning) - COMMIT_TUNING
        if unknown:
            raise TypeError(f"commit_output_assets() got unexpected keyword argument(s): {', '.join(sorted(unknown))}")
        report = UploadReport(execution_rids=[self.execution_rid])
        if self.dry_run:
            return report
        if self._in_block:
            raise ExecutionError(
                f"commit_output_assets() was called inside the `with` block of execution {self.execution_rid}; "
                "call it after the block ends"
            )
        ws = self._ws
        clean = clean_folder if clean_folder is not None else ws.clean_execution_dir
        with read_transaction(ws.engine) as conn:
            status = q.execution_status(conn, self._id)
            items = commit.pending(conn.connection.driver_connection, self._id)
        if status == Status.Running:
            self.update_status(Status.Stopped)
            status = Status.Stopped.value
        if not items and status in (Status.Pending_Upload, Status.Uploaded):
            if clean:  # a commit killed after its journal transaction left its staged files
                self._clean_staging()
            return report
        if status in (Status.Created, Status.Aborted):
            raise ExecutionError(
                f"execution {self.execution_rid} is {status}; only a run execution commits outputs "
                "(use `with exe:` around the work, then commit)"
            )
        sizes = commit.sizes_of(self.execution_rid, items)

        def on_capture(done: int, total: int) -> None:
            if progress_callback is not None:
                progress_callback(UploadProgress(
                    bytes_completed=done, bytes_total=total, percent_complete=100.0 * done / total if total else 100.0,
                    phase="capture", message=f"{done} of {total} files captured into the store"))

        # gc_paused: thousands of small objects, no cycles (see pause_gc); the cache's use lock: no gc
        # removes an object this commit found already cached before the journal names it
        with gc_paused(), ws.store.cache.use.shared():
            recorded = commit.capture_and_record(
                ws, self._id, self.execution_rid, items, sizes, clean=clean,
                on_capture=on_capture)
        report.bytes_captured, report.new_objects = recorded.bytes_captured, recorded.new_objects
        for reg, rid in zip(items, recorded.rids, strict=True):
            afp = self._handed_out.get((reg.asset_table, reg.file_name)) or AssetFilePath(
                reg.staged_path, asset_table=reg.asset_table, file_name=reg.file_name,
                asset_types=reg.asset_types, asset_metadata=commit.metadata(reg.asset_metadata),
            )
            afp.asset_rid = rid
            afp.asset_types = sorted({*afp.asset_types, OUTPUT_FILE})
            report.assets.append(afp)
            report.count(f"{ws.schema_of(reg.asset_table)}/{reg.asset_table}")
        report.total_uploaded = len(report.assets)
        if clean:
            self._clean_staging()
        if progress_callback is not None:
            progress_callback(UploadProgress(bytes_completed=len(items), bytes_total=len(items), percent_complete=100.0,
                                             phase="commit", message=f"{len(items)} assets committed"))
        return report

    upload_execution_outputs = commit_output_assets  # the v1.24 name, for old scripts

    def _clean_staging(self) -> None:
        shutil.rmtree(self.working_dir / "assets", ignore_errors=True)
        self._staged_dirs.clear()

    @property
    def uploaded_assets(self) -> dict[str, list[AssetFilePath]]:
        """Every asset this execution committed, as ``{"schema/Table": [AssetFilePath with asset_rid]}``."""
        out: dict[str, list[AssetFilePath]] = {}
        if self.dry_run:
            return out
        for a in self.list_assets("Output"):
            afp = AssetFilePath(a.filename, asset_table=a.asset_table, file_name=a.filename,
                                asset_types=a.asset_types, asset_metadata=a.metadata, asset_rid=a.rid,
                                description=a.description)
            out.setdefault(f"{self._ws.schema_of(a.asset_table)}/{a.asset_table}", []).append(afp)
        return out

    # --- inputs ------------------------------------------------------------------------------

    def download_asset(
        self, asset_rid: str, dest_dir: os.PathLike[str] | str, update_catalog: bool = True, use_cache: bool = False
    ) -> AssetFilePath:
        """Put an asset's bytes at ``dest_dir/<Filename>`` and record it as an input of this execution.

        Bytes come from the local cache, verified; a file already there with
        the same bytes is left alone (no copy, no re-hash when unchanged).
        ``update_catalog=True`` records an ``Input`` link and the ``Input_File``
        tag, keeping the asset's other tags. Bytes always come from satchel's
        cache; ``use_cache=True`` also pins them there, so that ``satchel gc``
        keeps them for later runs (as deriva-ml's cached downloads stay).
        """
        placed = self.download_assets([asset_rid], dest_dir, update_catalog=update_catalog)[0]
        if use_cache and not self.dry_run:
            self._ws.pin_downloaded([asset_rid])
        return placed

    def download_assets(
        self, asset_rids: Sequence[str], dest_dir: os.PathLike[str] | str, update_catalog: bool = True
    ) -> list[AssetFilePath]:
        """``download_asset`` for many assets: one read, the files, then one transaction for the links.

        All RIDs and bytes are checked before any file is written or anything recorded.
        """
        with gc_paused():  # a few objects per asset, no cycles: see pause_gc
            return self._download_assets(list(asset_rids), Path(dest_dir), update_catalog)

    def _download_assets(self, asset_rids: list[str], dest: Path, update_catalog: bool) -> list[AssetFilePath]:
        ws = self._ws
        with read_transaction(ws.engine) as conn:  # one snapshot for the plan, the tags and the links
            placed = placement.plan(ws.store, conn, asset_rids, dest)
            ids = [p.asset_id for p in placed]
            record = update_catalog and not self.dry_run and bool(placed)
            tags = q.tags_by_asset(conn, ids)
            linked = {a for a, _ in q.present_links(conn, ids, self._id)} if record else set()
        placement.apply(ws.store, placed, dest)
        # the write lock only when something is missing: a repeated download records nothing new
        if record and any(i not in linked or INPUT_FILE not in tags.get(i, ()) for i in ids):
            at = now()
            with write_transaction(ws.engine) as conn:
                q.add_links(conn, [(i, self._id, "Input") for i in ids], at)
                q.add_tags(conn, [(i, INPUT_FILE) for i in ids], at)
                tags = q.tags_by_asset(conn, ids)
        return [
            AssetFilePath(
                p.dest, asset_table=p.row.asset_table, file_name=p.dest, asset_types=sorted(tags.get(p.asset_id, ())),
                asset_metadata=commit.metadata(p.row.asset_metadata), asset_rid=p.rid, description=p.row.description,
            )
            for p in placed
        ]

    def list_assets(self, asset_role: str | None = None) -> list[Asset]:
        """Every asset linked to this execution (optionally in one role: ``Input`` or ``Output``)."""
        if self.dry_run:
            return []
        with read_transaction(self._ws.engine) as conn:
            return self._ws.execution_assets(conn, self._id, asset_role)



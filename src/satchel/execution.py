"""Execution: one run of a workflow, with the files it reads and writes.

Everything here is local: the journal records the execution, its status
history, the files registered for output and the links to every asset it read
or wrote; the sync engine tells the catalog later.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import shutil
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

from sqlalchemy import delete, select, update

from satchel._crashpoints import crash_point
from satchel.asset import AssetFilePath
from satchel.cache.durable import remove_quietly, temp_name
from satchel.cache.objects import ObjectCache, gc_paused
from satchel.errors import (
    CommitError,
    DuplicateAssetError,
    ExecutionError,
    MissingSourceError,
)
from satchel.journal import queries as q
from satchel.journal import read_transaction, write_transaction
from satchel.journal.models import ExecutionRow, Registration
from satchel.mlschema import INPUT_FILE, OUTPUT_FILE
from satchel.status import Status, check_transition
from satchel.store import allocate_rids, now

if TYPE_CHECKING:
    from satchel.ml import DerivaML

log = logging.getLogger("satchel.execution")

#: deriva-ml renames this file: a leading underscore upsets S3-backed Hatrac
_RENAMED = {"_implementations.log": "-implementations.log"}

ProgressCallback = Callable[[str, int, int], None]

_INSERT_REGISTRATION = (
    "INSERT INTO registrations (execution_id, asset_table, file_name, staged_path, source_path, mode,"
    " asset_types, asset_metadata, description, registered_at) VALUES (?,?,?,?,?,?,?,?,?,?)"
)


def hatrac_url(table: str, md5: str, filename: str) -> str:
    """The MD5-keyed object name deriva-ml uses: ``/hatrac/<Table>/<md5>.<filename>``, percent-encoded.

    A file name too long for Hatrac's storage is shortened (:func:`leaf_name`); the asset's
    ``Filename`` keeps it whole.
    """
    return f"/hatrac/{_quoted(table)}/{leaf_name(md5 + '.', filename)}"


#: Hatrac's filesystem backend keeps each version as the file ``<last name component>:<version>`` (a
#: 26-character version id) in its namespace's directory, so that component, as sent (percent-encoded),
#: may have at most 255 - 27 characters; a longer one gets 500 ``[Errno 36] File name too long`` and
#: leaves the name behind without content (measured on Hatrac 1.3, docs/remote.md)
MAX_LEAF = 228


def leaf_name(prefix: str, filename: str) -> str:
    """``prefix`` then ``filename``, percent-encoded, as a last name component that fits :data:`MAX_LEAF`.

    A filename too long for it keeps the start of its stem and its extension, with ``~`` and 8 hex
    digits of the whole name's SHA-256 between them, so that distinct names stay distinct.
    """
    head = _quoted(prefix)
    whole = head + _quoted(filename)
    if len(whole) <= MAX_LEAF:
        return whole
    stem, ext = os.path.splitext(filename)
    tag = "~" + hashlib.sha256(filename.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    tail = quote(ext, safe="")
    room = MAX_LEAF - len(head) - len(tag) - len(tail)
    if room < 0:  # an extension longer than the room: it goes too
        tail, room = "", room + len(tail)
    if room < 0:
        raise ValueError(f"a name prefix of {len(head)} characters leaves no room in {MAX_LEAF}")
    kept: list[str] = []
    for ch in stem:
        piece = quote(ch, safe="")
        if len(piece) > room:
            break
        kept.append(piece)
        room -= len(piece)
    return head + "".join(kept) + tag + tail


#: characters ``quote(..., safe='')`` leaves as they are
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def _quoted(name: str) -> str:
    return name if _UNRESERVED.fullmatch(name) else quote(name, safe="")


@dataclass
class UploadReport:
    """What ``commit_output_assets`` did (deriva-ml's field names; offline, "uploaded" means committed)."""

    execution_rids: list[str]
    total_uploaded: int = 0
    total_failed: int = 0
    per_table: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    assets: list[AssetFilePath] = field(default_factory=list)
    bytes_captured: int = 0
    new_objects: int = 0

    @property
    def committed(self) -> int:
        return self.total_uploaded


class Execution:
    """A run of a workflow. Create it with ``ml.create_execution``; use it as a context manager."""

    def __init__(self, ml: DerivaML, row: ExecutionRow, *, dry_run: bool = False) -> None:
        self._ml = ml
        self._id = row.id
        self.execution_rid: str = row.rid
        self.dry_run = dry_run
        self.working_dir = ml.store.execution_dir(row.rid)
        self.configuration: dict[str, Any] = dict(row.configuration or {})
        self.asset_paths: dict[str, list[AssetFilePath]] = {}
        self._in_block = False
        self._handed_out: dict[tuple[str, str], AssetFilePath] = {}
        self._staged_dirs: dict[str, str] = {}  # asset table -> its staging directory, made
        self._types_json: dict[tuple[str, ...], str] = {}

    # --- identity and status ------------------------------------------------------

    @property
    def rid(self) -> str:
        return self.execution_rid

    @property
    def status(self) -> Status:
        if self.dry_run:
            return Status.Created
        with read_transaction(self._ml.store.engine) as conn:
            return Status(q.execution_status(conn, self._id))

    def __repr__(self) -> str:
        return f"<Execution {self.execution_rid}>"

    def execute(self) -> Execution:
        """deriva-ml's ``with exe.execute() as e:``; the execution itself is the context manager."""
        return self

    def __enter__(self) -> Execution:
        self.update_status(Status.Running)
        self._in_block = True
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        self._in_block = False
        if self.status != Status.Running:
            return False
        if exc_type is None:
            self.update_status(Status.Stopped)
        else:
            self.update_status(Status.Failed, error=f"{exc_type.__name__}: {exc}")
        return False

    def update_status(self, target: Status | str, *, error: str | None = None) -> None:
        """Move to ``target`` if the state machine allows it; recorded locally with its time."""
        if self.dry_run:
            return
        at = now()
        with write_transaction(self._ml.store.engine) as conn:
            row = conn.execute(select(ExecutionRow).where(ExecutionRow.id == self._id)).one()
            tgt = check_transition(self.execution_rid, row.status, str(target))
            extra: dict[str, Any] = {}
            if tgt is Status.Running:
                extra["start_time"] = at
            elif row.status == Status.Running and tgt in (Status.Stopped, Status.Failed, Status.Aborted):
                extra["stop_time"] = at
                if row.start_time:
                    extra["execution_duration"] = (
                        datetime.fromisoformat(at) - datetime.fromisoformat(row.start_time)
                    ).total_seconds()
            q.record_status(conn, self._id, row.status, tgt.value, at, error, **extra)

    def abort(self) -> None:
        self.update_status(Status.Aborted)

    # --- registering outputs --------------------------------------------------------

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
        ml = self._ml
        new_table = ml._check_asset_table(asset_name)
        types = ml._check_asset_types(asset_name, asset_types)
        name = os.fspath(file_name)
        if "/" in name:
            path = Path(name)
            source = os.fspath(path if path.is_absolute() else Path.cwd() / path)
            base = path.name
        else:  # the common case, a bare name, needs no path parsing
            source, base = f"{os.getcwd()}/{name}", name
        meta = dict(metadata or {})
        meta.update(kwargs)
        exists = os.path.exists(source)
        if exists and os.path.isdir(source):
            raise ExecutionError(
                f"{source} is a directory; an asset is one file: register the files in it one by one "
                "(or archive the directory and register the archive)"
            )
        if rename_file is not None:
            if not exists:
                raise MissingSourceError(
                    f"rename_file={rename_file!r} needs an existing file to rename, but {source} does not exist; "
                    "write the file first, or drop rename_file to register a new file"
                )
            target = rename_file
        else:
            target = base
        target = _RENAMED.get(target, target)
        _check_target_name(target)
        mode = "new" if not exists else ("copy" if copy_file else "symlink")
        staged_dir = self._staged_dirs.get(asset_name)
        if staged_dir is None:
            staged_dir = os.fspath(self.working_dir / "assets" / asset_name)
            os.makedirs(staged_dir, exist_ok=True)
            if not self.dry_run:
                self._staged_dirs[asset_name] = staged_dir
        staged = f"{staged_dir}/{target}"
        if self.dry_run:
            return AssetFilePath(staged, asset_table=asset_name, file_name=target, asset_types=types, asset_metadata=meta)
        if (asset_name, target) in self._handed_out:
            raise _duplicate(asset_name, target, self.execution_rid)
        prepared = _prepare_stage(mode, source, staged, ml.store.cache) if mode != "new" else None
        key = tuple(types)
        types_json = self._types_json.get(key)
        if types_json is None:
            types_json = self._types_json[key] = json.dumps(types)
        try:
            if new_table:  # recorded once everything above passed: bad input records nothing
                ml._record_asset_table(asset_name)
            with ml.store.fast_writer.transaction() as raw:
                raw.execute(
                    _INSERT_REGISTRATION,
                    (
                        self._id, asset_name, target, staged, _printable(source) if exists else None,
                        prepared[0] if prepared else mode, types_json,
                        json.dumps(meta, default=str) if meta else "{}", description, now(),
                    ),
                )
                # the file system change last, inside the transaction: a failure rolls back the row
                if prepared:
                    crash_point("register.before_rename")
                    os.replace(prepared[1], staged)
                elif os.path.lexists(staged):
                    os.unlink(staged)  # debris of a crash before the row committed; never write through it
        except sqlite3.IntegrityError:
            if prepared:
                remove_quietly(prepared[1])
            raise _duplicate(asset_name, target, self.execution_rid) from None
        except BaseException:
            if prepared:
                remove_quietly(prepared[1])
            raise
        afp = AssetFilePath(
            staged,
            asset_table=asset_name,
            file_name=target,
            asset_types=types,
            asset_metadata=meta,
            description=description,
            execution=self,
        )
        self._handed_out[(asset_name, target)] = afp
        return afp

    def metrics_file(self, filename: str = "metrics.jsonl") -> AssetFilePath:
        return self.asset_file_path("Execution_Metadata", filename, asset_types="Metrics_File")

    def update_registration(self, afp: AssetFilePath, **changes: Any) -> None:
        """Change the types or metadata of a registered, uncommitted file (the journal is the one source)."""
        if "asset_types" in changes:
            changes["asset_types"] = self._ml._check_asset_types(afp.asset_table or "", changes["asset_types"])
        with write_transaction(self._ml.store.engine, durable=False) as conn:
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
        with write_transaction(self._ml.store.engine, durable=False) as conn:
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

    # --- commit ----------------------------------------------------------------------

    def commit_output_assets(
        self, clean_folder: bool | None = None, progress_callback: ProgressCallback | None = None
    ) -> UploadReport:
        """Capture every registered file into the cache and record the assets, all in one transaction.

        The bytes recorded are the bytes at commit: later edits to a symlinked
        original change nothing. Each asset gets the caller's tags plus
        ``Output_File`` and an ``Output`` link to this execution. Offline this
        is the whole job; ``satchel sync`` sends it to the catalog later.
        Calling it again with nothing new registered is a no-op.
        """
        report = UploadReport(execution_rids=[self.execution_rid])
        if self.dry_run:
            return report
        if self._in_block:
            raise ExecutionError(
                f"commit_output_assets() was called inside the `with` block of execution {self.execution_rid}; "
                "call it after the block ends"
            )
        ml = self._ml
        engine = ml.store.engine
        clean = clean_folder if clean_folder is not None else ml.clean_execution_dir
        with read_transaction(engine) as conn:
            status = q.execution_status(conn, self._id)
            pending = _pending(conn.connection.driver_connection, self._id)
        if status == Status.Running:
            self.update_status(Status.Stopped)
            status = Status.Stopped.value
        if not pending and status in (Status.Pending_Upload, Status.Uploaded):
            if clean:  # a commit killed after its journal transaction left its staged files
                self._clean_staging()
            return report
        if status in (Status.Created, Status.Aborted):
            raise ExecutionError(
                f"execution {self.execution_rid} is {status}; only a run execution commits outputs "
                "(use `with exe:` around the work, then commit)"
            )
        sizes: list[int] = []
        missing = []
        for r in pending:
            try:
                sizes.append(os.stat(r.staged_path).st_size)
            except FileNotFoundError:
                missing.append(r)
        if missing:
            names = ", ".join(f"{r.asset_table}/{r.file_name} ({r.staged_path})" for r in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise CommitError(
                f"execution {self.execution_rid}: {len(missing)} registered file(s) were never written: {names}{more}; "
                "write them, or drop them with exe.unregister_asset(path), then commit again. Nothing was committed."
            )

        def on_capture(done: int, total: int) -> None:
            if progress_callback is not None:
                progress_callback("capture", done, total)

        with gc_paused():  # thousands of small objects, no cycles: see pause_gc
            return self._commit(pending, sizes, clean, report, on_capture, progress_callback)

    def _commit(
        self, pending: list[_Pending], sizes: list[int], clean: bool, report: UploadReport,
        on_capture: Callable[[int, int], None], progress_callback: ProgressCallback | None,
    ) -> UploadReport:
        ml = self._ml
        engine = ml.store.engine
        # staged files (new or copied, not symlinks) that the clean-up below deletes may become the
        # cache objects themselves, by hardlink: no second write of their bytes (see ObjectCache._take)
        captured, seal = ml.store.cache.capture_many(
            [r.staged_path for r in pending], sizes=sizes,
            disposable=[clean and r.mode != "symlink" for r in pending], progress=on_capture,
        )
        crash_point("commit.after_capture")
        # the filesystem sync runs while the journal transaction is prepared; the transaction
        # commits only once the sync has returned: bytes durable first, as always
        sealing = ml.store.cache.in_background(seal)
        report.new_objects = sum(1 for c in captured if c.copied)
        report.bytes_captured = sum(c.digest.size for c in captured)
        at = now()
        try:
            with write_transaction(engine) as conn:
                recorded = self._record_assets(conn, pending, [c.digest for c in captured], at) if pending else []
                cur = q.execution_status(conn, self._id)
                if cur != Status.Pending_Upload:
                    tgt = check_transition(self.execution_rid, cur, Status.Pending_Upload.value)
                    q.record_status(conn, self._id, cur, tgt.value, at, None, commit_time=at)
                sealing.result()
                crash_point("commit.before_journal_commit")
        finally:
            futures.wait([sealing])  # never leave the sync running behind an error
        crash_point("commit.after_journal_commit")
        handed_out = self._handed_out
        per_table = report.per_table
        for reg, (_, rid) in zip(pending, recorded, strict=True):
            afp = handed_out.get((reg.asset_table, reg.file_name)) or AssetFilePath(
                reg.staged_path, asset_table=reg.asset_table, file_name=reg.file_name,
                asset_types=reg.asset_types, asset_metadata=json.loads(reg.asset_metadata or "{}") or {},
            )
            afp.asset_rid = rid
            afp.asset_types = sorted({*afp.asset_types, OUTPUT_FILE})
            report.assets.append(afp)
            per_table[reg.asset_table] = per_table.get(reg.asset_table, 0) + 1
        report.total_uploaded = len(report.assets)
        if clean:
            self._clean_staging()
        if progress_callback is not None:
            progress_callback("commit", len(pending), len(pending))
        return report

    def _clean_staging(self) -> None:
        shutil.rmtree(self.working_dir / "assets", ignore_errors=True)
        self._staged_dirs.clear()

    upload_execution_outputs = commit_output_assets  # the v1.24 name, for old scripts

    def _record_assets(self, conn: Any, pending: list[Any], digests: list[Any], at: str) -> list[tuple[int, str]]:
        """Asset rows (reused when the table already has the same URL), tags and links, inside ``conn``.

        Returns each registration's (asset id, asset RID), in order.

        A new asset gets one outbox row; its first tags and its Output link are
        new with it (``sync_state='local'``) and travel with it. Tags and links
        added to an asset that already existed get outbox rows of their own.
        """
        store = self._ml.store
        items = [(reg, d, hatrac_url(reg.asset_table, d.md5, reg.file_name)) for reg, d in zip(pending, digests, strict=True)]
        ids_by_key: dict[tuple[str, str], int] = {}
        rid_of: dict[int, str] = {}
        by_table: dict[str, list[str]] = {}
        for reg, _, url in items:
            by_table.setdefault(reg.asset_table, []).append(url)
        raw = conn.connection.driver_connection  # same sqlite3 connection, same transaction
        for table, urls in by_table.items():
            for part in q.chunks(urls):
                for asset_id, rid, url in raw.execute(
                    f"SELECT id, rid, url FROM assets WHERE asset_table = ? AND url IN ({','.join('?' * len(part))})",
                    (table, *part),
                ):
                    ids_by_key[(table, url)] = asset_id
                    rid_of[asset_id] = rid
        existing_ids = set(ids_by_key.values())
        new_rows = []
        for reg, d, url in items:
            key = (reg.asset_table, url)
            if key not in ids_by_key:
                ids_by_key[key] = -1  # placeholder: the first registration of this key makes the row
                new_rows.append((reg, d, url))
        rids = allocate_rids(conn, store.store_id, "asset", len(new_rows))
        # we hold the write lock (BEGIN IMMEDIATE), so ids past the current maximum are ours
        next_id = raw.execute("SELECT coalesce(max(id), 0) FROM assets").fetchone()[0] + 1
        new_ids = list(range(next_id, next_id + len(new_rows)))
        for (reg, _, url), asset_id, rid in zip(new_rows, new_ids, rids, strict=True):
            ids_by_key[(reg.asset_table, url)] = asset_id
            rid_of[asset_id] = rid
        raw.executemany(
            "INSERT INTO assets (id, rid, asset_table, filename, length, md5, blake3, url, description,"
            " asset_metadata, created_at, origin, sync_state) VALUES (?,?,?,?,?,?,?,?,?,?,?,'local','local')",
            [
                (i, rid, reg.asset_table, reg.file_name, d.size, d.md5, d.blake3, url, reg.description,
                 _metadata_json(reg.asset_metadata), at)
                for (reg, d, url), rid, i in zip(new_rows, rids, new_ids, strict=True)
            ],
        )
        raw.executemany(
            "INSERT INTO changes (kind, entity_kind, entity_id, detail, created_at, state, attempts)"
            " VALUES ('asset', 'asset', ?, '{}', ?, 'pending', 0)",
            [(i, at) for i in new_ids],
        )
        asset_ids = [ids_by_key[(reg.asset_table, url)] for reg, _, url in items]
        new_tags = sorted(
            {(a, t) for (reg, _, _), a in zip(items, asset_ids, strict=True) if a not in existing_ids
             for t in (*reg.asset_types, OUTPUT_FILE)}
        )
        raw.executemany("INSERT INTO asset_tags (asset_id, term, sync_state) VALUES (?, ?, 'local')", new_tags)
        raw.executemany(
            "INSERT INTO asset_links (asset_id, execution_id, role, sync_state) VALUES (?, ?, 'Output', 'local')",
            [(a, self._id) for a in new_ids],
        )
        old = [(reg, a) for (reg, _, _), a in zip(items, asset_ids, strict=True) if a in existing_ids]
        if old:
            q.add_tags(conn, [(a, t) for reg, a in old for t in {*reg.asset_types, OUTPUT_FILE}], at)
            q.add_links(conn, [(a, self._id, "Output") for _, a in old], at)
        raw.executemany(
            "UPDATE registrations SET asset_id = ? WHERE id = ?",
            [(a, reg.id) for reg, a in zip(pending, asset_ids, strict=True)],
        )
        return [(a, rid_of[a]) for a in asset_ids]

    # --- inputs ------------------------------------------------------------------------

    def download_asset(
        self, asset_rid: str, dest_dir: os.PathLike[str] | str, update_catalog: bool = True, use_cache: bool = False
    ) -> AssetFilePath:
        """Put an asset's bytes at ``dest_dir/<Filename>`` and record it as an input of this execution.

        Bytes come from the local cache, verified; a file already there with
        the same bytes is left alone (no copy, no re-hash when unchanged).
        ``update_catalog=True`` records an ``Input`` link and the ``Input_File``
        tag, keeping the asset's other tags. ``use_cache`` is accepted for
        compatibility: satchel always uses its cache.
        """
        return self.download_assets([asset_rid], dest_dir, update_catalog=update_catalog)[0]

    def download_assets(
        self, asset_rids: Sequence[str], dest_dir: os.PathLike[str] | str, update_catalog: bool = True
    ) -> list[AssetFilePath]:
        """``download_asset`` for many assets: one read, the files, then one transaction for the links.

        All RIDs and bytes are checked before any file is written or anything recorded.
        """
        with gc_paused():  # a few objects per asset, no cycles: see pause_gc
            return self._download_assets(list(asset_rids), Path(dest_dir), update_catalog)

    def _download_assets(self, asset_rids: list[str], dest: Path, update_catalog: bool) -> list[AssetFilePath]:
        ml = self._ml
        with read_transaction(ml.store.engine) as conn:  # one snapshot for the plan, the tags and the links
            placed = ml._plan_placement(conn, asset_rids, dest)
            ids = [p.asset_id for p in placed]
            record = update_catalog and not self.dry_run and bool(placed)
            tags = q.tags_by_asset(conn, ids)
            linked = {a for a, _ in q.present_links(conn, ids, self._id)} if record else set()
        ml._apply_placement(placed, dest)
        # the write lock only when something is missing: a repeated download records nothing new
        if record and any(i not in linked or INPUT_FILE not in tags.get(i, ()) for i in ids):
            at = now()
            with write_transaction(ml.store.engine) as conn:
                q.add_links(conn, [(i, self._id, "Input") for i in ids], at)
                q.add_tags(conn, [(i, INPUT_FILE) for i in ids], at)
                tags = q.tags_by_asset(conn, ids)
        return [
            AssetFilePath(
                p.dest,
                asset_table=p.row.asset_table,
                file_name=p.dest,
                asset_types=sorted(tags.get(p.asset_id, ())),
                asset_metadata=_metadata(p.row.asset_metadata),
                asset_rid=p.rid,
                description=p.row.description,
            )
            for p in placed
        ]

    def list_assets(self, asset_role: str | None = None) -> list[tuple[str, str, str]]:
        """(asset RID, asset table, role) for every asset linked to this execution."""
        with read_transaction(self._ml.store.engine) as conn:
            return q.execution_links(conn, self._id, asset_role)


class _Pending(NamedTuple):
    """A registration waiting for the commit, as the commit reads it (metadata kept as stored JSON)."""

    id: int
    asset_table: str
    file_name: str
    staged_path: str
    mode: str
    asset_types: list[str]
    asset_metadata: str | None
    description: str | None


def _pending(raw: sqlite3.Connection, execution_id: int) -> list[_Pending]:
    """The execution's pending registrations, in order, read with the bare driver (one row per file)."""
    types_of: dict[str, list[str]] = {}
    out = []
    for rid, table, name, staged, mode, types, meta, description in raw.execute(
        "SELECT id, asset_table, file_name, staged_path, mode, asset_types, asset_metadata, description"
        " FROM registrations WHERE execution_id = ? AND asset_id IS NULL ORDER BY id",
        (execution_id,),
    ):
        parsed = types_of.get(types)
        if parsed is None:
            parsed = types_of[types] = (json.loads(types) if types else None) or []
        out.append(_Pending(rid, table, name, staged, mode, parsed, meta, description))
    return out


def _metadata(stored: Any) -> dict[str, Any]:
    """Asset metadata as the journal stores it (JSON text, most often ``{}``), as a dict of its own."""
    if not isinstance(stored, str):
        return stored or {}
    return {} if stored == "{}" else json.loads(stored)


def _metadata_json(meta: Any) -> str:
    """Asset metadata as the journal stores it: JSON text passes through, a dict is encoded."""
    if isinstance(meta, str):
        return meta if meta != "null" else "{}"
    return json.dumps(meta or {}, default=str)


def _duplicate(table: str, name: str, rid: str) -> DuplicateAssetError:
    return DuplicateAssetError(
        f"{table}/{name} is already registered in execution {rid}; a second file under the same name would "
        "overwrite the first. Pass rename_file='another-name' (or choose another file name)"
    )


def _printable(path: Path) -> str:
    """A path as valid UTF-8 text for the journal (undecodable bytes shown escaped); for the record only."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _check_target_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise ValueError(f"{name!r} cannot be an asset file name; use a plain file name without '/' or NUL")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            f"the file name {name!r} is not valid UTF-8 (the catalog stores names as text); "
            "pass rename_file='a-utf8-name' to register it under another name"
        ) from None


def _prepare_stage(mode: str, source: str, staged: str, cache: ObjectCache) -> tuple[str, str]:
    """Make the staged symlink or copy under a temp name; the caller renames it into place.

    Never writes through an existing ``staged`` path: the rename replaces it.
    A copy is the snapshot deriva-ml's copy mode takes, hashed as it is written
    (the cache remembers its digest), so the commit can take it into the cache
    without reading or writing its bytes again.
    """
    tmp = temp_name(os.path.dirname(staged), os.path.basename(staged))
    if mode == "symlink":
        try:
            os.symlink(source, tmp)
            return "symlink", tmp
        except OSError:
            mode = "copy"
    try:
        cache.stage_copy(source, tmp)
    except BaseException:
        remove_quietly(tmp)
        raise
    return "copy", tmp

"""Registering a file as an output of an execution: checks, staging, and one journal row.

deriva-ml's five modes of ``asset_file_path``: a new file (a staging path to
write), an existing file staged as a symlink or as a copy (under
``rename_file`` if given), and metadata on any of them. The staged symlink or
copy is made under a temp name, then renamed into place inside the row's
transaction, so a failure leaves neither the row nor the file.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from satchel._crashpoints import crash_point
from satchel.api.workspace import Workspace
from satchel.cache.durable import remove_quietly, temp_name
from satchel.cache.objects import ObjectCache
from satchel.errors import BadNameError, DuplicateAssetError, ExecutionError, MissingSourceError
from satchel.store import now

#: deriva-ml renames this file: a leading underscore upsets S3-backed Hatrac
RENAMED = {"_implementations.log": "-implementations.log"}
#: the longest file name a registration takes: what Linux file systems hold in one name
MAX_NAME_BYTES = 255

INSERT_REGISTRATION = (
    "INSERT INTO registrations (execution_id, asset_table, file_name, staged_path, source_path, mode,"
    " asset_types, asset_metadata, description, registered_at) VALUES (?,?,?,?,?,?,?,?,?,?)"
)


@dataclass
class Request:
    """One ``asset_file_path`` call, checked: where the file comes from and where it is staged."""

    asset_table: str
    target: str  # the staged base name: the asset's Filename
    source: str  # absolute path of the caller's file (which may not exist yet)
    exists: bool
    mode: str  # new | symlink | copy
    types: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    new_table: bool = False


def check(ws: Workspace, asset_table: str, file_name: str | os.PathLike[str], asset_types: Any,
          copy_file: bool, rename_file: str | None, metadata: dict[str, Any] | None,
          description: str | None, extra: dict[str, Any]) -> Request:
    """Every check of a registration, before anything is written (bad input changes nothing)."""
    new_table = ws.check_asset_table(asset_table)
    types = ws.check_asset_types(asset_table, asset_types)
    name = os.fspath(file_name)
    if "\0" in name:
        raise BadNameError(f"{name!r} cannot be a file name: it holds a NUL character; pass a name without it")
    if "/" in name:
        path = Path(name)
        source = os.fspath(path if path.is_absolute() else Path.cwd() / path)
        base = path.name
    else:  # the common case, a bare name, needs no path parsing
        source, base = f"{os.getcwd()}/{name}", name
    meta = dict(metadata or {})
    meta.update(extra)
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
    target = RENAMED.get(target, target)
    check_target_name(target)
    mode = "new" if not exists else ("copy" if copy_file else "symlink")
    return Request(asset_table, target, source, exists, mode, types, meta, description, new_table)


def record(ws: Workspace, execution_id: int, execution_rid: str, req: Request, staged_dir: str,
           types_json: str) -> str:
    """Stage the file and write its registration row, in one transaction; returns the staged path."""
    staged = f"{staged_dir}/{req.target}"
    prepared = prepare_stage(req.mode, req.source, staged, ws.store.cache) if req.mode != "new" else None
    try:
        if req.new_table:  # recorded once everything passed: bad input records nothing
            ws.record_asset_table(req.asset_table)
        with ws.store.fast_writer.transaction() as raw:
            raw.execute(
                INSERT_REGISTRATION,
                (
                    execution_id, req.asset_table, req.target, staged, printable(req.source) if req.exists else None,
                    prepared[0] if prepared else req.mode, types_json,
                    json.dumps(req.metadata, default=str) if req.metadata else "{}", req.description, now(),
                ),
            )
            # the file system change last, inside the transaction: a failure rolls back the row
            if prepared:
                crash_point("register.before_rename")
                os.replace(prepared[1], staged)
                if prepared[2] is not None:  # the rename moved the copy's ctime: its stat entry, as it is now
                    ws.store.cache.index.record([(os.stat(staged), prepared[2], False)])
            elif os.path.lexists(staged):
                os.unlink(staged)  # debris of a crash before the row committed; never write through it
    except sqlite3.IntegrityError:
        if prepared:
            remove_quietly(prepared[1])
        raise duplicate(req.asset_table, req.target, execution_rid) from None
    except BaseException:
        if prepared:
            remove_quietly(prepared[1])
        raise
    return staged


def duplicate(table: str, name: str, rid: str) -> DuplicateAssetError:
    return DuplicateAssetError(
        f"{table}/{name} is already registered in execution {rid}; a second file under the same name would "
        "overwrite the first. Pass rename_file='another-name' (or choose another file name)"
    )


def printable(path: str | Path) -> str:
    """A path as valid UTF-8 text for the journal (undecodable bytes shown escaped); for the record only."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def check_target_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise BadNameError(f"{name!r} cannot be an asset file name; use a plain file name without '/' or NUL")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise BadNameError(
            f"the file name {name!r} is not valid UTF-8 (the catalog stores names as text); "
            "pass rename_file='a-utf8-name' to register it under another name"
        ) from None
    if size > MAX_NAME_BYTES:
        raise BadNameError(
            f"the file name {name[:40]!r}... has {size} bytes, more than the {MAX_NAME_BYTES} a file name may have; "
            "pass rename_file='a-shorter-name' (the catalog's Filename is the staged name)"
        )


def prepare_stage(mode: str, source: str, staged: str, cache: ObjectCache) -> tuple[str, str, Any]:
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
            return "symlink", tmp, None
        except OSError:
            mode = "copy"
    try:
        digest = cache.stage_copy(source, tmp)
    except BaseException:
        remove_quietly(tmp)
        raise
    return "copy", tmp, digest

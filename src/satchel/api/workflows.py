"""Workflow calls of ``DerivaML``: create (from the running script's git checkout), record, look up, find.

As deriva-ml does, a workflow made by ``create_workflow`` is identified by the
code that runs it: the URL of the script at its commit, the git object hash of
the file (its checksum) and a version from ``git describe``. Offline this needs
only the local checkout. Recording a workflow reuses one with the same
checksum (or URL), so every run of the same code shares one row.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, select

from satchel.api.config import Workflow
from satchel.journal.resolve import row_id
from satchel.api.workspace import Workspace
from satchel.errors import UnknownRIDError
from satchel.journal import queries as q
from satchel.journal import read_transaction, write_transaction
from satchel.journal.models import WorkflowRow
from satchel.store import allocate_rids, now

log = logging.getLogger("satchel")


class WorkflowCalls:
    workspace: Workspace

    def create_workflow(
        self, name: str, workflow_type: str | list[str], description: str = "", *, url: str | None = None,
        version: str | None = None, checksum: str | None = None,
    ) -> Workflow:
        """A Workflow value for the running script (not yet recorded: ``create_execution`` or ``add_workflow`` does).

        Without ``url``, the script's git checkout gives the URL (``<origin>/blob/<commit>/<path>``),
        the checksum (``git hash-object``) and the version (``git describe``); outside a checkout they
        stay empty. ``DERIVA_ML_WORKFLOW_URL`` / ``DERIVA_ML_WORKFLOW_CHECKSUM`` override them.
        """
        if url is None:
            found = script_identity()
            url, checksum, version = found["url"], checksum or found["checksum"], version or found["version"]
        wf = Workflow(name=name, workflow_type=workflow_type, description=description, url=url, version=version,
                      checksum=checksum)
        self.workspace.check_terms("Workflow_Type", wf.workflow_types)
        return wf

    def add_workflow(self, workflow: Workflow) -> str:
        """Record a workflow, reusing one with the same checksum or URL; returns its RID."""
        self.workspace.check_terms("Workflow_Type", workflow.workflow_types)
        with write_transaction(self.workspace.engine) as conn:
            return record_workflow(self.workspace, conn, workflow)

    def lookup_workflow(self, rid: str) -> Workflow:
        with read_transaction(self.workspace.engine) as conn:
            found = row_id(conn, rid, "workflow", "find it with ml.find_workflows(), or pull the catalog while online")
            row = conn.execute(select(WorkflowRow).where(WorkflowRow.id == found)).one()
        return workflow_of(row)

    def lookup_workflow_by_url(self, url_or_checksum: str) -> Workflow:
        """The workflow with this URL or checksum, else an error naming the fix."""
        with read_transaction(self.workspace.engine) as conn:
            row = conn.execute(
                select(WorkflowRow).where((WorkflowRow.url == url_or_checksum) | (WorkflowRow.checksum == url_or_checksum))
                .order_by(WorkflowRow.id).limit(1)
            ).first()
        if row is None:
            raise UnknownRIDError(
                f"no workflow has URL or checksum {url_or_checksum!r} in this store; record it with "
                "ml.add_workflow(ml.create_workflow(...)), or pull the catalog while online"
            )
        return workflow_of(row)

    def find_workflows(self, sort: Any = None) -> list[Workflow]:
        """Every workflow this store knows (recorded here or pulled), oldest first (``sort`` is not taken)."""
        with read_transaction(self.workspace.engine) as conn:
            return [workflow_of(r) for r in conn.execute(select(WorkflowRow).order_by(WorkflowRow.id))]


def record_workflow(ws: Workspace, conn: Connection, wf: Workflow) -> str:
    """The RID of ``wf`` in the journal: its own, one with the same checksum or URL, or a new row's."""
    if wf.rid:
        found = q.resolve_rid(conn, wf.rid)
        if found is None or found[0] != "workflow":
            raise UnknownRIDError(f"workflow {wf.rid} is not known here; pass a Workflow without rid to record a new one")
        return wf.rid
    existing = q.find_workflow(conn, checksum=wf.checksum, url=wf.url, name=wf.name, version=wf.version)
    if existing is not None:
        wf.rid = existing.remote_rid or existing.rid
        return wf.rid
    at = now()
    (rid,) = allocate_rids(conn, ws.store.store_id, "workflow", 1)
    wf_id = conn.execute(
        insert(WorkflowRow)
        .values(
            rid=rid, name=wf.name, url=wf.url, checksum=wf.checksum, version=wf.version,
            description=wf.description, workflow_type=",".join(wf.workflow_types), created_at=at,
            origin="local", sync_state="local",
        )
        .returning(WorkflowRow.id)
    ).scalar_one()
    q.append_changes(conn, [{"kind": "workflow", "entity_kind": "workflow", "entity_id": wf_id}], at)
    wf.rid = rid
    return rid


def workflow_of(row: Any) -> Workflow:
    return Workflow(
        name=row.name, workflow_type=[t for t in (row.workflow_type or "").split(",") if t], url=row.url,
        version=row.version,
        description=row.description, checksum=row.checksum, rid=row.remote_rid or row.rid,
    )


# --- the running script's identity, from git ----------------------------------------------------------


def script_identity(script: str | os.PathLike[str] | None = None) -> dict[str, str | None]:
    """URL, checksum and version of ``script`` (default: the running one) from its git checkout."""
    if "DERIVA_ML_WORKFLOW_URL" in os.environ:
        return {"url": os.environ["DERIVA_ML_WORKFLOW_URL"],
                "checksum": os.environ.get("DERIVA_ML_WORKFLOW_CHECKSUM") or None, "version": None}
    path = Path(script) if script is not None else _running_script()
    none = {"url": None, "checksum": None, "version": None}
    if path is None or not path.is_file():
        return none
    root = _git(path.parent, "rev-parse", "--show-toplevel")
    if root is None or _git(path.parent, "ls-files", "--error-unmatch", "--", path.name) is None:
        log.info("%s is not a file of a git checkout: its workflow has no URL or checksum", path)
        return none
    commit = _git(Path(root), "log", "-n", "1", "--pretty=format:%H", "--", str(path.resolve()))
    origin = _git(Path(root), "remote", "get-url", "origin")
    relative = path.resolve().relative_to(Path(root).resolve()).as_posix()
    base = (origin or f"file://{root}").removesuffix(".git")
    dirty = _git(Path(root), "status", "--porcelain", "--", relative)
    if dirty:
        log.warning("%s has uncommitted changes: its workflow's checksum is of the file as it is now, "
                    "and its URL names the last commit", relative)
    return {
        "url": f"{base}/blob/{commit or 'HEAD'}/{relative}",
        "checksum": _git(Path(root), "hash-object", "--", str(path.resolve())),
        "version": _git(Path(root), "describe", "--tags", "--always", "--dirty"),
    }


def _running_script() -> Path | None:
    main = sys.modules.get("__main__")
    name = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv and sys.argv[0] not in ("", "-c") else None)
    return Path(name).resolve() if name else None


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None

"""``lookup_lineage``: how an asset or an execution came to exist, walked backward offline.

As deriva-ml does, the walk follows data flow only: from an artifact to the
execution that produced it, to the assets that execution consumed, to their
producers, and so on. It reads the journal, so it answers for work recorded
here and for rows a pull mirrored. A diamond shows a shared producer once
(later meetings are marked ``already_shown``); a cycle (a corrupted history)
is cut and reported; ``depth`` and ``max_executions`` bound the walk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, select

from satchel.errors import UnknownRIDError
from satchel.journal import queries as q
from satchel.journal import read_transaction
from satchel.journal.models import AssetLink, AssetRow, ExecutionRow, WorkflowRow


@dataclass(frozen=True)
class WorkflowSummary:
    rid: str
    name: str | None = None


@dataclass(frozen=True)
class ExecutionSummary:
    rid: str
    status: str
    description: str | None = None
    workflow: WorkflowSummary | None = None


@dataclass(frozen=True)
class AssetSummary:
    rid: str
    asset_table: str
    filename: str | None = None


@dataclass
class LineageNode:
    """One producing execution, what it consumed, and the producers of that (``parents``)."""

    execution: ExecutionSummary
    consumed_datasets: list[Any] = field(default_factory=list)  # datasets come with a later release
    consumed_assets: list[AssetSummary] = field(default_factory=list)
    parents: list[LineageNode] = field(default_factory=list)
    already_shown: bool = False


@dataclass(frozen=True)
class RootDescriptor:
    rid: str
    type: Literal["Asset", "Execution"]
    description: str | None = None
    producing_execution: ExecutionSummary | None = None


@dataclass
class LineageResult:
    root: RootDescriptor
    lineage: LineageNode | None = None
    executions_visited: int = 0
    walked_complete: bool = True
    cycle_detected: bool = False
    depth_capped: bool = False


class LineageCalls:
    workspace: Any

    def lookup_lineage(self, rid: str, *, depth: int | None = None, max_executions: int = 500) -> LineageResult:
        """The chain of executions and inputs behind an asset or an execution (deriva-ml's shape).

        ``depth=0`` gives only the immediate producer; ``depth=N`` that many
        generations of parents. No producer recorded is an answer, not an
        error: ``lineage`` is then ``None``.
        """
        if not isinstance(rid, str) or not rid:
            raise UnknownRIDError(f"{rid!r} is not a RID; pass the RID of an asset or an execution")
        with read_transaction(self.workspace.engine) as conn:
            found = q.resolve_rid(conn, rid)
            if found is None or found[0] == "workflow":
                what = "a workflow" if found else "nothing in this store"
                raise UnknownRIDError(
                    f"RID {rid} names {what}; lineage starts from an asset or an execution "
                    "(while online, `satchel pull` mirrors the catalog's)"
                )
            return _Walk(conn, depth, max_executions).result(*found)


class _Walk:
    def __init__(self, conn: Connection, depth: int | None, max_executions: int) -> None:
        self.conn = conn
        self.depth = depth
        self.max_executions = max_executions
        self.shown: set[int] = set()
        self.out = LineageResult(root=RootDescriptor(rid="", type="Asset"))

    def result(self, kind: str, row_id: int) -> LineageResult:
        if kind == "asset":
            row = self.conn.execute(select(AssetRow).where(AssetRow.id == row_id)).one()
            producers = self._producers([row_id])
            summary = self._execution(producers[0]) if producers else None
            self.out.root = RootDescriptor(row.remote_rid or row.rid, "Asset", row.description, summary)
            if producers:
                self.out.lineage = self._node(producers[0], 0, ())
        else:
            row = self.conn.execute(select(ExecutionRow).where(ExecutionRow.id == row_id)).one()
            self.out.root = RootDescriptor(row.remote_rid or row.rid, "Execution", row.description)
            self.out.lineage = self._node(row_id, 0, ())
        return self.out

    def _node(self, exe_id: int, level: int, path: tuple[int, ...]) -> LineageNode:
        node = LineageNode(self._execution(exe_id))
        if exe_id in self.shown:
            node.already_shown = True
            return node
        self.shown.add(exe_id)
        self.out.executions_visited += 1
        inputs = self.conn.execute(
            select(AssetRow).join(AssetLink, AssetLink.asset_id == AssetRow.id)
            .where(AssetLink.execution_id == exe_id, AssetLink.role == "Input").order_by(AssetRow.id)
        ).all()
        node.consumed_assets = [AssetSummary(a.remote_rid or a.rid, a.asset_table, a.filename) for a in inputs]
        parents = [p for p in self._producers([a.id for a in inputs]) if p != exe_id]
        for parent in parents:
            if parent in path:
                self.out.cycle_detected = True
                continue
            if self.depth is not None and level >= self.depth:
                self.out.depth_capped = True
                break
            if self.out.executions_visited >= self.max_executions and parent not in self.shown:
                self.out.walked_complete = False
                break
            node.parents.append(self._node(parent, level + 1, (*path, exe_id)))
        return node

    def _producers(self, asset_ids: list[int]) -> list[int]:
        if not asset_ids:
            return []
        return list(self.conn.execute(
            select(AssetLink.execution_id).where(AssetLink.asset_id.in_(asset_ids), AssetLink.role == "Output")
            .distinct().order_by(AssetLink.execution_id)
        ).scalars())

    def _execution(self, exe_id: int) -> ExecutionSummary:
        row = self.conn.execute(
            select(ExecutionRow, WorkflowRow.rid.label("wf_rid"), WorkflowRow.remote_rid.label("wf_remote"),
                   WorkflowRow.name.label("wf_name"))
            .outerjoin(WorkflowRow, WorkflowRow.id == ExecutionRow.workflow_id).where(ExecutionRow.id == exe_id)
        ).one()
        workflow = WorkflowSummary(row.wf_remote or row.wf_rid, row.wf_name) if row.wf_rid else None
        return ExecutionSummary(row.remote_rid or row.rid, row.status, row.description, workflow)

"""``lookup_lineage``: how an asset or an execution came to exist, walked backward offline.

As deriva-ml does, the walk follows data flow only: from an artifact to the
execution that produced it, to the assets that execution consumed, to their
producers, and so on. It reads the journal, so it answers for work recorded
here and for rows a pull mirrored. A diamond shows a shared producer once
(later meetings are marked ``already_shown``); a cycle (a corrupted history)
is cut and reported; ``depth`` and ``max_executions`` bound the walk.

``lineage`` is satchel's own, both ways: what a thing came from and what came
of it, as a :class:`~satchel.provenance.LineageGraph` that writes JSON, W3C
PROV, DOT or SVG (docs/lineage.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, select

from satchel.errors import BadArgumentError, UnknownRIDError
from satchel.journal import queries as q
from satchel.journal import read_transaction
from satchel.journal.models import AssetLink, AssetRow, ExecutionRow, WorkflowRow
from satchel.provenance.graph import LineageGraph
from satchel.provenance.nodes import (
    DIRECTIONS, AssetNode, CatalogIdentity, ExecutionNode, LineageEdge, WorkflowNode, node_sort_key,
)


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
        with read_transaction(self.workspace.engine) as conn:
            return _Walk(conn, depth, max_executions).result(*_starting_row(conn, rid))

    def lineage(self, rid: str, *, depth: int | None = None, direction: str = "both") -> LineageGraph:
        """The lineage of an asset or an execution, both ways, offline: a :class:`LineageGraph`.

        ``direction="backward"`` follows what ``rid`` came from (an asset's
        producing execution, that execution's inputs, their producers...);
        ``"forward"`` what came of it (the executions that used it, what they
        wrote, who used that...); ``"both"`` does both. ``depth`` counts
        execution hops: the executions next to an asset root (its producer, its
        users) are one hop away, an execution root itself none; ``None`` walks
        to the end. Rows mirrored by a pull take part like any other.
        """
        if isinstance(depth, bool) or not (depth is None or (isinstance(depth, int) and depth >= 0)):
            raise BadArgumentError(
                f"lineage depth {depth!r} is not a number of execution hops; pass 0 or more, or None for no limit")
        if direction not in DIRECTIONS:
            raise BadArgumentError(
                f"lineage direction {direction!r} is not one of {', '.join(DIRECTIONS)}; pass one of those")
        store = self.workspace.store
        catalog = CatalogIdentity(store.info.get("hostname", "unknown"), store.info.get("catalog_id", "0"),
                                  store.store_id)
        with read_transaction(self.workspace.engine) as conn:
            kind, row_id = _starting_row(conn, rid)
            return _GraphWalk(conn, depth).graph(kind, row_id, direction, catalog)


def _starting_row(conn: Connection, rid: str) -> tuple[str, int]:
    """(kind, row id) of the asset or execution a lineage starts from, or a clear UnknownRIDError."""
    if not isinstance(rid, str) or not rid:
        raise UnknownRIDError(f"{rid!r} is not a RID; pass the RID of an asset or an execution")
    found = q.resolve_rid(conn, rid)
    if found is None or found[0] == "workflow":
        what = "a workflow" if found else "nothing in this store"
        raise UnknownRIDError(
            f"RID {rid} names {what}; lineage starts from an asset or an execution "
            "(while online, `satchel pull` mirrors the catalog's)"
        )
    return found


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


#: per direction: the link role that leads from an asset to the next executions, and from them to assets
_STEPS = {"backward": ("Output", "Input"), "forward": ("Input", "Output")}


class _GraphWalk:
    """Breadth first from the root, one direction at a time, each execution and asset walked once per direction
    (so a cycle ends); edges between rows already in the graph are kept at the ``depth`` cut."""

    def __init__(self, conn: Connection, depth: int | None) -> None:
        self.conn = conn
        self.depth = depth
        self.assets: set[int] = set()
        self.executions: set[int] = set()
        self.links: set[tuple[int, int, str]] = set()  # (asset id, execution id, role)
        self.truncated = False

    def graph(self, kind: str, row_id: int, direction: str, catalog: CatalogIdentity) -> LineageGraph:
        for way in ("backward", "forward"):
            if direction in (way, "both"):
                self._walk(way, {row_id} if kind == "asset" else set(), {row_id} if kind == "execution" else set())
        (self.assets if kind == "asset" else self.executions).add(row_id)
        nodes, shown = self._nodes()
        edges = {LineageEdge("used", shown["e", e], shown["a", a]) if role == "Input"
                 else LineageEdge("wasGeneratedBy", shown["a", a], shown["e", e]) for a, e, role in self.links}
        edges |= {LineageEdge("wasAssociatedWith", n.rid, n.workflow) for n in nodes
                  if isinstance(n, ExecutionNode) and n.workflow}
        root = shown["a" if kind == "asset" else "e", row_id]
        return LineageGraph(root, "asset" if kind == "asset" else "execution", direction, self.depth,
                            tuple(sorted(nodes, key=node_sort_key)), tuple(sorted(edges)), self.truncated, catalog)

    def _walk(self, way: str, assets: set[int], executions: set[int]) -> None:
        to_executions, to_assets = _STEPS[way]
        seen, walked = set(assets), set(executions)
        hop = 1
        while executions or assets:
            for a, e in self._linked(AssetLink.execution_id, executions, to_assets):
                self.links.add((a, e, to_assets))
                if a not in seen:
                    seen.add(a)
                    assets.add(a)
            self.assets |= assets
            executions = set()
            for a, e in self._linked(AssetLink.asset_id, assets, to_executions):
                beyond = self.depth is not None and hop > self.depth
                if e in walked or (beyond and e in self.executions):
                    self.links.add((a, e, to_executions))
                elif beyond:
                    self.truncated = True
                else:
                    self.links.add((a, e, to_executions))
                    executions.add(e)
            walked |= executions
            self.executions |= executions
            assets = set()
            hop += 1

    def _linked(self, column: Any, ids: set[int], role: str) -> list[tuple[int, int]]:
        """(asset id, execution id) of the links with ``role`` whose ``column`` is one of ``ids``."""
        found: list[Any] = []
        for part in q.chunks(sorted(ids)):
            found += self.conn.execute(
                select(AssetLink.asset_id, AssetLink.execution_id).where(column.in_(part), AssetLink.role == role)
            ).all()
        return found

    def _nodes(self) -> tuple[list[Any], dict[tuple[str, int], str]]:
        """Every node of the graph, and the RID each row is shown under, keyed by ("a"|"e"|"w", row id)."""
        executions = self._rows(ExecutionRow, self.executions)
        workflows = self._rows(WorkflowRow, {r.workflow_id for r in executions if r.workflow_id is not None})
        assets = self._rows(AssetRow, self.assets)
        shown = {(key, r.id): r.remote_rid or r.rid
                 for key, rows in (("e", executions), ("w", workflows), ("a", assets)) for r in rows}
        tags = q.tags_by_asset(self.conn, sorted(self.assets))
        nodes: list[Any] = [
            AssetNode(shown["a", r.id], r.rid, r.remote_rid, r.sync_state, table=r.asset_table, filename=r.filename,
                      length=r.length, md5=r.md5, types=tuple(sorted(tags.get(r.id, []))), description=r.description)
            for r in assets
        ]
        nodes += [
            ExecutionNode(shown["e", r.id], r.rid, r.remote_rid, r.sync_state, status=r.status,
                          description=r.description or None, workflow=shown.get(("w", r.workflow_id)),
                          start_time=r.start_time, stop_time=r.stop_time)
            for r in executions
        ]
        nodes += [
            WorkflowNode(shown["w", r.id], r.rid, r.remote_rid, r.sync_state, name=r.name, url=r.url,
                         checksum=r.checksum, version=r.version)
            for r in workflows
        ]
        return nodes, shown

    def _rows(self, model: Any, ids: set[int]) -> list[Any]:
        found: list[Any] = []
        for part in q.chunks(sorted(ids)):
            found += self.conn.execute(select(model).where(model.id.in_(part))).all()
        return found

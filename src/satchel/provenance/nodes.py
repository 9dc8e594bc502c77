"""The parts of a lineage graph: its nodes (assets, executions, workflows) and its typed edges.

Edges point the way W3C PROV's relations read, from the later thing to the one
it depends on:

* ``used``               execution -> an asset it read (an ``Input`` link);
* ``wasGeneratedBy``     asset -> the execution that wrote it (an ``Output`` link);
* ``wasAssociatedWith``  execution -> the workflow it ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

NodeKind = Literal["asset", "execution", "workflow"]

DIRECTIONS: tuple[str, ...] = ("both", "backward", "forward")
EDGE_KINDS: tuple[str, ...] = ("used", "wasGeneratedBy", "wasAssociatedWith")
NODE_ORDER = {"asset": 0, "execution": 1, "workflow": 2}


@dataclass(frozen=True)
class RowIdentity:
    """How a row is named: ``rid`` is the RID to show (the catalog's, once the catalog has the row).

    ``local_rid`` is the RID the row was recorded under here (for a pulled row,
    the catalog's); ``catalog_rid`` is ``None`` until the catalog has the row.
    ``sync_state`` is the journal's: ``local``, ``synced``, ``failed`` or
    ``remote`` (mirrored by a pull).
    """

    rid: str
    local_rid: str
    catalog_rid: str | None
    sync_state: str

    @property
    def pulled(self) -> bool:
        """Mirrored from the catalog by a pull, not recorded in this store."""
        return self.sync_state == "remote"


@dataclass(frozen=True)
class AssetNode(RowIdentity):
    table: str = ""
    filename: str = ""
    length: int = 0
    md5: str = ""
    types: tuple[str, ...] = ()
    description: str | None = None
    kind: NodeKind = field(default="asset", init=False)


@dataclass(frozen=True)
class ExecutionNode(RowIdentity):
    status: str = ""
    description: str | None = None
    workflow: str | None = None  # the RID of its workflow node
    start_time: str | None = None  # ISO 8601 (UTC) when the journal knows it
    stop_time: str | None = None
    kind: NodeKind = field(default="execution", init=False)


@dataclass(frozen=True)
class WorkflowNode(RowIdentity):
    name: str = ""
    url: str | None = None
    checksum: str | None = None
    version: str | None = None
    kind: NodeKind = field(default="workflow", init=False)


Node = AssetNode | ExecutionNode | WorkflowNode


@dataclass(frozen=True, order=True)
class LineageEdge:
    """``source`` -> ``target`` (RIDs of two nodes of one graph), read as "source *kind* target"."""

    kind: str
    source: str
    target: str


@dataclass(frozen=True)
class CatalogIdentity:
    """Where a store's rows belong: the DERIVA host, its catalog, and the store's own id."""

    hostname: str
    catalog_id: str
    store_id: str


def node_sort_key(node: Node) -> tuple[int, str]:
    return NODE_ORDER[node.kind], node.rid


def short_label(node: Node) -> str:
    """A few words that say which thing a node is, for trees and pictures."""
    if isinstance(node, AssetNode):
        return f"{node.table}/{node.filename}"
    if isinstance(node, ExecutionNode):
        return node.description or "execution"
    return node.name or "workflow"

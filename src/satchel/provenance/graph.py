""":class:`LineageGraph`: what an asset or execution came from and what came of it, as one value.

``satchel.api.lineage`` fills it from the journal; its methods write it as
JSON-able data, a W3C PROV document, DOT text or an SVG picture.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from satchel.provenance.nodes import AssetNode, CatalogIdentity, LineageEdge, Node, NodeKind

if TYPE_CHECKING:
    from prov.model import ProvDocument


@dataclass(frozen=True)
class LineageGraph:
    """The lineage of ``root``, read offline from the store (``ml.lineage(rid)``).

    ``nodes`` are sorted (assets, executions, workflows; each by RID) and so are
    ``edges``: the same store gives the same graph in every format.
    ``truncated`` says ``depth`` left executions out.
    """

    root: str
    root_kind: NodeKind
    direction: str
    depth: int | None
    nodes: tuple[Node, ...]
    edges: tuple[LineageEdge, ...]
    truncated: bool
    catalog: CatalogIdentity

    def node(self, rid: str) -> Node:
        """The node shown under this RID."""
        for candidate in self.nodes:
            if candidate.rid == rid:
                return candidate
        raise KeyError(f"{rid} is not a node of this lineage graph; its nodes are listed in .nodes")

    def of_kind(self, kind: NodeKind) -> list[Node]:
        return [n for n in self.nodes if n.kind == kind]

    def edges_of(self, kind: str) -> list[LineageEdge]:
        return [e for e in self.edges if e.kind == kind]

    def as_dict(self) -> dict[str, Any]:
        """JSON-able data (``satchel lineage --format json``), in a documented, stable shape."""
        return {
            "root": self.root,
            "root_kind": self.root_kind,
            "direction": self.direction,
            "depth": self.depth,
            "truncated": self.truncated,
            "catalog": asdict(self.catalog),
            "nodes": [_node_dict(n) for n in self.nodes],
            "edges": [asdict(e) for e in self.edges],
        }

    def to_prov(self) -> ProvDocument:
        """A W3C PROV document (``prov.model.ProvDocument``): serialize it as PROV-JSON, PROV-N..."""
        from satchel.provenance.w3c import prov_document

        return prov_document(self.nodes, self.edges, self.catalog)

    def to_dot(self) -> str:
        """Graphviz's DOT language, for those who have Graphviz."""
        from satchel.provenance.dot import dot_text

        return dot_text(self.root, self.nodes, self.edges)

    def to_svg(self) -> str:
        """A standalone SVG 1.1 picture, laid out by satchel (no Graphviz needed)."""
        from satchel.provenance.svg import svg_text

        return svg_text(self.root, self.nodes, self.edges)


def _node_dict(node: Node) -> dict[str, Any]:
    data = asdict(node)
    if isinstance(node, AssetNode):
        data["types"] = list(node.types)
    data["pulled"] = node.pulled
    return data

"""Lineage as a graph, and its renderings: JSON-able data, W3C PROV, DOT text and an SVG picture.

- ``nodes``: the parts of a graph (``AssetNode``, ``ExecutionNode``, ``WorkflowNode``, ``LineageEdge``)
- ``graph``: ``LineageGraph``, what ``ml.lineage(rid)`` returns
- ``w3c``: the graph as a ``prov.model.ProvDocument``
- ``dot``: the graph in Graphviz's DOT language; ``layout`` and ``svg``: the graph drawn by satchel

This package only reads graphs; ``satchel.api.lineage`` fills them from the journal.
"""

from __future__ import annotations

from satchel.provenance.graph import LineageGraph
from satchel.provenance.nodes import AssetNode, CatalogIdentity, ExecutionNode, LineageEdge, WorkflowNode

__all__ = ["AssetNode", "CatalogIdentity", "ExecutionNode", "LineageEdge", "LineageGraph", "WorkflowNode"]

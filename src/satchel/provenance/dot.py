"""A lineage graph in Graphviz's DOT language (text we write; Graphviz is not needed to make it).

Data flows left to right: an input points at the execution that used it, an
execution at what it wrote; a dashed line joins an execution to its workflow.
Shapes and colours are those of the SVG picture (:mod:`satchel.provenance.svg`).
"""

from __future__ import annotations

from collections.abc import Iterable

from satchel.provenance.nodes import AssetNode, ExecutionNode, LineageEdge, Node, short_label

#: kind -> (DOT shape, fill colour); the SVG picture uses the same colours
STYLE = {
    "asset": ("box", "#fff4b8"),
    "execution": ("box", "#cdd7ff"),  # with rounded corners, as the SVG's pills
    "workflow": ("house", "#ffd9a8"),
}


def dot_text(root: str, nodes: Iterable[Node], edges: Iterable[LineageEdge]) -> str:
    lines = [
        "digraph lineage {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=10, style=filled];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for node in nodes:
        shape, fill = STYLE[node.kind]
        border = ", penwidth=2.5" if node.rid == root else ""
        border += ', style="rounded,filled"' if node.kind == "execution" else ""
        lines.append(f"  {quoted(node.rid)} [shape={shape}, fillcolor={quoted(fill)}, "
                     f"label={quoted(node_label(node))}, tooltip={quoted(node_tooltip(node))}{border}];")
    for edge in edges:
        if edge.kind == "used":  # drawn as the data flows: input -> execution
            lines.append(f"  {quoted(edge.target)} -> {quoted(edge.source)} [label=\"input\"];")
        elif edge.kind == "wasGeneratedBy":
            lines.append(f"  {quoted(edge.target)} -> {quoted(edge.source)} [label=\"output\"];")
        else:
            lines.append(f"  {quoted(edge.source)} -> {quoted(edge.target)} [style=dashed, arrowhead=none];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def node_label(node: Node) -> str:
    """Two lines: which thing it is, and its RID (with the execution's status)."""
    second = f"{node.rid}  {node.status}" if isinstance(node, ExecutionNode) else node.rid
    return f"{short_label(node)}\n{second}"


def node_tooltip(node: Node) -> str:
    where = "pulled from the catalog" if node.pulled else (
        "on the catalog" if node.catalog_rid else "not on the catalog yet")
    if isinstance(node, AssetNode):
        types = ", ".join(node.types) or "no types"
        return f"asset {node.rid}: {node.table}/{node.filename}, {node.length} bytes, MD5 {node.md5}, {types}; {where}"
    if isinstance(node, ExecutionNode):
        return f"execution {node.rid}: {node.description or '(no description)'}, {node.status}; {where}"
    about = " ".join(part for part in (node.name, node.version, node.url) if part)
    return f"workflow {node.rid}: {about}; {where}"


def quoted(text: str) -> str:
    """A DOT string: in double quotes, with backslashes and quotes escaped and line breaks as ``\\n``."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "\\n")
    return f'"{escaped}"'

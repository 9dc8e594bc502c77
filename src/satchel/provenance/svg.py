"""A lineage graph drawn as a standalone SVG 1.1 picture, laid out here (no Graphviz).

Boxes are assets, rounded pills executions, house shapes workflows (the
colours of the DOT output). Arrows follow the data: an input points at the
execution that used it, an execution at what it wrote. A dashed line joins an
execution to its workflow, down the gap left of the execution's column (never
through a box). The root has a thick border. Each node is one
``<g class="node KIND">`` whose ``<title>`` (a tooltip in browsers) says all
the graph knows of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from xml.sax.saxutils import escape, quoteattr

from satchel.provenance.dot import STYLE, node_tooltip
from satchel.provenance.layout import Layout, Placement, layered
from satchel.provenance.nodes import ExecutionNode, LineageEdge, Node, short_label

BOX_W, BOX_H = 200, 44
GAP_X, GAP_Y = 70, 22
MARGIN = 30  # wide enough for the workflow lanes left of the first column
LEGEND_H = 30
CHARS = 27  # what fits on a line of a box at 11 px, in bold
LEGEND_W = 640
#: characters XML 1.0 cannot hold at all, not even escaped (a description may carry them)
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def svg_text(root: str, nodes: Iterable[Node], edges: Iterable[LineageEdge]) -> str:
    nodes, edges = list(nodes), list(edges)
    layout = layered(nodes, edges)
    columns, rows = layout.size
    width = round(MARGIN * 2 + max(columns * (BOX_W + GAP_X) - GAP_X, LEGEND_W))
    height = round(MARGIN * 2 + rows * (BOX_H + GAP_Y) - GAP_Y + LEGEND_H)
    out = [
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="11">',
        f"<title>{_text(f'lineage of {root}')}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555555"/></marker></defs>',
        '<rect x="0" y="0" width="100%" height="100%" fill="#ffffff"/>',
        '<g class="edges" fill="none" stroke="#555555" stroke-width="1.2">',
    ]
    out += [_edge(edge, layout) for edge in edges]
    out.append("</g>")
    out.append('<g class="nodes">')
    out += [_node(node, _corner(layout.nodes[node.rid]), node.rid == root) for node in nodes]
    out.append("</g>")
    out.append(_legend(height - LEGEND_H + 4))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _corner(p: Placement) -> tuple[float, float]:
    """The top-left corner, in pixels, of the box at grid point ``p``."""
    return MARGIN + p.x * (BOX_W + GAP_X), MARGIN + p.y * (BOX_H + GAP_Y)


def _edge(edge: LineageEdge, layout: Layout) -> str:
    if edge.kind == "wasAssociatedWith":  # out of the pill's left end, down the gap left of its column, across
        run = layout.nodes[edge.source]
        (ex, ey), (wx, wy) = _corner(run), _corner(layout.nodes[edge.target])
        lane = ex - 8 - 6 * (int(run.y) % 3)  # executions of one column take different lanes
        d = (f"M{ex:.1f},{ey + BOX_H / 2:.1f} H{lane:.1f} V{wy - GAP_Y / 2:.1f} H{wx + BOX_W / 2:.1f} "
             f"V{wy:.1f}")
        return f'<path class="edge {edge.kind}" d="{d}" stroke="#999999" stroke-dasharray="4 3"/>'
    start, end = edge.target, edge.source  # drawn as the data flows: input -> execution -> output
    points = [_corner(p) for p in layout.waypoints.get((start, end), [])]
    (sx, sy), (tx, ty) = _corner(layout.nodes[start]), _corner(layout.nodes[end])
    # leave from the right side of a box, cross each waypoint's column level, enter the left side of the next
    ends = [(sx + BOX_W, sy + BOX_H / 2)] + [q for x, y in points for q in ((x, y + BOX_H / 2),
                                                                          (x + BOX_W, y + BOX_H / 2))]
    ends.append((tx, ty + BOX_H / 2))
    d = f"M{ends[0][0]:.1f},{ends[0][1]:.1f}"
    for i, ((x1, y1), (x2, y2)) in enumerate(zip(ends, ends[1:])):
        if i % 2 == 1:  # through a waypoint's column: straight
            d += f" L{x2:.1f},{y2:.1f}"
            continue
        bend = max(abs(x2 - x1) / 2, 30)
        d += f" C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
    return f'<path class="edge {edge.kind}" d="{d}" marker-end="url(#arrow)"/>'


def _node(node: Node, corner: tuple[float, float], is_root: bool) -> str:
    x, y = corner
    fill = STYLE[node.kind][1]
    stroke = f'stroke="#222222" stroke-width="{3 if is_root else 1}"'
    shape = _shape(node.kind, x, y, f'fill="{fill}" {stroke}')
    second = f"{node.rid}  {node.status}" if isinstance(node, ExecutionNode) else node.rid
    lines = [_fit(short_label(node)), _fit(second)]
    weights = (' font-weight="bold"', "")
    text = "".join(
        f'<text x="{x + BOX_W / 2:.1f}" y="{y + 18 + 14 * i:.1f}" text-anchor="middle"{weights[i]}>'
        f"{_text(line)}</text>"
        for i, line in enumerate(lines)
    )
    return (f'<g class="node {node.kind}" id={quoteattr(_xml_id(node.rid))}>'
            f"<title>{_text(node_tooltip(node))}</title>{shape}{text}</g>")


def _shape(kind: str, x: float, y: float, paint: str) -> str:
    if kind == "asset":
        return f'<rect x="{x:.1f}" y="{y:.1f}" width="{BOX_W}" height="{BOX_H}" rx="2" {paint}/>'
    if kind == "execution":
        return f'<rect x="{x:.1f}" y="{y:.1f}" width="{BOX_W}" height="{BOX_H}" rx="{BOX_H / 2}" {paint}/>'
    roof = 10  # a house: a roof over a box
    points = [(x, y + roof), (x + BOX_W / 2, y), (x + BOX_W, y + roof), (x + BOX_W, y + BOX_H), (x, y + BOX_H)]
    return f'<polygon points="{" ".join(f"{px:.1f},{py:.1f}" for px, py in points)}" {paint}/>'


def _legend(y: float) -> str:
    parts = ['<g class="legend" font-size="10">']
    for i, kind in enumerate(("asset", "execution", "workflow")):
        x = MARGIN + i * 110
        parts.append(f'<rect x="{x}" y="{y}" width="14" height="10" rx="{5 if kind == "execution" else 1}" '
                     f'fill="{STYLE[kind][1]}" stroke="#222222"/><text x="{x + 18}" y="{y + 9}">{kind}</text>')
    parts.append(f'<text x="{MARGIN + 330}" y="{y + 9}">arrows: data flow (input → execution → output); '
                 "dashed: the workflow run</text>")
    parts.append("</g>")
    return "".join(parts)


def _text(text: str) -> str:
    """Text as XML character data: escaped, and what XML cannot hold replaced by U+FFFD."""
    return escape(NOT_XML.sub("\ufffd", text))


def _fit(text: str) -> str:
    return text if len(text) <= CHARS else text[: CHARS - 1] + "…"


def _xml_id(rid: str) -> str:
    """An XML ID for a RID (IDs may not start with a digit, and RIDs often do)."""
    return "node-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in rid)

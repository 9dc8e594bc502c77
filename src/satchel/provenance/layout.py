"""A small layered layout for lineage pictures: columns by data flow, rows by neighbours.

1. Data flows along the edges: an input into the execution that used it, an
   execution into what it wrote. Edges that would close a cycle (a corrupted
   history) are set aside, so what is left has an order.
2. Each asset or execution goes in the column after the furthest thing it
   came from (longest path), so every arrow points to the right. An arrow
   that spans several columns gets a waypoint in each column it crosses, a
   slot of its own, so it never runs behind a box.
3. Within a column, nodes and waypoints are ordered by the mean row of their
   neighbours, a few sweeps each way: that removes most crossings in graphs
   of this size.
4. Workflows sit in a band under everything, each under the middle of its
   executions, pushed apart where they would overlap.

Positions are in grid units (columns from the left, rows from the top); the
SVG scales them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from satchel.provenance.nodes import LineageEdge, Node, node_sort_key

SWEEPS = 4
#: the least distance between two workflows in the band, in columns (a box is most of a column wide)
WORKFLOW_SPACING = 0.85


@dataclass(frozen=True)
class Placement:
    """A point in grid units: ``x`` counts columns from the left, ``y`` rows from the top."""

    x: float
    y: float


@dataclass
class Layout:
    """Where each node goes, and the waypoints of each arrow (data flow: from, to) that spans columns."""

    nodes: dict[str, Placement] = field(default_factory=dict)
    waypoints: dict[tuple[str, str], list[Placement]] = field(default_factory=dict)

    @property
    def size(self) -> tuple[float, float]:
        """(columns, rows) the picture needs."""
        points = [*self.nodes.values(), *(p for way in self.waypoints.values() for p in way)]
        return max((p.x for p in points), default=0.0) + 1, max((p.y for p in points), default=0.0) + 1


def flow_edges(edges: Iterable[LineageEdge]) -> list[tuple[str, str]]:
    """(from, to) as data flows, for the edges between assets and executions (a workflow's are not flow)."""
    return [(e.target, e.source) for e in edges if e.kind in ("used", "wasGeneratedBy")]


def layered(nodes: Sequence[Node], edges: Iterable[LineageEdge]) -> Layout:
    edges = list(edges)
    ordered = sorted(nodes, key=node_sort_key)
    flowing = [n.rid for n in ordered if n.kind != "workflow"]
    forward = _acyclic(flowing, flow_edges(edges))
    column = _columns(flowing, forward)
    columns: dict[int, list[str]] = defaultdict(list)
    for rid in flowing:
        columns[column[rid]].append(rid)
    steps, chains = _waypoint_slots(forward, column, columns)
    _order(columns, steps)
    tallest = max((len(members) for members in columns.values()), default=0)
    slot = {key: Placement(float(c), r + (tallest - len(members)) / 2)
            for c, members in columns.items() for r, key in enumerate(members)}
    layout = Layout({rid: slot[rid] for rid in flowing})
    layout.waypoints = {edge: [slot[key] for key in keys] for edge, keys in chains.items()}
    layout.nodes.update(_workflow_band(ordered, edges, layout.nodes, float(tallest)))
    return layout


def _acyclic(nodes: list[str], flow: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The flow edges without those that would close a cycle (a depth-first search, without recursion)."""
    successors: dict[str, list[str]] = defaultdict(list)
    for a, b in sorted(set(flow)):
        successors[a].append(b)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    kept = []
    for start in nodes:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(successors[start]))]
        while stack:
            node, following = stack[-1]
            step = next(following, None)
            if step is None:
                state[node] = 2
                stack.pop()
            elif state.get(step) != 1:  # an edge back onto the current path would close a cycle
                kept.append((node, step))
                if step not in state:
                    state[step] = 1
                    stack.append((step, iter(successors[step])))
    return kept


def _columns(nodes: list[str], flow: list[tuple[str, str]]) -> dict[str, int]:
    """Longest-path layering: a node's column is one more than that of anything flowing into it."""
    incoming: dict[str, int] = {n: 0 for n in nodes}
    successors: dict[str, list[str]] = defaultdict(list)
    for a, b in flow:
        successors[a].append(b)
        incoming[b] += 1
    column = {n: 0 for n in nodes}
    ready = [n for n in nodes if incoming[n] == 0]
    while ready:
        node = ready.pop()
        for nxt in successors[node]:
            column[nxt] = max(column[nxt], column[node] + 1)
            incoming[nxt] -= 1
            if incoming[nxt] == 0:
                ready.append(nxt)
    return column


def _waypoint_slots(flow: list[tuple[str, str]], column: dict[str, int], columns: dict[int, list[str]]
                    ) -> tuple[list[tuple[str, str]], dict[tuple[str, str], list[str]]]:
    """A slot in every column a long arrow crosses; returns the one-column steps and each arrow's slots."""
    steps: list[tuple[str, str]] = []
    chains: dict[tuple[str, str], list[str]] = {}
    for a, b in flow:
        keys = [f"\0{a}\0{b}\0{c}" for c in range(column[a] + 1, column[b])]  # \0: never in a RID
        for c, key in zip(range(column[a] + 1, column[b]), keys):
            columns[c].append(key)
        path = [a, *keys, b]
        steps += list(zip(path, path[1:]))
        if keys:
            chains[a, b] = keys
    return steps, chains


def _order(columns: dict[int, list[str]], flow: list[tuple[str, str]]) -> None:
    """Sort each column by the mean row of its neighbours in the column before (then after), a few times."""
    before: dict[str, list[str]] = defaultdict(list)
    after: dict[str, list[str]] = defaultdict(list)
    for a, b in flow:
        after[a].append(b)
        before[b].append(a)
    keys = sorted(columns)
    for sweep in range(SWEEPS):
        neighbours, sequence = (before, keys[1:]) if sweep % 2 == 0 else (after, keys[-2::-1])
        row = {key: i for members in columns.values() for i, key in enumerate(members)}
        for c in sequence:
            members = columns[c]
            centre = {}
            for i, key in enumerate(members):
                near = [row[n] for n in neighbours[key]]
                centre[key] = sum(near) / len(near) if near else float(i)
            members.sort(key=lambda key: centre[key])  # stable: ties keep their order
            row.update({key: i for i, key in enumerate(members)})


def _workflow_band(nodes: list[Node], edges: list[LineageEdge], placed: dict[str, Placement],
                   y: float) -> dict[str, Placement]:
    """Each workflow under the mean column of its executions, left to right, none closer than WORKFLOW_SPACING."""
    runs: dict[str, list[str]] = defaultdict(list)
    for edge in edges:
        if edge.kind == "wasAssociatedWith" and edge.source in placed:
            runs[edge.target].append(edge.source)
    wanted = []
    for node in nodes:
        if node.kind == "workflow":
            xs = [placed[e].x for e in runs[node.rid]]
            wanted.append((sum(xs) / len(xs) if xs else 0.0, node.rid))
    band: dict[str, Placement] = {}
    least = 0.0
    for x, rid in sorted(wanted):
        x = max(x, least) if band else x
        band[rid] = Placement(x, y)
        least = x + WORKFLOW_SPACING
    return band

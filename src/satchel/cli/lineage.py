"""``satchel lineage RID``: where an asset or execution came from and what came of it, offline.

``tree`` (the default) draws it in the terminal; ``json``, ``prov-json``,
``prov-n``, ``dot`` and ``svg`` print a document to stdout, or to ``--output``.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from satchel.cli._common import handle_errors, human_bytes, open_store, store_options
from satchel.provenance.nodes import DIRECTIONS, AssetNode, ExecutionNode, Node, WorkflowNode

if TYPE_CHECKING:
    from satchel.provenance import LineageGraph

FORMATS = ("tree", "json", "prov-json", "prov-n", "dot", "svg")


@click.command("lineage")
@store_options
@click.argument("rid")
@click.option("--depth", type=click.IntRange(min=0), default=None,
              help="Execution hops to walk from RID (default: all the way).")
@click.option("--direction", type=click.Choice(DIRECTIONS), default="both", show_default=True,
              help="backward: what RID came from; forward: what came of it.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="tree", show_default=True,
              help="tree for the terminal; json; W3C PROV as prov-json or prov-n; a picture as dot or svg.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of stdout.")
@handle_errors
def command(store, hostname, catalog_id, rid: str, depth: int | None, direction: str, fmt: str,
            output: Path | None) -> None:
    """Show the lineage of an asset or an execution: what it came from and what used it, from the local store
    (rows mirrored by `satchel pull` included)."""
    with open_store(store, hostname, catalog_id) as ml:
        graph = ml.lineage(rid, depth=depth, direction=direction)
    if fmt == "tree" and output is None:
        Console().print(lineage_tree(graph))
        return
    text = render(graph, fmt)
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote the lineage of {graph.root} ({len(graph.nodes)} nodes, {len(graph.edges)} edges, "
               f"{fmt}) to {output}", err=True)


def render(graph: LineageGraph, fmt: str) -> str:
    """The graph as text in one of FORMATS (``tree`` as plain text, 100 columns wide)."""
    if fmt == "json":
        return json.dumps(graph.as_dict(), indent=2) + "\n"
    if fmt == "prov-json":
        return graph.to_prov().serialize(format="json", indent=2) + "\n"
    if fmt == "prov-n":
        return graph.to_prov().get_provn() + "\n"
    if fmt == "dot":
        return graph.to_dot()
    if fmt == "svg":
        return graph.to_svg()
    buffer = io.StringIO()
    Console(file=buffer, width=100, color_system=None).print(lineage_tree(graph))
    return buffer.getvalue()


def lineage_tree(graph: LineageGraph) -> Tree:
    """The lineage as a rich tree: the root, then what it came from and what came of it."""
    by_rid = {n.rid: n for n in graph.nodes}
    back: dict[str, list[str]] = defaultdict(list)  # a node -> what it came from
    ahead: dict[str, list[str]] = defaultdict(list)  # a node -> what came of it
    for edge in graph.edges:  # used and wasGeneratedBy both point from the later thing to the earlier
        if edge.kind != "wasAssociatedWith":
            back[edge.source].append(edge.target)
            ahead[edge.target].append(edge.source)
    root = by_rid[graph.root]
    tree = Tree(describe(root, by_rid, lead=""))
    asset = graph.root_kind == "asset"
    ways = [("came from", back, "backward", "no execution here made it (made outside satchel, or not pulled)"
             if asset else "it read no assets"),
            ("what came of it", ahead, "forward", "nothing used it yet" if asset else "it wrote no assets")]
    for title, links, way, empty in ways:
        if graph.direction not in (way, "both"):
            continue
        branch = tree.add(f"[dim]{title}[/dim]")
        if not links[root.rid] and not graph.truncated:
            branch.add(f"[dim]{empty}[/dim]")
        _grow(branch, root.rid, links, by_rid, way, {root.rid})
    if graph.truncated:
        tree.add(f"[yellow]more beyond --depth {graph.depth}[/yellow] (raise it, or leave it out to see all)")
    return tree


def _grow(branch: Tree, rid: str, links: dict[str, list[str]], by_rid: dict[str, Node], way: str,
          shown: set[str]) -> None:
    """Add what ``rid`` links to, one level after another; a node met again is named, not walked again."""
    work = [(branch, rid)]
    while work:
        parent, current = work.pop(0)
        for following in sorted(set(links[current])):
            node = by_rid[following]
            lead = _lead(node, way)
            if following in shown:
                parent.add(f"{lead} {escape(node.rid)} [dim](already shown)[/dim]")
                continue
            shown.add(following)
            work.append((parent.add(describe(node, by_rid, lead=lead)), following))


def _lead(node: Node, way: str) -> str:
    if isinstance(node, ExecutionNode):
        return "made by" if way == "backward" else "used by"
    return "used" if way == "backward" else "made"


def describe(node: Node, by_rid: dict[str, Node], *, lead: str) -> str:
    """One line for a node: what it is, its RID, and where it stands with the catalog (``pulled`` from it, or
    ``not pushed`` to it yet; nothing when the catalog has it)."""
    lead = f"{lead} " if lead else ""
    where = " [cyan]pulled[/cyan]" if node.pulled else "" if node.catalog_rid else " [yellow]not pushed[/yellow]"
    if isinstance(node, AssetNode):
        types = f"  [dim]{escape(', '.join(node.types))}[/dim]" if node.types else ""
        return (f"{lead}[bold]{escape(node.table)}/{escape(node.filename)}[/bold] {escape(node.rid)}  "
                f"{human_bytes(node.length)}{types}{where}")
    if isinstance(node, ExecutionNode):
        workflow = by_rid.get(node.workflow) if node.workflow else None
        run = f"  workflow {escape(workflow.name)}" if isinstance(workflow, WorkflowNode) else ""
        said = f" {escape(repr(node.description))}" if node.description else ""
        return f"{lead}execution [bold]{escape(node.rid)}[/bold]{said}  {escape(node.status)}{run}{where}"
    return f"{lead}workflow {escape(node.rid)} {escape(node.name)}{where}"

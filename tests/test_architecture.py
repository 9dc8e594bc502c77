"""The shape of the code, checked from its source: no import circle anywhere in
``src/satchel``, no private name imported across modules, and API modules that
read in one sitting.

Every import statement counts, including those inside functions and under
``TYPE_CHECKING``: a circle broken only by a late import is still a circle for
the reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src"
API_MODULE_LINES = 500


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in SOURCE.joinpath("satchel").rglob("*.py"):
        parts = list(path.relative_to(SOURCE).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (path, is_package)
    return found


MODULES = _modules()


def _known(name: str) -> str | None:
    """The innermost module of ours that ``name`` names or lies in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> list[tuple[str, str]]:
    """(imported module, imported name or "") for every satchel import in ``module``."""
    path, is_package = MODULES[module]
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found += [(source, alias.name) for alias in node.names]
    return [(source, name) for source, name in found if source.split(".")[0] == "satchel"]


def _graph() -> dict[str, set[str]]:
    graph = {}
    for module in MODULES:
        edges = set()
        for source, name in _imports(module):
            target = f"{source}.{name}" if f"{source}.{name}" in MODULES else _known(source)
            if target and target != module:
                edges.add(target)
        graph[module] = edges
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []
    for start in graph:
        if start in order:
            continue
        work = [(start, iter(sorted(graph[start])))]
        order[start] = low[start] = len(order)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in order:
                    order[nxt] = low[nxt] = len(order)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], order[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == order[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        circles.append(sorted(component))
    return circles


def test_the_circle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_every_module_and_its_imports():
    graph = _graph()
    assert "satchel.api.execution" in graph
    assert "satchel.api.commit" in graph["satchel.api.execution"]
    assert "satchel.errors" in graph["satchel.api.workspace"]


def test_no_import_circle_in_satchel():
    assert _circles(_graph()) == []


def test_no_private_name_is_imported_across_modules():
    crossings = [
        f"{module} imports {name} from {source}"
        for module in MODULES
        for source, name in _imports(module)
        if name.startswith("_") and not name.startswith("__")
    ]
    assert crossings == []


def test_api_modules_read_in_one_sitting():
    long = {
        module: lines
        for module, (path, _) in MODULES.items()
        if module.startswith("satchel.api")
        and (lines := len(path.read_text().splitlines())) > API_MODULE_LINES
    }
    assert long == {}

"""The repository keeps its promises: README's two commands, CI runs the README's test command, packaging."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    head = text[: text.index("\n## ", text.index("```"))]  # the blocks near the top
    return re.findall(r"```(?:sh|bash|console)?\n(.*?)\n```", head, re.S)


def test_readme_starts_with_the_two_commands():
    cmds = readme_commands()
    assert len(cmds) == 2, cmds
    assert "satchel demo" in cmds[0] and "pip install" in cmds[0]
    assert "pytest" in cmds[1] and "pip install" in cmds[1]


def test_ci_runs_exactly_the_readme_test_command():
    test_cmd = readme_commands()[1].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_cmd in ci.splitlines(), f"{test_cmd!r} is not a line of .ci/run"


def test_every_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        "satchel" + "".join("." + p for p in d.relative_to(ROOT / "src" / "satchel").parts)
        for d in (ROOT / "src" / "satchel").rglob("*")
        if d.is_dir() and (d / "__init__.py").exists()
    } | {"satchel"}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"

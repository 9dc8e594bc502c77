"""Examples in the docs run, so the docs stay true."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).parents[1] / "docs"


def python_blocks(name: str) -> list[str]:
    return re.findall(r"```python\n(.*?)\n```", (DOCS / name).read_text(), re.S)


def test_quickstart_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (block,) = python_blocks("quickstart.md")
    exec(compile(block, "docs/quickstart.md", "exec"), {})
    out = capsys.readouterr().out
    assert "2 assets committed" in out and "['Model_Weights', 'Output_File']" in out
    assert "2 assets wait for the remote" in out
    assert (tmp_path / "downloads" / "model.bin").stat().st_size == 1024


def test_offline_guide_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    for i, block in enumerate(python_blocks("offline-workflow.md")):
        exec(compile(block, f"docs/offline-workflow.md block {i}", "exec"), ns)


def test_readme_example_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("SATCHEL_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    (block,) = re.findall(r"```python\n(.*?)\n```", (DOCS.parent / "README.md").read_text(), re.S)
    ns: dict = {"train": lambda: b"trained weights"}
    exec(compile(block, "README.md", "exec"), ns)
    assert ns["asset"].asset_types == ["Model_File", "Output_File"]
    assert ns["asset"].length == len(b"trained weights")
    ns["ml"].close()

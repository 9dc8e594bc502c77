"""The code of deriva-ml's "Working with assets" chapter runs offline against satchel, unchanged but for
the import. The chapter refers to an asset as "2-ABCD": we put that RID in the store's pool of leased
RIDs, as a sync would have, so the model the first example uploads receives it."""

from __future__ import annotations

import pickle
import sqlite3
import textwrap
import types

import pytest

IMPORT = "from satchel import DerivaML, ExecutionConfiguration\n"

UPLOAD = """
with ml.create_execution(config) as exe:
    # asset_file_path registers the file for upload and returns a Path to write.
    model_path = exe.asset_file_path("Model", "best_model.pt", asset_types=["Model_File"])
    torch.save(model.state_dict(), model_path)

# Upload happens AFTER the context manager exits:
exe.commit_output_assets()
"""

DOWNLOAD = """
with ml.create_execution(config) as exe:
    # Downloads to dest_dir / <asset's Filename>; records the asset as an input.
    local = exe.download_asset(asset_rid="2-ABCD", dest_dir=exe.working_dir / "downloads")
    weights = torch.load(local.path)
"""

DOWNLOAD_OUTSIDE = """
asset = ml.lookup_asset("2-ABCD")
path = asset.download(dest_dir="/tmp/inspect")
"""

READ_METADATA = """
asset = ml.lookup_asset("2-ABCD")
print(asset.filename, asset.length, asset.md5)
print(asset.asset_types)              # e.g. ["Model_File", "Output_File"]
print(asset.url)                      # object-store URL
"""

MEMBERSHIP = """
# Correct:
models = [a for a in ml.list_assets("Model") if "Model_File" in a.asset_types]

# Wrong — silently misses every asset that also carries a directional tag:
models_wrong = [a for a in ml.list_assets("Model") if a.asset_types == ["Model_File"]]
"""

UPDATE = """
ml.update_asset("2-ABCD", asset_types=["Model_File", "Checkpoint"], description="best checkpoint")
"""


class TinyTorch:
    """Stands in for torch.save/torch.load (torch itself is not what is under test)."""

    @staticmethod
    def save(obj, path):
        with open(path, "wb") as f:
            pickle.dump(obj, f)

    @staticmethod
    def load(path):
        with open(path, "rb") as f:
            return pickle.load(f)


@pytest.fixture
def namespace(ml, workflow, tmp_path, monkeypatch):
    from satchel import ExecutionConfiguration

    ml.add_workflow(workflow)
    with sqlite3.connect(ml.store.journal_path) as conn:
        conn.executemany(
            "INSERT INTO rid_pool (rid, lease_id, leased_at) VALUES (?, ?, ?)",
            [("1-EXE0", "lease-1", "2026-01-01T00:00:00"), ("2-ABCD", "lease-2", "2026-01-01T00:00:01")],
        )
    ml.add_term("Asset_Type", "Checkpoint", description="a training checkpoint")
    monkeypatch.chdir(tmp_path)
    model = types.SimpleNamespace(state_dict=lambda: {"layer.weight": [0.25, 0.5]})
    return {"ml": ml, "config": ExecutionConfiguration(workflow=workflow), "torch": TinyTorch, "model": model}


def run(code: str, ns: dict) -> dict:
    exec(compile(IMPORT + textwrap.dedent(code), "<deriva-ml example>", "exec"), ns)
    return ns


@pytest.fixture
def request_cleanup():
    """The chapter downloads to /tmp/inspect; remove what it wrote there."""
    paths = []
    yield paths.append
    for p in paths:
        p.unlink(missing_ok=True)


def test_the_chapter_runs_offline(namespace, capsys, request_cleanup):
    ns = run(UPLOAD, namespace)
    assert ns["model_path"].asset_rid == "2-ABCD"
    ns = run(DOWNLOAD, ns)
    assert ns["weights"] == {"layer.weight": [0.25, 0.5]}
    ns = run(DOWNLOAD_OUTSIDE, ns)
    request_cleanup(ns["path"])
    assert TinyTorch.load(ns["path"]) == ns["weights"]
    ns = run(READ_METADATA, ns)
    out = capsys.readouterr().out
    assert "best_model.pt" in out and "'Input_File', 'Model_File', 'Output_File'" in out
    assert "/hatrac/Model/" in out
    ns = run(MEMBERSHIP, ns)
    assert [a.rid for a in ns["models"]] == ["2-ABCD"] and ns["models_wrong"] == []
    ns = run(UPDATE, ns)
    asset = ns["ml"].lookup_asset("2-ABCD")
    assert asset.asset_types == ["Checkpoint", "Input_File", "Model_File", "Output_File"]
    assert asset.description == "best checkpoint"
    roles = sorted(e.asset_role for e in asset.executions)
    assert roles == ["Input", "Output"]

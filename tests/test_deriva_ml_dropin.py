"""deriva-ml scripts run unchanged but for the import, offline, then sync exactly once.

The scripts in ``tests/dropin/`` are written as deriva-ml's user guide and its own
tests write them (the source of each is named at its top); only their import lines
name satchel. Each runs as a user runs it: ``python script.py`` in a subprocess,
from a git checkout of the lab's code (so ``create_workflow`` finds its URL,
checksum and version), with no server reachable. The tests then read back what
the scripts recorded, from the store and, after ``satchel push``, from the catalog.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from satchel import DerivaML, Status
from satchel.testing.pytest_plugin import deriva_server  # noqa: F401

SCRIPTS = Path(__file__).parent / "dropin"
HOST, CATALOG = "deriva.example.org", "1"
ORIGIN = "https://github.com/example-lab/retina-models.git"


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def lab(tmp_path: Path):
    """A lab's checkout holding the scripts, and a home with nothing in it."""
    repo = tmp_path / "retina-models"
    (repo / "scripts").mkdir(parents=True)
    for script in SCRIPTS.glob("*.py"):
        shutil.copy(script, repo / "scripts" / script.name)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "lab@example.org")
    _git(repo, "config", "user.name", "Lab")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "training scripts")
    _git(repo, "tag", "v0.4.0")
    _git(repo, "remote", "add", "origin", ORIGIN)
    return Lab(repo, tmp_path / "home")


class Lab:
    def __init__(self, repo: Path, home: Path) -> None:
        self.repo, self.home = repo, home
        home.mkdir()

    def run(self, script: str, *args: str, expect: int = 0) -> list[list[str]]:
        """Run a script as a user does; its printed lines, split into words."""
        env = {**os.environ, "SATCHEL_HOME": str(self.home), "HOME": str(self.home)}
        env.pop("SATCHEL_TOKEN", None)
        done = subprocess.run(
            [sys.executable, f"scripts/{script}", *args], cwd=self.repo, env=env, capture_output=True, text=True,
            timeout=120,
        )
        assert done.returncode == expect, f"{script} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        return [line.split(" ") for line in done.stdout.splitlines()]

    def ml(self) -> DerivaML:
        return DerivaML(HOST, CATALOG, working_dir=self.home / HOST / CATALOG)

    def checksum(self, script: str) -> str:
        return _git(self.repo, "hash-object", f"scripts/{script}")


def lines_of(out: list[list[str]], word: str) -> list[list[str]]:
    return [line[1:] for line in out if line[0] == word]


def test_training_run_records_every_output_with_its_tags(lab, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "processed.png").write_bytes(b"processed pixels")
    (scratch / "temp_scan.png").write_bytes(b"raw scan pixels")
    out = lab.run("train.py", str(scratch))
    assert lines_of(out, "status") == [["Uploaded"]]
    (uploaded,) = lines_of(out, "uploaded")
    assert uploaded[0] == "5"
    assert json.loads(" ".join(uploaded[1:])) == {
        "deriva-ml/Execution_Metadata": {"failed": 0, "uploaded": 1},
        "domain/Image": {"failed": 0, "uploaded": 3},
        "domain/Model": {"failed": 0, "uploaded": 1},
    }
    assets = {line[2]: line for line in lines_of(out, "asset")}
    assert set(assets) == {"best_model.pt", "processed.png", "scan_001.png", "mask.png", "metrics.jsonl"}
    assert assets["mask.png"][3] == "Derived,Output_File,Segmentation_Mask"  # given types replace the default
    assert assets["metrics.jsonl"][3] == "Metrics_File,Output_File"
    assert (scratch / "processed.png").exists()  # copied, not moved

    with lab.ml() as ml:
        (exe,) = ml.list_executions()
        assert exe.status is Status.Uploaded and exe.pending_files == 1 + 4  # all of it waits for a push
        metrics = ml.lookup_asset(assets["metrics.jsonl"][1])
        rows = [json.loads(line) for line in metrics.download(tmp_path / "m").read_text().splitlines()]
        assert [r["epoch"] for r in rows] == [0, 1, 2] and rows[2]["val_loss"] == 0.5
        scan = ml.lookup_asset(assets["scan_001.png"][1])
        assert scan.md5 == hashlib.md5(b"raw scan pixels").hexdigest() and scan.asset_table == "Image"
        model = ml.lookup_asset(assets["best_model.pt"][1])
        assert model.description == "Best validation loss" and model.asset_types == ["Model", "Output_File"]
        (wf,) = ml.find_workflows()
        commit = _git(lab.repo, "rev-parse", "HEAD")
        assert wf.url == f"https://github.com/example-lab/retina-models/blob/{commit}/scripts/train.py"
        assert wf.checksum == lab.checksum("train.py") and wf.version == "v0.4.0"
        assert wf.workflow_type == ["Training"]


def test_evaluation_consumes_the_model_and_walks_its_lineage(lab, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for name in ("processed.png", "temp_scan.png"):
        (scratch / name).write_bytes(name.encode())
    trained = lab.run("train.py", str(scratch))
    (train_rid,) = [line[1] for line in lines_of(trained, "Execution")]
    model_rid = {line[2]: line[1] for line in lines_of(trained, "asset")}["best_model.pt"]

    out = lab.run("evaluate.py", model_rid, str(tmp_path / "peek"))
    (eval_rid,) = lines_of(out, "executions")[0]
    assert lines_of(out, "model") == [[model_rid, "best_model.pt", "Input_File,Model,Output_File"]]
    assert lines_of(out, "inputs") == [[model_rid]]
    assert lines_of(out, "outputs") == [["evaluation.txt"]]
    assert lines_of(out, "consumers") == [[eval_rid]]
    assert lines_of(out, "peek") == [["best_model.pt", "True"]]
    assert lines_of(out, "root") == [["Asset", eval_rid]]
    assert lines_of(out, "chain") == [[eval_rid, "<-", train_rid]]
    assert lines_of(out, "consumed") == [[model_rid]]
    assert lines_of(out, "visited") == [["2", "True"]]

    with lab.ml() as ml:
        model = ml.lookup_asset(model_rid)
        assert sorted((e.execution_rid, e.asset_role) for e in model.list_executions()) == sorted(
            [(train_rid, "Output"), (eval_rid, "Input")])
        assert ml.lookup_lineage(model_rid, depth=0).lineage.parents == []
        assert ml.lookup_lineage(train_rid).lineage.consumed_assets == []


def test_lifecycle_script_sees_deriva_ml_status_rules(lab):
    out = lab.run("lifecycle.py")
    (refused,) = lines_of(out, "refused")
    assert "Created" in refused and "Uploaded" in " ".join(refused)
    assert "Workflow must be specified" in " ".join(lines_of(out, "no-workflow")[0])
    assert lines_of(out, "failed")[0][1:] == ["RuntimeError:", "boom"]
    assert lines_of(out, "listed") == [["8"]]
    assert lines_of(out, "incomplete") == [["Created,Created,Failed,Failed"]]
    assert lines_of(out, "uploaded") == [["3"]]
    assert lines_of(out, "found") == [["2"]]
    assert lines_of(out, "workflows") == [["B1"]]  # one workflow: the same script's, found by its checksum
    with lab.ml() as ml:
        (failing,) = [e for e in ml.list_executions() if e.description == "fails"]
        history = [h["to"] for h in ml.execution_history(failing.rid)]
        assert history == ["Created", "Running", "Failed"]


def test_a_killed_run_is_resumed_and_uploaded(lab):
    out = lab.run("crash.py", expect=-9)
    (rid,) = [line[1] for line in lines_of(out, "Execution")]
    with lab.ml() as ml:
        (snap,) = ml.find_incomplete_executions()
        assert (snap.rid, snap.status, snap.pending_files) == (rid, Status.Running, 2)

    out = lab.run("resume.py")
    assert lines_of(out, "incomplete") == [[rid, "Running", "2"]]
    assert lines_of(out, "committed") == [["2", "Uploaded"]]
    assert lines_of(out, "pending") == [["0", "0", "1"]]  # the push part: not sent, and said so
    assert lines_of(out, "still") == [["incomplete", "0"]]
    with lab.ml() as ml:
        outputs = ml.list_execution_assets(rid, asset_role="Output")
        got = {a.filename: a.download(lab.home / "check").read_bytes() for a in outputs}
        assert got == {f"checkpoint_{n}.pt": f"weights after epoch {n}".encode() for n in (0, 1)}
        history = [h["to"] for h in ml.execution_history(rid)]
        assert history == ["Created", "Running", "Pending_Upload", "Uploaded"]


def test_upload_results_have_deriva_ml_shape_and_uploads_add_up(lab):
    out = lab.run("additive.py")
    assets = lines_of(out, "asset")
    assert sorted(a[1] for a in assets) == ["kernel_output.txt", "runner_output.txt"]  # Filename: the file's name
    assert {a[2] for a in assets} == {"Model_File,Output_File"}
    assert len({a[0] for a in assets}) == 2
    assert lines_of(out, "third") == [["0", "Uploaded"]]  # nothing new: an empty report (see docs/api.md)


def test_the_scripts_work_sync_exactly_once(lab, tmp_path, deriva_server):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for name in ("processed.png", "temp_scan.png"):
        (scratch / name).write_bytes(name.encode() * 100)
    trained = lab.run("train.py", str(scratch))
    model_rid = {line[2]: line[1] for line in lines_of(trained, "asset")}["best_model.pt"]
    lab.run("evaluate.py", model_rid, str(tmp_path / "peek"))
    lab.run("lifecycle.py")

    with lab.ml() as ml:
        assert not any(ml.resume_execution(e.rid).synced for e in ml.list_executions())
    env = {**os.environ, "SATCHEL_HOME": str(lab.home), "HOME": str(lab.home), "SATCHEL_TOKEN": deriva_server.token}
    store = str(lab.home / HOST / CATALOG)
    satchel = [shutil.which("satchel") or str(Path(sys.executable).parent / "satchel")]
    subprocess.run([*satchel, "remote", "set", "--store", store, deriva_server.url], env=env, check=True,
                   capture_output=True)
    pushed = subprocess.run([*satchel, "push", "--store", store, "--json"], env=env, capture_output=True, text=True)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    report = json.loads(pushed.stdout)
    assert report["done"]["assets"] == 6 and report["failed"] == []
    again = json.loads(subprocess.run([*satchel, "push", "--store", store, "--json"], env=env, capture_output=True,
                                      text=True, check=True).stdout)
    assert not any(again["done"].values())  # exactly once: nothing sent twice

    with lab.ml() as ml, deriva_server.remote() as server:
        catalog = server.catalog.get
        statuses = {e.rid: e.status for e in ml.list_executions()}
        assert all(ml.resume_execution(rid).synced for rid in statuses)
        remote = {r["RID"]: r["Status"] for r in catalog("deriva-ml", "Execution")}
        assert remote == {rid: s.value for rid, s in statuses.items()}
        model = ml.lookup_asset(model_rid)
        assert model.synced and model.rid in {r["RID"] for r in catalog("test-schema", "Model")}
        roles = sorted((r["Execution"], r["Asset_Role"]) for r in catalog("test-schema", "Model_Execution"))
        assert roles == sorted((e.execution_rid, e.asset_role) for e in model.list_executions())
        workflows = {r["Name"]: r for r in catalog("deriva-ml", "Workflow")}
        assert workflows["ResNet50 Training"]["Checksum"] == lab.checksum("train.py")
        types = {(r["Workflow"], r["Workflow_Type"]) for r in catalog("deriva-ml", "Workflow_Workflow_Type")}
        assert (workflows["ResNet50 Training"]["RID"], "Training") in types
        assert (workflows["B1"]["RID"], "Test Workflow") in types


def test_an_asset_table_created_offline_takes_assets_at_once(ml, workflow, tmp_path):
    from satchel import DerivaMLException, ExecutionConfiguration

    assert ml.create_asset_table("Scan_File", additional_columns=[{"name": "Scanner_Model"}],
                                 comment="Raw scanner output files.") == "Scan_File"
    assert "Scan_File" in ml.list_asset_tables()
    with pytest.raises(DerivaMLException, match="already exist"):
        ml.create_asset_table("Scan_File")
    with pytest.raises(DerivaMLException, match="cannot name an asset table"):
        ml.create_asset_table("bad/name")
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow))
    with exe:
        exe.asset_file_path("Scan_File", "scan.raw", metadata={"Scanner_Model": "X1"}).write_bytes(b"raw")
    (path,) = exe.commit_output_assets().assets
    asset = ml.lookup_asset(path.asset_rid)
    assert asset.asset_table == "Scan_File" and asset.metadata == {"Scanner_Model": "X1"}
    assert asset.asset_types == ["Output_File", "Scan_File"]


def test_lookup_asset_says_what_a_rid_is_when_not_an_asset(ml):
    from satchel import DerivaMLException

    term = ml.add_term("Asset_Type", "New_Type", description="A new asset type")
    with pytest.raises(DerivaMLException, match="not an asset"):  # deriva-ml's test_asset.py asks this
        ml.lookup_asset(term.rid)
    with pytest.raises(DerivaMLException, match="no asset has RID"):
        ml.lookup_asset("NONEXISTENT")
    with pytest.raises(DerivaMLException, match="not a RID"):
        ml.lookup_asset(None)

"""``satchel add``, ``get``, ``gc``, ``du``, ``pin`` and ``unpin`` through the real command, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from satchel import DerivaML
from satchel.testing.pytest_plugin import deriva_server  # noqa: F401


def satchel(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("SATCHEL_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "satchel.cli", *args], capture_output=True, text=True,
                          timeout=120, env=full_env, cwd=cwd)


def ok(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 0, res.stderr
    return res.stdout


def error(res: subprocess.CompletedProcess, code: int) -> str:
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr and res.stderr.startswith("error: "), res.stderr
    return res.stderr


@pytest.fixture
def files(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "model.pt").write_bytes(b"weights" * 1000)
    (data / "sub" / "log.txt").write_text("epoch 1\n")
    return data


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


def add(store: Path, *args: str) -> dict:
    return json.loads(ok(satchel("add", "--store", str(store), "--host", "example.org", "--catalog", "1",
                                 "--json", *args)))


def test_add_records_files_and_folders_as_outputs_of_a_new_execution(store, files):
    out = add(store, str(files), "--type", "Model_File", "--description", "field run")
    assert sorted(a["Filename"] for a in out["assets"]) == ["log.txt", "model.pt"]
    assert out["bytes_captured"] == 7008
    with DerivaML("example.org", "1", working_dir=store) as ml:
        exe = ml.lookup_execution(out["execution"])
        assert exe.status == "Uploaded" and exe.description == "field run"
        for a in out["assets"]:
            asset = ml.lookup_asset(a["RID"])
            assert set(asset.asset_types) == {"Model_File", "Output_File"}
            assert [(e.execution_rid, e.asset_role) for e in asset.executions] == [(out["execution"], "Output")]
        assert ml.lookup_workflow(ml.lookup_execution(out["execution"]).workflow_rid).name == "satchel add"
    assert (files / "model.pt").read_bytes() == b"weights" * 1000  # the originals stay where they are


def test_add_to_an_existing_execution_and_with_a_named_workflow(store, files, tmp_path):
    first = add(store, str(files / "model.pt"), "--workflow", "ingest-cam-7", "--workflow-type", "Ingest")
    more = tmp_path / "more.csv"
    more.write_text("a,b\n")
    second = add(store, str(more), "--execution", first["execution"], "--table", "Execution_Metadata")
    assert second["execution"] == first["execution"]
    with DerivaML("example.org", "1", working_dir=store) as ml:
        outputs = ml.resume_execution(first["execution"]).list_assets("Output")
        assert sorted(a.filename for a in outputs) == ["model.pt", "more.csv"]
        assert ml.lookup_workflow(ml.lookup_execution(first["execution"]).workflow_rid).name == "ingest-cam-7"
    third = add(store, str(more), "--workflow", "ingest-cam-7")  # a new execution of the same workflow
    with DerivaML("example.org", "1", working_dir=store) as ml:
        assert third["execution"] != first["execution"]
        assert ml.lookup_execution(third["execution"]).workflow_rid == ml.lookup_execution(
            first["execution"]).workflow_rid
        assert len(ml.find_workflows()) == 1


@pytest.mark.parametrize("args, code, words", [
    (["--type", "No_Such_Tag"], 3, "No_Such_Tag"),
    (["--table", "Not/A_Table"], 3, "Not/A_Table"),
    (["--execution", "NOPE"], 3, "NOPE"),
])
def test_add_with_bad_input_says_so_and_records_nothing(store, files, args, code, words):
    add(store, str(files / "model.pt"))  # the store exists, with one execution
    err = error(satchel("add", "--store", str(store), str(files), *args), code)
    assert words in err
    with DerivaML("example.org", "1", working_dir=store) as ml:
        assert len(ml.list_executions()) == 1 and len(ml.list_assets("Execution_Asset")) == 1


def test_add_refuses_two_files_of_one_name_and_missing_paths(store, tmp_path):
    for d in ("x", "y"):
        (tmp_path / "runs" / d).mkdir(parents=True)
        (tmp_path / "runs" / d / "model.pt").write_text(d)
    err = error(satchel("add", "--store", str(store), "--host", "example.org", "--catalog", "1",
                        str(tmp_path / "runs")), 2)
    assert "model.pt" in err and "separate" in err
    err = error(satchel("add", "--store", str(store), "--host", "example.org", "--catalog", "1",
                        str(tmp_path / "nothing-here")), 2)
    assert "does not exist" in err
    assert not (store / "journal.db").exists() or not DerivaML("example.org", "1", working_dir=store).list_executions()


def test_get_puts_verified_bytes_in_a_folder_records_inputs_and_pins(store, files, tmp_path):
    out = add(store, str(files))
    rids = [a["RID"] for a in out["assets"]]
    got = json.loads(ok(satchel("get", "--store", str(store), *rids, "--to", str(tmp_path / "here"), "--json")))
    assert {Path(g["path"]).name for g in got} == {"model.pt", "log.txt"}
    assert (tmp_path / "here" / "model.pt").read_bytes() == b"weights" * 1000
    with DerivaML("example.org", "1", working_dir=store) as ml:
        exe = ml.create_execution(workflow=ml.lookup_workflow(ml.lookup_execution(out["execution"]).workflow_rid),
                                  description="evaluation")
        exe.execution_start()
        reader = exe.execution_rid
    text = ok(satchel("get", "--store", str(store), rids[0], "--to", str(tmp_path / "eval"), "--for-execution",
                      reader, "--pin"))
    assert f"recorded as inputs of execution {reader}" in text
    with DerivaML("example.org", "1", working_dir=store) as ml:
        assert [(a.rid, "Input") for a in ml.resume_execution(reader).list_assets("Input")] == [(rids[0], "Input")]
        assert "Input_File" in ml.lookup_asset(rids[0]).asset_types
        assert ml.storage_summary()["pinned_assets"] == 1
    assert ok(satchel("unpin", "--store", str(store), rids[0])).startswith("unpinned 1")
    error(satchel("get", "--store", str(store), "NOPE", "--to", str(tmp_path / "x")), 3)
    assert not (tmp_path / "x").exists()


def test_gc_du_and_get_pull_against_the_server(store, files, tmp_path, deriva_server):
    out = add(store, str(files))
    rids = [a["RID"] for a in out["assets"]]
    du = json.loads(ok(satchel("du", "--store", str(store), "--json")))
    assert du["kept"]["unsynced"] == {"objects": 2, "bytes": 7008} and du["reclaimable"]["bytes"] == 0
    assert "not on the server yet" in ok(satchel("du", "--store", str(store)))
    nothing = json.loads(ok(satchel("gc", "--store", str(store), "--json")))
    assert nothing["removed_objects"] == 0 and nothing["kept"]["unsynced"]["objects"] == 2

    ok(satchel("remote", "set", deriva_server.url, "--store", str(store)))
    env = {"SATCHEL_TOKEN": deriva_server.token}
    ok(satchel("push", "--store", str(store), env=env))
    ok(satchel("pin", "--store", str(store), rids[1]))
    dry = json.loads(ok(satchel("gc", "--store", str(store), "--dry-run", "--json")))
    assert dry["dry_run"] and dry["removed_objects"] == 1 and dry["kept"]["pinned"]["objects"] == 1
    assert "would remove 1 object," in ok(satchel("gc", "--store", str(store), "--dry-run"))
    assert json.loads(ok(satchel("du", "--store", str(store), "--json")))["reclaimable"]["objects"] == 1
    text = ok(satchel("gc", "--store", str(store)))
    assert "removed 1 object," in text and "pinned" in text

    # offline, the bytes are gone, and the error says how to get them back
    err = error(satchel("get", "--store", str(store), rids[0], "--to", str(tmp_path / "a")), 4)
    assert "satchel pull --asset" in err
    ok(satchel("get", "--store", str(store), rids[0], "--to", str(tmp_path / "a"), "--pull", env=env))
    assert (tmp_path / "a" / ("model.pt" if out["assets"][0]["Filename"] == "model.pt" else "log.txt")).exists()


def test_gc_options_and_errors(store, files):
    add(store, str(files))
    assert "cannot read" in error(satchel("gc", "--store", str(store), "--max-size", "lots"), 2)
    res = satchel("gc", "--store", str(store), "--keep-days", "-3")
    assert res.returncode == 2 and "-3" in res.stderr  # click's range check: a usage error
    text = ok(satchel("gc", "--store", str(store), "--max-size", "1K"))
    assert "above --max-size" in text  # everything is unsynced: nothing can go
    assert error(satchel("pin", "--store", str(store), "NOPE"), 3)


def test_ctrl_c_during_add_commits_nothing_and_add_execution_finishes(store, files, tmp_path):
    import signal
    import time

    add(store, str(files / "sub"))  # the store exists
    mark = tmp_path / "capturing"
    env = {**os.environ, "SATCHEL_PAUSE_AT": "commit.after_capture", "SATCHEL_PAUSE_MARK": str(mark),
           "SATCHEL_PAUSE_SECONDS": "30"}
    env.pop("SATCHEL_DEBUG", None)
    with subprocess.Popen([sys.executable, "-m", "satchel.cli", "add", "--store", str(store), str(files / "model.pt")],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as proc:
        deadline = time.monotonic() + 60
        while not mark.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert mark.exists(), proc.stderr.read() if proc.poll() is not None else "never reached the capture"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.startswith("error: interrupted") and "Traceback" not in err
    rid = err.split("satchel add --execution ")[1].split("`")[0]
    with DerivaML("example.org", "1", working_dir=store) as ml:
        assert [a.filename for a in ml.list_assets("Execution_Asset")] == ["log.txt"]  # nothing of the 2nd
    done = json.loads(ok(satchel("add", "--store", str(store), "--execution", rid, "--json")))
    assert [a["Filename"] for a in done["assets"]] == ["model.pt"]
    with DerivaML("example.org", "1", working_dir=store) as ml:
        assert ml.lookup_execution(rid).status == "Uploaded"
        assert ml.verify().lost_assets == []

"""`satchel lineage` as a user runs it: the real command in a subprocess, every format, and the demo's runs
checked edge by edge against the story the demo tells."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from prov.model import ProvDocument

from satchel import AssetSpec, DerivaML, ExecutionConfiguration
from workflows import config


def satchel(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("satchel") or str(Path(sys.executable).parent / "satchel")
    env = {k: v for k, v in os.environ.items() if k != "SATCHEL_DEBUG"}
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, env=env)


def ok(*args: str) -> str:
    res = satchel(*args)
    assert res.returncode == 0, res.stderr
    return res.stdout


def edge_set(data: dict) -> set[tuple[str, str, str]]:
    return {(e["kind"], e["source"], e["target"]) for e in data["edges"]}


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict[str, str]:
    """A store holding prepare -> data -> fit -> model; its RIDs by name, and the store's path."""
    store = tmp_path_factory.mktemp("lineage-cli") / "store"
    with DerivaML("example.org", "1", working_dir=store) as ml:
        prepare = ml.create_execution(config(ml, "prepare"))
        with prepare:
            prepare.asset_file_path("Execution_Asset", "data.csv").write_text("a,b\n1,2\n")
        (data,) = [a.asset_rid for a in prepare.commit_output_assets().assets]
        fit = ml.create_execution(config(ml, "fit", assets=[AssetSpec(rid=data)]))
        with fit:
            fit.asset_file_path("Execution_Asset", "model.bin").write_bytes(b"weights")
        (model,) = [a.asset_rid for a in fit.commit_output_assets().assets]
        workflow = ml.lookup_execution(fit.execution_rid).workflow_rid
        return {"store": str(store), "prepare": prepare.execution_rid, "fit": fit.execution_rid, "data": data,
                "model": model, "workflow": workflow}


def test_every_format_from_the_command_line(chain):
    store, model = ["--store", chain["store"]], chain["model"]
    expected = {("wasGeneratedBy", model, chain["fit"]), ("used", chain["fit"], chain["data"]),
                ("wasGeneratedBy", chain["data"], chain["prepare"]),
                ("wasAssociatedWith", chain["fit"], chain["workflow"]),
                ("wasAssociatedWith", chain["prepare"], chain["workflow"])}
    data = json.loads(ok("lineage", model, *store, "--format", "json"))
    assert edge_set(data) == expected and data["root"] == model and not data["truncated"]

    doc = ProvDocument.deserialize(content=ok("lineage", model, *store, "--format", "prov-json"), format="json")
    with DerivaML("example.org", "1", working_dir=chain["store"]) as ml:
        assert doc == ml.lineage(model).to_prov()  # what the command printed is the library's document
    kinds = sorted(r.get_type().localpart for r in doc.get_records())
    assert kinds == ["Activity", "Activity", "Agent", "Association", "Association", "Entity", "Entity",
                     "Generation", "Generation", "Usage"]

    provn = ok("lineage", model, *store, "--format", "prov-n")
    assert provn.startswith("document") and provn.rstrip().endswith("endDocument")
    assert provn.count("wasGeneratedBy(") == 2 and provn.count("used(") == 1

    dot = ok("lineage", model, *store, "--format", "dot")
    assert dot.startswith("digraph lineage {") and dot.count("->") == len(expected)

    svg = ET.fromstring(ok("lineage", model, *store, "--format", "svg"))
    nodes = [g for g in svg.iter("{http://www.w3.org/2000/svg}g") if g.get("class", "").startswith("node ")]
    assert len(nodes) == 5

    tree = ok("lineage", model, *store)
    assert tree.splitlines()[0].startswith(f"Execution_Asset/model.bin {model}")
    assert "came from" in tree and f"made by execution {chain['fit']}" in tree
    assert "used Execution_Asset/data.csv" in tree
    assert "what came of it" in tree and "nothing used it yet" in tree and "not pushed" in tree


def test_output_file_depth_and_direction(chain, tmp_path):
    picture = tmp_path / "lineage.svg"
    res = satchel("lineage", chain["model"], "--store", chain["store"], "--format", "svg", "-o", str(picture),
                  "--depth", "1", "--direction", "backward")
    assert res.returncode == 0 and res.stdout == "" and str(picture) in res.stderr
    assert ET.parse(picture).getroot().tag == "{http://www.w3.org/2000/svg}svg"
    data = json.loads(ok("lineage", chain["model"], "--store", chain["store"], "--format", "json",
                         "--depth", "1", "--direction", "backward"))
    assert data["truncated"] and data["depth"] == 1 and data["direction"] == "backward"
    assert edge_set(data) == {("wasGeneratedBy", chain["model"], chain["fit"]), ("used", chain["fit"], chain["data"]),
                              ("wasAssociatedWith", chain["fit"], chain["workflow"])}
    forward = json.loads(ok("lineage", chain["data"], "--store", chain["store"], "--format", "json",
                            "--direction", "forward"))
    assert edge_set(forward) == {("used", chain["fit"], chain["data"]),
                                 ("wasGeneratedBy", chain["model"], chain["fit"]),
                                 ("wasAssociatedWith", chain["fit"], chain["workflow"])}
    tree = tmp_path / "tree.txt"
    ok("lineage", chain["fit"], "--store", chain["store"], "-o", str(tree))
    assert tree.read_text().startswith(f"execution {chain['fit']} 'fit'")


def test_an_unknown_rid_is_one_line_and_exit_3(chain):
    res = satchel("lineage", "9-NOPE", "--store", chain["store"])
    assert res.returncode == 3 and res.stdout == ""
    assert res.stderr.startswith("error: RID 9-NOPE names nothing in this store") and "satchel pull" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    bad = satchel("lineage", chain["model"], "--store", chain["store"], "--direction", "sideways")
    assert bad.returncode == 2 and "sideways" in bad.stderr and "Traceback" not in bad.stderr
    negative = satchel("lineage", chain["model"], "--store", chain["store"], "--depth", "-1")
    assert negative.returncode == 2 and "--depth" in negative.stderr


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """`satchel demo` run once, its stores kept; returns the directory holding laptop/ and workstation/."""
    root = tmp_path_factory.mktemp("demo")
    res = satchel("demo", "--store", str(root))
    assert res.returncode == 0, res.stderr
    assert "lineage of the model" in res.stdout and "what came of it" in res.stdout
    return root


def test_the_demo_runs_edge_by_edge(demo):
    """The demo's story: train wrote the model, its hyperparameters and metrics; evaluate read the model and
    wrote a confusion matrix; on a second machine, fine-tune read the model. Each run has its own workflow."""
    with DerivaML("localhost", "1", working_dir=demo / "laptop") as ml:
        runs = {e.description: e.rid for e in ml.list_executions()}
        train, evaluate, finetune = runs["train a tiny model"], runs["evaluate it"], runs["fine-tune"]
        flows = {r: ml.lookup_execution(r).workflow_rid for r in (train, evaluate, finetune)}
        files = {a.filename: a.rid for a in ml.find_assets()}
    model, confusion = files["model.bin"], files["confusion.png"]
    wrote = {("wasGeneratedBy", files[f], train) for f in ("model.bin", "hyperparameters.json", "metrics.jsonl")}
    ran = {r: ("wasAssociatedWith", r, flows[r]) for r in flows}
    expected = {
        train: wrote | {("used", evaluate, model), ("wasGeneratedBy", confusion, evaluate), ("used", finetune, model),
                        ran[train], ran[evaluate], ran[finetune]},
        evaluate: {("used", evaluate, model), ("wasGeneratedBy", model, train), ("wasGeneratedBy", confusion, evaluate),
                   ran[evaluate], ran[train]},
        finetune: {("used", finetune, model), ("wasGeneratedBy", model, train), ran[finetune], ran[train]},
        model: {("wasGeneratedBy", model, train), ("used", evaluate, model), ("wasGeneratedBy", confusion, evaluate),
                ("used", finetune, model), ran[train], ran[evaluate], ran[finetune]},
    }
    for rid, edges in expected.items():
        data = json.loads(ok("lineage", rid, "--store", str(demo / "laptop"), "--format", "json"))
        assert edge_set(data) == edges, rid
    pulled = {n["rid"] for n in data["nodes"] if n["pulled"]}
    assert pulled == {finetune, flows[finetune]}  # the laptop knows fine-tune from its pull
    seen_there = json.loads(ok("lineage", model, "--store", str(demo / "workstation"), "--format", "json"))
    assert edge_set(seen_there) == expected[model]  # the same catalog RIDs, the same graph, on the other machine
    assert {n["rid"] for n in seen_there["nodes"] if not n["pulled"]} == {finetune, flows[finetune]}
    with DerivaML("localhost", "1", working_dir=demo / "laptop") as ml:  # all synced: named by catalog URLs
        doc = ml.lineage(train).to_prov()
    assert {r.identifier.uri for r in doc.get_records() if r.is_element()} == {
        f"https://localhost/id/1/{r}" for r in (train, evaluate, finetune, model, confusion, files["metrics.jsonl"],
                                                 files["hyperparameters.json"], *flows.values())}

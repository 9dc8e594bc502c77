"""ml.lineage(rid): the graph both ways, offline, and its PROV, DOT and SVG forms.

Every expected edge set here is written out from the story the test records,
not derived from the walk: a walk that adds or drops one edge fails.
"""

from __future__ import annotations

import json
import re
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from prov.model import ProvDocument

from satchel import AssetSpec, BadArgumentError, DerivaML, ExecutionConfiguration, LineageGraph, UnknownRIDError
from satchel.provenance.layout import flow_edges, layered
from satchel.testing.pytest_plugin import deriva_server  # noqa: F401

SVG = "{http://www.w3.org/2000/svg}"
GUIDE = Path(__file__).parents[1] / "docs" / "lineage.md"


def run(ml: DerivaML, workflow, name: str, inputs=(), outputs=("out",)) -> tuple[str, dict[str, str]]:
    """An execution reading ``inputs`` (asset RIDs) and writing one small file per output name."""
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow, description=name,
                                                     assets=[AssetSpec(rid=r) for r in inputs]))
    with exe:
        for out in outputs:
            exe.asset_file_path("Model", f"{name}-{out}.bin").write_bytes(f"{name}:{out}".encode())
    report = exe.commit_output_assets()
    return exe.execution_rid, {a.file_name.split("-")[1].removesuffix(".bin"): a.asset_rid for a in report.assets}


def edges(graph: LineageGraph) -> set[tuple[str, str, str]]:
    return {(e.kind, e.source, e.target) for e in graph.edges}


def used(exe, asset):
    return ("used", exe, asset)


def made(asset, exe):
    return ("wasGeneratedBy", asset, exe)


def ran(exe, workflow):
    return ("wasAssociatedWith", exe, workflow)


@pytest.fixture
def chain(ml, workflow):
    """ingest -> raw -> train -> model -> evaluate -> score: three executions, one workflow."""
    ingest, raw = run(ml, workflow, "ingest")
    train, model = run(ml, workflow, "train", inputs=[raw["out"]])
    evaluate, score = run(ml, workflow, "evaluate", inputs=[model["out"]])
    return {"ingest": ingest, "train": train, "evaluate": evaluate, "raw": raw["out"], "model": model["out"],
            "score": score["out"]}


def workflow_rid(ml: DerivaML, exe_rid: str) -> str:
    return ml.lookup_execution(exe_rid).workflow_rid


def test_both_ways_from_the_middle_of_a_chain(ml, chain):
    wf = workflow_rid(ml, chain["train"])
    graph = ml.lineage(chain["model"])
    assert (graph.root, graph.root_kind, graph.direction, graph.truncated) == (chain["model"], "asset", "both", False)
    assert edges(graph) == {
        made(chain["model"], chain["train"]), used(chain["train"], chain["raw"]), made(chain["raw"], chain["ingest"]),
        used(chain["evaluate"], chain["model"]), made(chain["score"], chain["evaluate"]),
        ran(chain["ingest"], wf), ran(chain["train"], wf), ran(chain["evaluate"], wf),
    }
    assert [n.kind for n in graph.nodes] == ["asset"] * 3 + ["execution"] * 3 + ["workflow"]
    model = graph.node(chain["model"])
    assert (model.table, model.filename, model.length, model.sync_state, model.pulled) == (
        "Model", "train-out.bin", len(b"train:out"), "local", False)
    assert "Output_File" in model.types and model.catalog_rid is None
    train = graph.node(chain["train"])
    assert (train.status, train.description, train.workflow) == ("Uploaded", "train", wf)
    assert train.start_time and train.stop_time and train.start_time <= train.stop_time
    assert graph.node(wf).name == "train.py"


def test_one_direction_at_a_time(ml, chain):
    wf = workflow_rid(ml, chain["train"])
    back = ml.lineage(chain["model"], direction="backward")
    assert edges(back) == {made(chain["model"], chain["train"]), used(chain["train"], chain["raw"]),
                           made(chain["raw"], chain["ingest"]), ran(chain["ingest"], wf), ran(chain["train"], wf)}
    ahead = ml.lineage(chain["model"], direction="forward")
    assert edges(ahead) == {used(chain["evaluate"], chain["model"]), made(chain["score"], chain["evaluate"]),
                            ran(chain["evaluate"], wf)}
    assert {n.rid for n in ahead.nodes} == {chain["model"], chain["evaluate"], chain["score"], wf}


def test_an_execution_as_the_root(ml, chain):
    wf = workflow_rid(ml, chain["train"])
    graph = ml.lineage(chain["train"])
    assert graph.root_kind == "execution" and graph.root == chain["train"]
    assert edges(graph) == {
        used(chain["train"], chain["raw"]), made(chain["raw"], chain["ingest"]), made(chain["model"], chain["train"]),
        used(chain["evaluate"], chain["model"]), made(chain["score"], chain["evaluate"]),
        ran(chain["ingest"], wf), ran(chain["train"], wf), ran(chain["evaluate"], wf),
    }
    alone = ml.lineage(chain["train"], depth=0)  # the execution, what it read and wrote, its workflow
    assert edges(alone) == {used(chain["train"], chain["raw"]), made(chain["model"], chain["train"]),
                            ran(chain["train"], wf)}
    assert alone.truncated


def test_depth_counts_execution_hops(ml, chain):
    wf = workflow_rid(ml, chain["train"])
    nothing = ml.lineage(chain["score"], depth=0)
    assert [n.rid for n in nothing.nodes] == [chain["score"]] and nothing.edges == () and nothing.truncated
    one = ml.lineage(chain["score"], depth=1)
    assert edges(one) == {made(chain["score"], chain["evaluate"]), used(chain["evaluate"], chain["model"]),
                          ran(chain["evaluate"], wf)}
    assert one.truncated and one.depth == 1
    three = ml.lineage(chain["score"], depth=3)
    assert not three.truncated and edges(three) == edges(ml.lineage(chain["score"]))
    assert not ml.lineage(chain["raw"], direction="backward", depth=1).truncated  # ingest is all there is


def test_a_diamond_shows_each_execution_once(ml, workflow):
    source, a = run(ml, workflow, "source")
    left, b = run(ml, workflow, "left", inputs=[a["out"]])
    join, j = run(ml, workflow, "join", inputs=[a["out"], b["out"]])
    wf = workflow_rid(ml, join)
    graph = ml.lineage(j["out"], direction="backward")
    assert edges(graph) == {
        made(j["out"], join), used(join, a["out"]), used(join, b["out"]), made(b["out"], left),
        used(left, a["out"]), made(a["out"], source), ran(source, wf), ran(left, wf), ran(join, wf),
    }
    rids = [n.rid for n in graph.nodes]
    assert len(rids) == len(set(rids)) == 7
    ahead = ml.lineage(a["out"], direction="forward")
    assert edges(ahead) == {used(left, a["out"]), used(join, a["out"]), made(b["out"], left),
                            used(join, b["out"]), made(j["out"], join), ran(left, wf), ran(join, wf)}


def test_a_cycle_made_in_sql_ends(ml, workflow, store_dir):
    first, a = run(ml, workflow, "first")
    second, b = run(ml, workflow, "second", inputs=[a["out"]])
    wf = workflow_rid(ml, first)
    with sqlite3.connect(store_dir / "journal.db") as db:  # a corrupted history: first read what second wrote
        db.execute("INSERT INTO asset_links (asset_id, execution_id, role, sync_state) "
                   "SELECT a.id, e.id, 'Input', 'local' FROM assets a, executions e WHERE a.rid = ? AND e.rid = ?",
                   (b["out"], first))
    db.close()
    expected = {made(a["out"], first), used(second, a["out"]), made(b["out"], second), used(first, b["out"]),
                ran(first, wf), ran(second, wf)}
    for direction in ("both", "backward", "forward"):
        assert edges(ml.lineage(a["out"], direction=direction)) == expected, direction
    graph = ml.lineage(first)
    assert edges(graph) == expected and len(graph.nodes) == 5
    placed = layered(graph.nodes, graph.edges).nodes  # the picture is drawn too
    assert len({(p.x, p.y) for p in placed.values()}) == len(graph.nodes)
    ET.fromstring(graph.to_svg())


def test_rows_mirrored_by_a_pull_take_part(tmp_path, deriva_server):
    with DerivaML("example.org", "1", working_dir=tmp_path / "lab") as lab:
        lab.add_term("Workflow_Type", "Training", description="training")
        made_there = lab.create_workflow("train.py", "Training")
        ingest, raw = run(lab, made_there, "ingest")
        train, model = run(lab, made_there, "train", inputs=[raw["out"]])
        with deriva_server.remote() as remote:
            assert lab.push(remote=remote).ok
        ingest, train = (lab.lookup_execution(r).execution_rid for r in (ingest, train))  # catalog RIDs now
        raw, model = (lab.lookup_asset(r["out"]).rid for r in (raw, model))
        wf = workflow_rid(lab, train)
    with DerivaML("example.org", "1", working_dir=tmp_path / "laptop") as laptop:
        with deriva_server.remote() as remote:
            laptop.pull(remote=remote, assets=[model])  # the metadata of everything, the bytes of the model
        laptop.add_term("Workflow_Type", "Evaluation", description="evaluation")
        evaluate, score = run(laptop, laptop.create_workflow("eval.py", "Evaluation"), "evaluate", inputs=[model])
        graph = laptop.lineage(score["out"])
        here = workflow_rid(laptop, evaluate)
    assert edges(graph) == {
        made(score["out"], evaluate), used(evaluate, model), made(model, train), used(train, raw),
        made(raw, ingest), ran(evaluate, here), ran(train, wf), ran(ingest, wf),
    }
    pulled = {n.rid for n in graph.nodes if n.pulled}
    assert pulled == {raw, model, ingest, train, wf}
    assert all(graph.node(r).catalog_rid == r for r in pulled)
    assert graph.node(evaluate).sync_state == "local" and graph.node(evaluate).catalog_rid is None
    ids = {r.identifier.uri for r in graph.to_prov().get_records() if r.is_element()}
    store_id = graph.catalog.store_id
    assert ids == {f"https://example.org/id/1/{r}" for r in pulled} | {
        f"urn:satchel:store:{store_id}:{r}" for r in (score["out"], evaluate, here)}


def test_prov_round_trips_through_the_prov_package(ml, chain):
    graph = ml.lineage(chain["model"])
    doc = graph.to_prov()
    text = doc.serialize(format="json")
    again = ProvDocument.deserialize(content=text, format="json")
    assert again == doc
    fewer = json.loads(text)
    fewer["used"].popitem()
    assert ProvDocument.deserialize(content=json.dumps(fewer), format="json") != doc  # the comparison can fail
    counts = {kind: len(list(records)) for kind, records in _by_kind(again).items()}
    assert counts == {"entity": 3, "activity": 3, "agent": 1, "used": 2, "wasGeneratedBy": 3,
                      "wasAssociatedWith": 3}
    provn = doc.get_provn()
    assert provn.startswith("document") and provn.rstrip().endswith("endDocument")
    store = f"urn:satchel:store:{graph.catalog.store_id}:"
    model = again.get_record(f"{store}{chain['model']}")[0]
    attributes = {(str(k), str(v)) for k, v in model.attributes}
    assert ("satchel:filename", "train-out.bin") in attributes and ("satchel:table", "Model") in attributes
    assert ("prov:type", "satchel:Asset") in attributes
    train = again.get_record(f"{store}{chain['train']}")[0]
    assert train.get_startTime() is not None and train.get_endTime() >= train.get_startTime()


def _by_kind(doc: ProvDocument) -> dict[str, list]:
    found: dict[str, list] = {}
    for record in doc.get_records():
        found.setdefault(record.get_type().localpart.lower(), []).append(record)
    names = {"entity": "entity", "activity": "activity", "agent": "agent", "usage": "used",
             "generation": "wasGeneratedBy", "association": "wasAssociatedWith"}
    return {names[k]: v for k, v in found.items()}


def test_dot_has_a_line_per_node_and_edge_and_quotes_names(ml, workflow):
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow, description='says "hi" \\ there'))
    with exe:
        exe.asset_file_path("Model", 'odd "name" <&>.bin').write_bytes(b"x")
    (asset,) = [a.asset_rid for a in exe.commit_output_assets().assets]
    graph = ml.lineage(asset)
    dot = graph.to_dot()
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    assert sum(line.lstrip().startswith('"') and "->" not in line for line in dot.splitlines()) == len(graph.nodes)
    assert sum("->" in line for line in dot.splitlines()) == len(graph.edges)
    assert 'odd \\"name\\" <&>.bin' in dot and 'says \\"hi\\" \\\\ there' in dot
    assert f'"{exe.execution_rid}" -> "{asset}"' in dot  # drawn as data flows: the execution wrote the asset


def test_svg_parses_with_one_node_element_per_node(ml, workflow, chain):
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow, description="<script>&\x07",
                                                     assets=[AssetSpec(rid=chain["score"])]))
    with exe:
        exe.asset_file_path("Model", 'a <b> & "c".bin').write_bytes(b"y")
    exe.commit_output_assets()
    graph = ml.lineage(chain["model"])
    root = ET.fromstring(graph.to_svg())
    assert root.tag == f"{SVG}svg" and root.get("version") == "1.1"
    groups = [g for g in root.iter(f"{SVG}g") if g.get("class", "").split()[:1] == ["node"]]
    assert len(groups) == len(graph.nodes) == 9
    assert {g.get("class").split()[1] for g in groups} == {"asset", "execution", "workflow"}
    assert len({g.get("id") for g in groups}) == len(groups)
    assert len([p for p in root.iter(f"{SVG}path") if "edge" in p.get("class", "")]) == len(graph.edges)
    assert any("a <b> & \"c\".bin" in (t.text or "") for t in root.iter(f"{SVG}text"))
    layout = layered(graph.nodes, graph.edges)
    for source, target in flow_edges(graph.edges):  # no cycle here: every arrow points right
        assert layout.nodes[target].x > layout.nodes[source].x


def test_as_dict_is_json_and_stable(ml, chain):
    first = json.dumps(ml.lineage(chain["model"]).as_dict())
    data = json.loads(first)
    assert first == json.dumps(ml.lineage(chain["model"]).as_dict())
    assert data["catalog"]["hostname"] == "example.org" and data["catalog"]["catalog_id"] == "1"
    assert [n["kind"] for n in data["nodes"]] == sorted((n["kind"] for n in data["nodes"]),
                                                       key=["asset", "execution", "workflow"].index)
    assert {"kind": "used", "source": chain["evaluate"], "target": chain["model"]} in data["edges"]


def test_unknown_rids_and_bad_options_are_refused_clearly(ml, chain):
    with pytest.raises(UnknownRIDError, match="9-NOPE.*nothing in this store.*satchel pull"):
        ml.lineage("9-NOPE")
    with pytest.raises(UnknownRIDError, match="workflow"):
        ml.lineage(workflow_rid(ml, chain["train"]))
    for depth in (-1, True, 1.5, "2"):
        with pytest.raises(BadArgumentError, match="depth"):
            ml.lineage("9-NOPE", depth=depth)  # refused before the RID is even looked up
    with pytest.raises(BadArgumentError, match="direction 'up'.*both, backward, forward"):
        ml.lineage("9-NOPE", direction="up")
    assert ml.lineage(chain["model"].lower()).root == chain["model"]  # RIDs are case-insensitive


def test_the_guide_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for i, block in enumerate(re.findall(r"```python\n(.*?)\n```", GUIDE.read_text(), re.S)):
        exec(compile(block, f"docs/lineage.md block {i}", "exec"), namespace)
    out = capsys.readouterr().out
    data, model, train = namespace["data"], namespace["model"], namespace["train"].execution_rid
    assert f"wasGeneratedBy {model} -> {train}" in out and f"used {train} -> {data}" in out
    assert "model.bin came from train" in out and "endDocument" in out
    picture = ET.parse(tmp_path / "model-lineage.svg").getroot()
    assert len([g for g in picture.iter(f"{SVG}g") if g.get("class", "").startswith("node ")]) == 5
    assert (tmp_path / "model-lineage.dot").read_text().startswith("digraph")

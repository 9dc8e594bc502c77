"""lookup_lineage walks data flow backward, offline: chains, diamonds, cycles, and its bounds."""

from __future__ import annotations

import pytest

from satchel import AssetSpec, ExecutionConfiguration, LocalFile, UnknownRIDError


def run(ml, workflow, name: str, inputs=(), outputs=("out",)) -> tuple[str, dict[str, str]]:
    """An execution consuming ``inputs`` (asset RIDs) and producing one small file per output name."""
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow, description=name,
                                                     assets=[AssetSpec(rid=r) for r in inputs]))
    with exe:
        for out in outputs:
            exe.asset_file_path("Model", f"{name}-{out}.bin").write_bytes(f"{name}:{out}".encode())
    report = exe.commit_output_assets()
    return exe.execution_rid, {p.file_name.split("-")[1].removesuffix(".bin"): p.asset_rid for p in report.assets}


def test_a_chain_back_to_the_raw_data(ml, workflow):
    raw_exe, raw = run(ml, workflow, "ingest")
    train_exe, trained = run(ml, workflow, "train", inputs=[raw["out"]])
    eval_exe, evaluated = run(ml, workflow, "eval", inputs=[trained["out"]])

    result = ml.lookup_lineage(evaluated["out"])
    assert (result.root.type, result.root.rid) == ("Asset", evaluated["out"])
    assert result.root.producing_execution.rid == eval_exe
    assert result.root.producing_execution.workflow.name == "train.py"
    node = result.lineage
    chain = []
    while node is not None:
        chain.append((node.execution.rid, [a.rid for a in node.consumed_assets]))
        node = node.parents[0] if node.parents else None
    assert chain == [(eval_exe, [trained["out"]]), (train_exe, [raw["out"]]), (raw_exe, [])]
    assert (result.executions_visited, result.walked_complete, result.cycle_detected) == (3, True, False)

    capped = ml.lookup_lineage(evaluated["out"], depth=0)
    assert capped.lineage.execution.rid == eval_exe and capped.lineage.parents == [] and capped.depth_capped
    two = ml.lookup_lineage(evaluated["out"], depth=1)
    assert [p.execution.rid for p in two.lineage.parents] == [train_exe] and two.lineage.parents[0].parents == []

    by_execution = ml.lookup_lineage(train_exe)
    assert by_execution.root.type == "Execution" and by_execution.root.producing_execution is None
    assert by_execution.lineage.execution.rid == train_exe


def test_a_diamond_shows_the_shared_producer_once(ml, workflow):
    source_exe, source = run(ml, workflow, "source")
    left_exe, left = run(ml, workflow, "left", inputs=[source["out"]])
    _, joined = run(ml, workflow, "join", inputs=[source["out"], left["out"]])
    result = ml.lookup_lineage(joined["out"])
    parents = result.lineage.parents
    assert [p.execution.rid for p in parents] == [source_exe, left_exe]
    assert parents[0].already_shown is False
    (again,) = parents[1].parents
    assert again.execution.rid == source_exe and again.already_shown and again.parents == []
    assert result.executions_visited == 3


def test_a_cycle_is_cut_and_reported(ml, workflow, tmp_path):
    first = ml.create_execution(ExecutionConfiguration(workflow=workflow, description="first"))
    with first:
        first.asset_file_path("Model", "a.bin").write_bytes(b"a")
    (a,) = [p.asset_rid for p in first.commit_output_assets().assets]
    _, second = run(ml, workflow, "second", inputs=[a])
    first.download_asset(second["out"], tmp_path / "back")  # a corrupted history: first consumed what came after it
    result = ml.lookup_lineage(a)
    assert result.cycle_detected and result.lineage.execution.rid == first.execution_rid


def test_the_walk_stops_at_max_executions(ml, workflow):
    rid = None
    for n in range(5):
        _, made = run(ml, workflow, f"step{n}", inputs=[rid] if rid else [])
        rid = made["out"]
    result = ml.lookup_lineage(rid, max_executions=3)
    assert result.executions_visited == 3 and not result.walked_complete


def test_no_producer_is_an_answer_and_a_workflow_is_refused(ml, workflow, tmp_path):
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow, assets=[LocalFile(_file(tmp_path / "raw.csv"))]))
    (local,) = exe.asset_paths["File"]
    result = ml.lookup_lineage(local.asset_rid)
    assert result.lineage is None and result.root.producing_execution is None
    with pytest.raises(UnknownRIDError, match="workflow"):
        ml.lookup_lineage(exe.workflow_rid)
    with pytest.raises(UnknownRIDError, match="nothing"):
        ml.lookup_lineage("9-NOPE")


def _file(path):
    path.write_text("a,b\n1,2\n")
    return path

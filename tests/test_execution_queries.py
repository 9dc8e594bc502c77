"""The execution queries deriva-ml scripts use, on what a store really holds: pulled rows with
deriva-ml 1.24's free-text statuses, workflows without types, times with a server's offset."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest

from satchel import DerivaMLException, ExecutionConfiguration, ExecutionStatus, LocalFile, UnknownAssetTableError


def _sql(ml, statement: str, *args) -> None:
    with sqlite3.connect(ml.store.journal_path) as conn:
        conn.execute(statement, args)


def test_a_free_text_status_from_deriva_ml_1_24_does_not_break_the_queries(ml, workflow):
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow, description="old run"))
    _sql(ml, "UPDATE executions SET status = 'Complete: 3 files uploaded' WHERE rid = ?", exe.execution_rid)
    (snap,) = ml.list_executions()
    assert snap.status == "Complete: 3 files uploaded"
    assert ml.lookup_execution(exe.execution_rid).status == "Complete: 3 files uploaded"
    assert ml.find_incomplete_executions() == []
    assert len(ml.find_executions(workflow=exe.workflow_rid)) == 1


def test_a_workflow_without_types_can_run_again(ml, workflow):
    rid = ml.add_workflow(workflow)
    _sql(ml, "UPDATE workflows SET workflow_type = NULL WHERE rid = ?", rid)  # as a pull of a bare row leaves it
    pulled = ml.lookup_workflow(rid)
    assert pulled.workflow_type == []
    exe = ml.create_execution(ExecutionConfiguration(workflow=pulled))
    assert exe.workflow_rid == rid


def test_since_compares_instants_not_strings(ml, workflow):
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow))
    # a pulled row's creation time keeps the server's offset: 10:00 at -08:00 is 18:00 UTC
    _sql(ml, "UPDATE executions SET created_at = '2026-12-05T10:00:00-08:00' WHERE rid = ?", exe.execution_rid)
    assert [s.rid for s in ml.list_executions(since=datetime(2026, 12, 5, 17, 0, tzinfo=timezone.utc))] == \
        [exe.execution_rid]
    assert ml.list_executions(since=datetime(2026, 12, 5, 19, 0, tzinfo=timezone.utc)) == []


def test_find_executions_refuses_what_it_cannot_filter(ml, workflow):
    ml.create_execution(ExecutionConfiguration(workflow=workflow))
    with pytest.raises(DerivaMLException, match="datasets"):
        ml.find_executions(dataset="1-ABC")
    assert len(ml.find_executions(sort=True)) == 1


def test_commit_pending_executions_leaves_running_ones_alone_unless_named(ml, workflow):
    running = ml.create_execution(ExecutionConfiguration(workflow=workflow, description="still at work"))
    running.execution_start()
    running.asset_file_path("Model", "partial.bin").write_bytes(b"half")
    stopped = ml.create_execution(ExecutionConfiguration(workflow=workflow, description="done"))
    with stopped:
        stopped.asset_file_path("Model", "final.bin").write_bytes(b"whole")
    report = ml.commit_pending_executions()
    assert report.execution_rids == [stopped.execution_rid] and report.total_uploaded == 1
    assert any(running.execution_rid in e and "Running" in e for e in report.errors)
    assert running.status is ExecutionStatus.Running
    named = ml.commit_pending_executions(execution_rids=[running.execution_rid])
    assert named.total_uploaded == 1 and running.status is ExecutionStatus.Uploaded


def test_local_file_inputs_are_recorded_with_the_execution(ml, workflow, tmp_path):
    data = tmp_path / "labels.csv"
    data.write_text("id,label\n1,cat\n")
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow, assets=[LocalFile(data)]))
    (path,) = exe.asset_paths["File"]
    asset = ml.lookup_asset(path.asset_rid)
    assert asset.filename == "labels.csv" and asset.asset_types == ["Input_File"]
    assert [(e.execution_rid, e.asset_role) for e in asset.executions] == [(exe.execution_rid, "Input")]
    with pytest.raises(DerivaMLException, match="not a file"):
        ml.create_execution(ExecutionConfiguration(workflow=workflow, assets=[LocalFile(tmp_path / "gone.csv")]))
    assert len(ml.list_executions()) == 1  # the refused one recorded nothing


def test_create_asset_table_works_once_the_model_is_known(ml, workflow):
    _sql(ml, "INSERT INTO store_info (key, value) VALUES ('model_pulled_at', '2026-12-05T00:00:00+00:00')")
    ml.workspace.forget_model()
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow))
    with pytest.raises(UnknownAssetTableError, match="not in the catalog model"):
        exe.asset_file_path("Scna_File", "typo.raw")  # a typo is caught once the model is known
    ml.create_asset_table("Scan_File")  # an explicit creation is not
    assert "Scan_File" in ml.list_asset_tables()
    with pytest.raises(ValueError, match="not a column definition"):
        ml.create_asset_table("Other_File", additional_columns=[{"type": "text"}])

"""Executions offline: creation, the status state machine, the five asset_file_path modes, commit."""

from __future__ import annotations

import os
import sqlite3

import pytest

from satchel import (
    AssetFilePath,
    CommitError,
    DerivaML,
    DuplicateAssetError,
    ExecutionConfiguration,
    ExecutionError,
    InvalidTransitionError,
    MissingSourceError,
    NotFoundError,
    Status,
    StoreError,
    UnknownAssetTableError,
    UnknownTermError,
)
from satchel.rid import is_provisional, looks_like_ermrest_rid


def new_exe(ml: DerivaML, workflow, **kw):
    return ml.create_execution(ExecutionConfiguration(workflow=workflow, description="test run", **kw))


def journal_rows(ml: DerivaML, sql: str) -> list[tuple]:
    with sqlite3.connect(ml.store.journal_path) as conn:
        return conn.execute(sql).fetchall()


def test_create_execution_offline_has_a_rid_at_once(ml, workflow):
    exe = new_exe(ml, workflow)
    assert is_provisional(exe.rid) and not looks_like_ermrest_rid(exe.rid)
    assert exe.status is Status.Created
    assert ml.resume_execution(exe.rid).rid == exe.rid
    assert ml.lookup_workflow(workflow.rid).name == "train.py"


def test_workflows_are_reused_by_checksum_or_url(ml):
    a = ml.add_workflow(ml.create_workflow("a", "Training", checksum="abc"))
    b = ml.add_workflow(ml.create_workflow("b", "Training", checksum="abc"))
    assert a == b


def test_unknown_workflow_type_names_the_fix(ml):
    with pytest.raises(UnknownTermError, match=r"Workflow_Type.*'Nope'.*add_term"):
        ml.create_workflow("x", "Nope")


def test_config_and_keyword_forms_are_exclusive(ml, workflow):
    with pytest.raises(TypeError):
        ml.create_execution(ExecutionConfiguration(workflow=workflow), description="both")


def test_context_manager_runs_the_state_machine(ml, workflow):
    exe = new_exe(ml, workflow)
    with exe as e:
        assert e is exe and exe.status is Status.Running
    assert exe.status is Status.Stopped
    history = [h["to"] for h in ml.execution_history(exe.rid)]
    assert history == ["Created", "Running", "Stopped"]
    with sqlite3.connect(ml.store.journal_path) as conn:
        start, stop, dur = conn.execute(
            "SELECT start_time, stop_time, execution_duration FROM executions WHERE rid=?", (exe.rid,)
        ).fetchone()
    assert start and stop and dur is not None and dur >= 0


def test_an_exception_fails_the_execution_with_the_error(ml, workflow):
    exe = new_exe(ml, workflow)
    with pytest.raises(RuntimeError):
        with exe.execute():
            raise RuntimeError("boom")
    assert exe.status is Status.Failed
    assert ml.execution_history(exe.rid)[-1]["detail"] == "RuntimeError: boom"


def test_reentering_a_stopped_execution_names_the_fix(ml, workflow):
    exe = new_exe(ml, workflow)
    with exe:
        pass
    with pytest.raises(InvalidTransitionError, match="create a new execution"):
        with exe:
            pass
    assert exe.status is Status.Stopped


def test_new_file_mode_commits_the_bytes_written(ml, workflow):
    exe = new_exe(ml, workflow)
    with exe:
        p = exe.asset_file_path("Execution_Asset", "weights.pt", asset_types=["Model_File"], description="w")
        assert isinstance(p, AssetFilePath) and p.asset_table == "Execution_Asset" and p.asset_rid is None
        p.write_bytes(b"weights")
    report = exe.commit_output_assets()
    assert report.total_uploaded == 1 and report.per_table == {"deriva-ml/Execution_Asset": {"uploaded": 1, "failed": 0}}
    assert p.asset_rid is not None and report.assets[0] is p
    a = ml.lookup_asset(p.asset_rid)
    assert (a.filename, a.length, a.description) == ("weights.pt", 7, "w")
    assert a.asset_types == ["Model_File", "Output_File"]
    assert [(e.execution_rid, e.asset_role) for e in a.executions] == [(exe.rid, "Output")]
    assert a.url == f"/hatrac/Execution_Asset/{a.md5}.weights.pt"
    assert exe.status is Status.Uploaded and not a.synced  # uploaded into the store; the push sends it


def test_symlink_mode_captures_the_bytes_at_commit(ml, workflow, make_file):
    src = make_file("data.csv", b"v1")
    exe = new_exe(ml, workflow)
    with exe:
        p = exe.asset_file_path("Execution_Asset", src)
    assert p.is_symlink() or p.exists()
    report = exe.commit_output_assets(clean_folder=False)
    src.write_bytes(b"v2 edited after commit")
    a = ml.lookup_asset(report.assets[0].asset_rid)
    assert a.length == 2
    got = a.download(src.parent / "out")
    assert got.read_bytes() == b"v1"


def test_copy_and_rename_modes(ml, workflow, make_file):
    src = make_file("raw.bin", b"raw bytes")
    exe = new_exe(ml, workflow)
    with exe:
        c = exe.asset_file_path("Execution_Asset", src, copy_file=True, rename_file="renamed.bin")
        assert c.name == "renamed.bin" and not c.is_symlink()
        src.write_bytes(b"changed after the copy")
    exe.commit_output_assets()
    assert ml.lookup_asset(c.asset_rid).filename == "renamed.bin"
    assert ml.lookup_asset(c.asset_rid).length == len(b"raw bytes")


def test_metadata_mode_keeps_typed_values(ml, workflow):
    exe = new_exe(ml, workflow)
    with exe:
        p = exe.asset_file_path("Execution_Asset", "scan.png", metadata={"Width": 640, "Subject": None}, Height=480)
        p.write_bytes(b"png")
        p.set_metadata("Format", "PNG")
    exe.commit_output_assets()
    meta = ml.lookup_asset(p.asset_rid).metadata
    assert meta == {"Width": 640, "Subject": None, "Height": 480, "Format": "PNG"}


def test_set_asset_types_before_commit_is_what_gets_committed(ml, workflow):
    ml.add_term("Asset_Type", "Mask", description="masks")
    exe = new_exe(ml, workflow)
    with exe:
        p = exe.asset_file_path("Execution_Asset", "m.png")
        p.write_bytes(b"m")
        p.set_asset_types(["Mask"])
    exe.commit_output_assets()
    assert ml.lookup_asset(p.asset_rid).asset_types == ["Mask", "Output_File"]


def test_rename_with_a_missing_source_is_an_error(ml, workflow, tmp_path):
    exe = new_exe(ml, workflow)
    with exe:
        with pytest.raises(MissingSourceError, match="rename_file"):
            exe.asset_file_path("Execution_Asset", tmp_path / "missing.bin", rename_file="x.bin")
    assert journal_rows(ml, "SELECT count(*) FROM registrations") == [(0,)]


def test_same_name_twice_in_one_table_is_an_error_and_never_writes_through(ml, workflow, make_file):
    first = make_file("a/same.txt", b"first original")
    second = make_file("b/same.txt", b"second original")
    exe = new_exe(ml, workflow)
    with exe:
        exe.asset_file_path("Execution_Asset", first)
        with pytest.raises(DuplicateAssetError, match="rename_file"):
            exe.asset_file_path("Execution_Asset", second, copy_file=True)
        exe.asset_file_path("Execution_Asset", second, rename_file="same-2.txt")
    assert first.read_bytes() == b"first original"
    report = exe.commit_output_assets()
    assert sorted(a.file_name for a in report.assets) == ["same-2.txt", "same.txt"]


def test_duplicate_is_caught_across_processes_by_the_journal(ml, workflow):
    exe = new_exe(ml, workflow)
    with exe:
        exe.asset_file_path("Execution_Asset", "x.bin").write_bytes(b"1")
        other = ml.resume_execution(exe.rid)  # another handle, as another process would have
        other._handed_out.clear()
        with pytest.raises(DuplicateAssetError):
            other.asset_file_path("Execution_Asset", "x.bin")


def test_unknown_types_and_tables(ml, workflow):
    exe = new_exe(ml, workflow)
    with exe:
        with pytest.raises(UnknownTermError, match=r"'Bogus'.*known:.*Model_File"):
            exe.asset_file_path("Execution_Asset", "x", asset_types=["Bogus"])
        with pytest.raises(UnknownAssetTableError):
            exe.asset_file_path("bad/name", "x")
    # once a model is known, unknown tables are refused with the known ones listed
    with sqlite3.connect(ml.store.journal_path) as conn:
        conn.execute("INSERT INTO store_info VALUES ('model_pulled_at', '2026-01-01')")
    ml._tables = None
    exe2 = new_exe(ml, workflow)
    with exe2:
        with pytest.raises(UnknownAssetTableError, match="Imgae.*known asset tables: .*Execution_Asset"):
            exe2.asset_file_path("Imgae", "x")


def test_unknown_table_is_accepted_offline_before_any_model(ml, workflow):
    exe = new_exe(ml, workflow)
    with exe:
        exe.asset_file_path("Image", "cat.png").write_bytes(b"meow")
    report = exe.commit_output_assets()
    assert ml.lookup_asset(report.assets[0].asset_rid).asset_types == ["Image", "Output_File"]
    assert "Image" in ml.list_asset_tables()


@pytest.mark.parametrize("table, reason", [
    ("Execution", "table of the deriva-ml schema"),
    ("Workflow", "table of the deriva-ml schema"),
    ("Asset_Type", "table of the deriva-ml schema"),
    ("Execution_Asset_Execution", "association table of asset table 'Execution_Asset'"),
    ("File_Asset_Type", "association table of asset table 'File'"),
    ("ERMrest_RID_Lease", "ERMrest system table"),
])
def test_tables_known_not_to_be_asset_tables_are_refused_offline(ml, workflow, table, reason):
    """F16: deriva-ml 1.24 accepts any table; before any model is pulled we still know these are wrong."""
    before = journal_rows(ml, "SELECT name FROM asset_tables ORDER BY name")
    exe = new_exe(ml, workflow)
    with exe:
        with pytest.raises(UnknownAssetTableError, match=f"{table!r} is (an?|the) {reason}, not an asset table.*known asset tables: "):
            exe.asset_file_path(table, "x.bin")
    assert journal_rows(ml, "SELECT name FROM asset_tables ORDER BY name") == before
    assert table not in ml.list_asset_tables()


def test_bad_types_for_a_new_table_change_nothing(ml, workflow):
    terms = journal_rows(ml, "SELECT vocabulary, name FROM vocabulary_terms ORDER BY 1, 2")
    exe = new_exe(ml, workflow)
    with exe:
        with pytest.raises(UnknownTermError, match="'Bogus'") as err:
            exe.asset_file_path("Imgae", "x.bin", asset_types=["Bogus"])
        assert "Imgae" not in str(err.value)  # the table's term was not made on the way
        assert "Imgae" not in ml.list_asset_tables()
        assert journal_rows(ml, "SELECT vocabulary, name FROM vocabulary_terms ORDER BY 1, 2") == terms
        # the same call with good types records the table and its term once
        exe.asset_file_path("Imgae", "x.bin", asset_types=["Imgae", "Model_File"]).write_bytes(b"x")
    assert "Imgae" in ml.list_asset_tables()
    exe.commit_output_assets()


def test_terms_go_only_into_vocabularies(ml):
    with pytest.raises(NotFoundError, match="'Execution' is a table of the deriva-ml schema, not a vocabulary"):
        ml.add_term("Execution", "x", description="no")
    with pytest.raises(NotFoundError, match="'File' is an asset table, not a vocabulary"):
        ml.add_term("File", "x", description="no")
    assert ml.add_term("Diagnosis", "Healthy", description="a domain vocabulary, checked at sync").name == "Healthy"


def test_a_store_belongs_to_one_catalog(store_dir):
    with DerivaML("example.org", "1", working_dir=store_dir):
        pass
    with pytest.raises(StoreError, match=r"belongs to catalog '1' of its host, not '2'.*working_dir"):
        DerivaML("example.org", "2", working_dir=store_dir)
    with pytest.raises(StoreError, match=r"belongs to host 'example.org', not 'other.org'"):
        DerivaML("other.org", "1", working_dir=store_dir)
    with DerivaML("example.org", 1, working_dir=store_dir) as again:  # an int id is the same catalog
        assert again.catalog_id == "1"


def test_commit_inside_the_block_is_an_error(ml, workflow):
    exe = new_exe(ml, workflow)
    with exe:
        exe.asset_file_path("Execution_Asset", "x").write_bytes(b"x")
        with pytest.raises(ExecutionError, match="after the block"):
            exe.commit_output_assets()


def test_a_file_never_written_fails_the_commit_and_commits_nothing(ml, workflow):
    exe = new_exe(ml, workflow)
    with exe:
        exe.asset_file_path("Execution_Asset", "written.bin").write_bytes(b"ok")
        ghost = exe.asset_file_path("Execution_Asset", "never-written.bin")
    with pytest.raises(CommitError, match="never-written.bin.*unregister_asset"):
        exe.commit_output_assets()
    assert journal_rows(ml, "SELECT count(*) FROM assets") == [(0,)]
    assert exe.status is Status.Stopped
    exe.unregister_asset(ghost)
    assert exe.commit_output_assets().total_uploaded == 1


def test_commit_twice_is_a_noop_and_more_outputs_commit_additively(ml, workflow):
    exe = new_exe(ml, workflow)
    with exe:
        exe.asset_file_path("Execution_Asset", "a").write_bytes(b"a")
    assert exe.commit_output_assets().total_uploaded == 1
    before = journal_rows(ml, "SELECT count(*) FROM changes")
    assert exe.commit_output_assets().total_uploaded == 0
    assert journal_rows(ml, "SELECT count(*) FROM changes") == before
    exe.asset_file_path("Execution_Asset", "b").write_bytes(b"b")
    assert exe.commit_output_assets().total_uploaded == 1
    assert len(exe.list_assets("Output")) == 2


def test_same_bytes_and_name_from_two_executions_is_one_asset(ml, workflow):
    rids = []
    for _ in range(2):
        exe = new_exe(ml, workflow)
        with exe:
            exe.asset_file_path("Execution_Asset", "shared.bin").write_bytes(b"identical")
        rids.append(exe.commit_output_assets().assets[0].asset_rid)
    assert rids[0] == rids[1]
    assert len(ml.lookup_asset(rids[0]).list_executions("Output")) == 2
    assert journal_rows(ml, "SELECT count(*) FROM assets") == [(1,)]


def test_commit_reports_progress_through_a_callback(ml, workflow):
    exe = new_exe(ml, workflow)
    with exe:
        for i in range(3):
            exe.asset_file_path("Execution_Asset", f"f{i}").write_bytes(os.urandom(10))
    seen = []
    exe.commit_output_assets(progress_callback=seen.append)  # called with deriva-ml's UploadProgress
    steps = [(p.phase, p.bytes_completed, p.bytes_total) for p in seen]
    assert ("capture", 3, 3) in steps and steps[-1] == ("commit", 3, 3) and seen[-1].percent_complete == 100.0


def test_clean_folder_removes_staging_but_never_user_files(ml, workflow, make_file):
    src = make_file("keep.txt", b"mine")
    exe = new_exe(ml, workflow)
    with exe:
        exe.asset_file_path("Execution_Asset", src)
    exe.commit_output_assets()
    assert src.read_bytes() == b"mine"
    assert not (exe.working_dir / "assets").exists()


def test_dry_run_writes_nothing(ml, workflow):
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow), dry_run=True)
    assert exe.rid == "0000"
    with exe:
        exe.asset_file_path("Execution_Asset", "x").write_bytes(b"x")
    assert exe.commit_output_assets().total_uploaded == 0
    assert journal_rows(ml, "SELECT count(*) FROM executions") == [(0,)]


def test_resume_restores_pending_registrations(ml, workflow, store_dir):
    exe = new_exe(ml, workflow)
    with exe:
        exe.asset_file_path("Execution_Asset", "later.bin").write_bytes(b"later")
    rid = exe.rid
    with DerivaML("example.org", "1", working_dir=store_dir) as other:
        report = other.resume_execution(rid).commit_output_assets()
        assert [a.file_name for a in report.assets] == ["later.bin"]


def test_implementations_log_is_renamed_as_deriva_ml_does(ml, workflow):
    exe = new_exe(ml, workflow)
    with exe:
        p = exe.asset_file_path("Execution_Metadata", "_implementations.log", asset_types="Runtime_Env")
    assert p.name == "-implementations.log"


def test_store_location_defaults_and_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("SATCHEL_HOME", str(tmp_path / "home"))
    with DerivaML("host.example.org", 7) as ml:
        assert ml.working_dir == tmp_path / "home" / "host.example.org" / "7"
    with DerivaML("host.example.org", 7, working_dir=tmp_path / "elsewhere") as ml:
        assert ml.working_dir == tmp_path / "elsewhere"
    with pytest.raises(ValueError):
        DerivaML("../evil", 1)
    monkeypatch.delenv("SATCHEL_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    with DerivaML("host.example.org", "2") as ml:  # no SATCHEL_HOME: ~/.satchel
        assert ml.working_dir == tmp_path / "user" / ".satchel" / "host.example.org" / "2"


def test_a_non_utf8_file_name_is_a_clear_error(ml, workflow, tmp_path):
    raw = os.fsencode(tmp_path) + b"/caf\xe9.bin"
    with open(raw, "wb") as f:
        f.write(b"latin-1 name")
    exe = new_exe(ml, workflow)
    with exe:
        with pytest.raises(ValueError, match="not valid UTF-8.*rename_file"):
            exe.asset_file_path("Execution_Asset", os.fsdecode(raw))
        ok = exe.asset_file_path("Execution_Asset", os.fsdecode(raw), rename_file="cafe.bin")
    assert journal_rows(ml, "SELECT file_name FROM registrations") == [("cafe.bin",)]
    assert exe.commit_output_assets().assets[0] is ok


def test_a_directory_is_refused_at_registration(ml, workflow, tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    exe = new_exe(ml, workflow)
    with exe:
        with pytest.raises(ExecutionError, match=r"checkpoints is a directory; an asset is one file"):
            exe.asset_file_path("Execution_Asset", str(folder))
    assert journal_rows(ml, "SELECT count(*) FROM registrations") == [(0,)]

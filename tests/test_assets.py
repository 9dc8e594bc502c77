"""Downloads from the cache and the asset metadata API, offline."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path

import pytest

from satchel import (
    DerivaML,
    DestinationError,
    ExecutionConfiguration,
    ObjectMissingError,
    UnknownAssetTableError,
    UnknownRIDError,
    UnknownTermError,
)
from satchel.cache import objects as objects_mod


@pytest.fixture
def produced(ml: DerivaML, workflow):
    """An execution that produced two assets; returns (execution, {name: rid})."""
    ml.add_term("Asset_Type", "Model_Weights", description="weights")
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow))
    with exe:
        exe.asset_file_path("Execution_Asset", "model.bin", asset_types=["Model_File", "Model_Weights"]).write_bytes(
            os.urandom(5000)
        )
        exe.asset_file_path("Execution_Metadata", "log.txt", asset_types="Runtime_Env").write_text("log")
    report = exe.commit_output_assets()
    return exe, {a.file_name: a.asset_rid for a in report.assets}


def consumer(ml, workflow):
    return ml.create_execution(ExecutionConfiguration(workflow=workflow, description="reader"))


def test_download_records_input_link_and_tag_additively(ml, workflow, produced, tmp_path):
    _, rids = produced
    reader = consumer(ml, workflow)
    with reader:
        got = reader.download_asset(rids["model.bin"], tmp_path / "dl")
    assert got == tmp_path / "dl" / "model.bin" and got.asset_rid == rids["model.bin"]
    assert got.asset_types == ["Input_File", "Model_File", "Model_Weights", "Output_File"], "tags after the call"
    a = ml.lookup_asset(rids["model.bin"])
    assert {(e.execution_rid, e.asset_role) for e in a.executions} >= {(reader.rid, "Input")}
    assert got.read_bytes() == a.download(tmp_path / "again").read_bytes()


def test_download_without_update_catalog_records_nothing(ml, workflow, produced, tmp_path):
    _, rids = produced
    reader = consumer(ml, workflow)
    got = reader.download_asset(rids["log.txt"], tmp_path, update_catalog=False)
    assert got.read_text() == "log"
    assert "Input_File" not in ml.lookup_asset(rids["log.txt"]).asset_types
    assert reader.list_assets() == []


def test_redownload_of_present_bytes_is_a_true_noop(ml, workflow, produced, tmp_path, monkeypatch):
    _, rids = produced
    reader = consumer(ml, workflow)
    dest = tmp_path / "dl"
    first = reader.download_asset(rids["model.bin"], dest)
    inode = first.stat().st_ino
    exports, hashes = [], []
    real_export, real_hash = ml.store.cache.export, objects_mod._hash_fd
    monkeypatch.setattr(ml.store.cache, "export", lambda *a, **k: exports.append(a) or real_export(*a, **k))
    monkeypatch.setattr(objects_mod, "_hash_fd", lambda *a: hashes.append(a) or real_hash(*a))
    again = reader.download_asset(rids["model.bin"], dest)
    assert exports == [] and hashes == []
    assert again.stat().st_ino == inode
    assert len(reader.list_assets("Input")) == 1, "the Input link is recorded once"


def test_different_bytes_are_replaced_with_a_warning(ml, workflow, produced, tmp_path, caplog):
    _, rids = produced
    dest = tmp_path / "dl"
    dest.mkdir()
    (dest / "model.bin").write_bytes(b"something else")
    reader = consumer(ml, workflow)
    with caplog.at_level(logging.WARNING, logger="satchel"):
        got = reader.download_asset(rids["model.bin"], dest)
    assert got.stat().st_size == 5000
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert rids["model.bin"] in record.getMessage() and str(dest / "model.bin") in record.getMessage()


def test_missing_bytes_name_the_rid_and_the_fix(ml, workflow, tmp_path):
    with sqlite3.connect(ml.store.journal_path) as conn:  # a row a pull mirrored, whose bytes were never fetched
        conn.execute(
            "INSERT INTO assets (rid, remote_rid, asset_table, filename, length, md5, url, asset_metadata, created_at,"
            " origin, sync_state) VALUES ('1-ABCD', '1-ABCD', 'Execution_Asset', 'remote.bin', 3, ?, '/hatrac/x', '{}',"
            " '2026-01-01', 'remote', 'remote')",
            ("0" * 32,),
        )
    reader = consumer(ml, workflow)
    with pytest.raises(ObjectMissingError, match=r"1-ABCD.*satchel pull --asset 1-ABCD"):
        reader.download_asset("1-ABCD", tmp_path)
    assert reader.list_assets() == [], "a failed download records nothing"


def test_catalog_filenames_are_sanitised(ml, workflow, produced, tmp_path):
    _, rids = produced
    with sqlite3.connect(ml.store.journal_path) as conn:
        conn.execute("UPDATE assets SET filename='../../etc/passwd' WHERE rid=?", (rids["log.txt"],))
    got = ml.lookup_asset(rids["log.txt"]).download(tmp_path / "safe")
    assert got.parent == tmp_path / "safe" and "/" not in got.name and got.read_text() == "log"


def test_input_assets_of_the_configuration(ml, workflow, produced):
    _, rids = produced
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow, assets=[rids["model.bin"]]))
    (path,) = exe.asset_paths["Execution_Asset"]
    assert path.read_bytes() and path.parent.name == rids["model.bin"]
    assert [a.rid for a in exe.list_assets("Input")] == [rids["model.bin"]]


def test_input_asset_without_bytes_creates_nothing(ml, workflow):
    with sqlite3.connect(ml.store.journal_path) as conn:
        conn.execute(
            "INSERT INTO assets (rid, asset_table, filename, length, md5, url, asset_metadata, created_at, origin,"
            " sync_state) VALUES ('1-EEEE', 'File', 'x', 1, ?, '/hatrac/y', '{}', '2026', 'remote', 'remote')",
            ("1" * 32,),
        )
    with pytest.raises(ObjectMissingError):
        ml.create_execution(ExecutionConfiguration(workflow=workflow, assets=["1-EEEE"]))
    assert ml.list_executions() == []


def test_lookup_list_find(ml, produced):
    exe, rids = produced
    a = ml.lookup_asset(rids["model.bin"])
    assert (a["Filename"], a["Length"], a["RID"]) == ("model.bin", 5000, a.rid)
    assert a.execution_rid == exe.rid
    assert [x.filename for x in ml.list_assets("Execution_Asset")] == ["model.bin"]
    models = [x for x in ml.list_assets("Execution_Asset") if "Model_File" in x.asset_types]
    assert len(models) == 1
    assert {x.rid for x in ml.find_assets()} == set(rids.values())
    assert [x.rid for x in ml.find_assets(asset_type="Runtime_Env")] == [rids["log.txt"]]
    assert [x.rid for x in ml.find_assets("Execution_Metadata", "Model_File")] == []
    assert [e.asset_role for e in ml.list_asset_executions(rids["log.txt"], asset_role="Output")] == ["Output"]
    assert {x.rid for x in ml.list_execution_assets(exe.rid)} == set(rids.values())


def test_lookup_errors(ml, produced):
    exe, _ = produced
    with pytest.raises(UnknownRIDError, match="satchel pull"):
        ml.lookup_asset("9-ZZZZ")
    with pytest.raises(UnknownRIDError, match="is an execution, not an asset"):
        ml.lookup_asset(exe.rid)
    with pytest.raises(UnknownAssetTableError, match="known asset tables"):
        ml.list_assets("Nope")


def test_find_assets_pages_through_many(ml, workflow):
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow))
    with exe:
        for i in range(25):
            exe.asset_file_path("File", f"f{i}").write_bytes(str(i).encode())
    exe.commit_output_assets()
    assert len(list(ml.find_assets("File", page_size=7))) == 25


def test_update_asset_is_a_set_diff_in_one_transaction(ml, produced):
    _, rids = produced
    rid = rids["model.bin"]
    ml.add_term("Asset_Type", "Checked", description="reviewed")
    res = ml.update_asset(rid, asset_types=["Model_File", "Checked"], description="reviewed model")
    assert (res.added, res.removed, res.description_changed) == (["Checked"], ["Model_Weights"], True)
    a = ml.lookup_asset(rid)
    assert a.asset_types == ["Checked", "Model_File", "Output_File"], "directional tags are kept"
    assert a.description == "reviewed model"
    with sqlite3.connect(ml.store.journal_path) as conn:
        kinds = [k for (k,) in conn.execute(
            "SELECT kind FROM changes WHERE entity_kind='asset' AND kind IN ('tag_add','tag_remove','description')"
            " ORDER BY seq"
        )]
    assert kinds == ["tag_add", "tag_remove", "description"], "recorded as individual adds and removes"
    res = ml.update_asset(rid, asset_types=[])
    assert ml.lookup_asset(rid).asset_types == ["Output_File"]
    ml.update_asset(rid, asset_types=[], keep_directional=False)
    assert ml.lookup_asset(rid).asset_types == []


def test_update_asset_bad_input_changes_nothing(ml, produced):
    _, rids = produced
    before = ml.lookup_asset(rids["model.bin"])
    with pytest.raises(ValueError):
        ml.update_asset(rids["model.bin"])
    with pytest.raises(UnknownTermError):
        ml.update_asset(rids["model.bin"], asset_types=["Model_File", "Not_A_Term"], description="x")
    assert ml.lookup_asset(rids["model.bin"]) == before


def test_vocabulary_terms(ml):
    t = ml.add_term("Asset_Type", "Segmentation_Mask", description="Binary masks")
    assert (t.name, t.description, t.synced) == ("Segmentation_Mask", "Binary masks", False)
    assert ml.add_term("Asset_Type", "Segmentation_Mask") == t
    names = [x.name for x in ml.list_vocabulary_terms("Asset_Type")]
    assert "Segmentation_Mask" in names and "Output_File" in names
    assert ml.lookup_term("Asset_Role", "Input").synced


def test_asset_download_records_no_provenance(ml, produced, tmp_path):
    _, rids = produced
    path = ml.lookup_asset(rids["log.txt"]).download(str(tmp_path / "inspect"))
    assert isinstance(path, Path) and path.read_text() == "log"
    assert "Input_File" not in ml.lookup_asset(rids["log.txt"]).asset_types


def test_download_assets_in_a_batch(ml, workflow, tmp_path, monkeypatch):
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow))
    with exe:
        for i in range(20):
            exe.asset_file_path("File", f"f{i}.bin").write_bytes(os.urandom(100))
    rids = [a.asset_rid for a in exe.commit_output_assets().assets]
    reader = consumer(ml, workflow)
    got = reader.download_assets(rids, tmp_path / "all")
    assert [p.name for p in got] == [f"f{i}.bin" for i in range(20)]
    assert all("Input_File" in p.asset_types for p in got)
    assert len(reader.list_assets("Input")) == 20
    exports = []
    real_export = ml.store.cache.export
    monkeypatch.setattr(ml.store.cache, "export", lambda *a, **k: exports.append(a) or real_export(*a, **k))
    reader.download_assets(rids, tmp_path / "all")
    assert exports == []


def test_a_batch_in_a_fresh_process_trusts_only_unchanged_files(tmp_path, monkeypatch):
    """The batch asks the stat cache once for all files; a file changed since (same size) is still replaced."""
    store = tmp_path / "store"
    with DerivaML("example.org", "1", working_dir=store) as ml:
        ml.add_term("Workflow_Type", "Training", description="Model training")
        wf = ml.create_workflow("train.py", "Training")
        exe = ml.create_execution(ExecutionConfiguration(workflow=wf))
        with exe:
            for i in range(40):
                exe.asset_file_path("File", f"f{i}.bin").write_bytes(bytes([i]) * 100)
        rids = [a.asset_rid for a in exe.commit_output_assets().assets]
        reader = consumer(ml, wf)
        reader.download_assets(rids, tmp_path / "all")
        reader_rid = reader.execution_rid
    time.sleep(0.05)  # past the racy window: the stat entries of the placed files are trusted
    changed = tmp_path / "all" / "f7.bin"
    changed.write_bytes(b"x" * 100)  # same size, other bytes, new mtime
    with DerivaML("example.org", "1", working_dir=store) as ml:  # a fresh process's view: empty memo
        queries = []
        monkeypatch.setattr(ml.store.cache.index, "prefetch",
                            lambda stats, real_prefetch=ml.store.cache.index.prefetch: queries.append(len(stats))
                            or real_prefetch(stats))
        exports = []
        real_export = ml.store.cache.export
        monkeypatch.setattr(ml.store.cache, "export", lambda *a, **k: exports.append(a[1]) or real_export(*a, **k))
        ml.resume_execution(reader_rid).download_assets(rids, tmp_path / "all")
        assert queries == [40]
        assert [Path(e).name for e in exports] == ["f7.bin"]
    assert changed.read_bytes() == bytes([7]) * 100


def test_a_batch_with_an_unknown_rid_writes_nothing(ml, workflow, produced, tmp_path):
    _, rids = produced
    reader = consumer(ml, workflow)
    with pytest.raises(UnknownRIDError, match="9-NOPE"):
        reader.download_assets([rids["model.bin"], "9-NOPE"], tmp_path / "none")
    assert not (tmp_path / "none").exists() and reader.list_assets() == []


def test_a_destination_that_is_a_file_is_a_clear_error_and_records_nothing(ml, workflow, produced, tmp_path):
    _, rids = produced
    reader = consumer(ml, workflow)
    in_the_way = tmp_path / "results"
    in_the_way.write_text("a file where the directory should be")
    with pytest.raises(DestinationError, match=r"cannot use .*results as the download directory.*pass a directory"):
        reader.download_asset(rids["model.bin"], in_the_way)
    with pytest.raises(DestinationError):
        reader.download_assets([rids["model.bin"], rids["log.txt"]], in_the_way / "sub")
    assert reader.list_assets() == [] and in_the_way.read_text().startswith("a file")

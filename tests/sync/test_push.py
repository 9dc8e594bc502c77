"""Push against the emulator over real loopback HTTP: what lands, exactly once, and what fails alone."""

from __future__ import annotations

import hashlib
import threading

import pytest

from satchel import AuthenticationError, ExecutionConfiguration, StoreBusyError
from satchel.remote import Remote
from satchel.remote.hatrac import md5_base64
from satchel.sync.lock import sync_lock

from syncsupport import catalog_rows, make_remote, random_bytes, record_run
from workflows import config


def test_push_lands_rows_bytes_tags_links_and_status(new_store, remote, deriva_server, tmp_path):
    ml = new_store()
    ml.add_term("Asset_Type", "Weights", description="model weights")
    data = random_bytes(5000, 1)
    exe, rids = record_run(ml, {
        "model.bin": ("Model", data, ["Weights", "Model_File"]),
        "cat.png": ("Image", b"png bytes", []),
    })
    assert ml.sync_plan().assets == 2
    result = ml.push(remote=remote)
    assert result.ok, result.failed
    assert result.done["assets"] == 2 and result.done["objects"] == 2 and result.bytes_sent == 5000 + 9

    (model,) = catalog_rows(remote, "Model")
    assert model["URL"] == f"/hatrac/Model/{hashlib.md5(data).hexdigest()}.model.bin"
    assert (model["Filename"], model["Length"], model["MD5"]) == ("model.bin", 5000, hashlib.md5(data).hexdigest())
    tags = {r["Asset_Type"] for r in catalog_rows(remote, "Model_Asset_Type") if r["Model"] == model["RID"]}
    assert tags == {"Weights", "Model_File", "Output_File"}
    (link,) = catalog_rows(remote, "Model_Execution")
    (execution,) = remote.catalog.get("deriva-ml", "Execution")
    assert (link["Model"], link["Execution"], link["Asset_Role"]) == (model["RID"], execution["RID"], "Output")
    assert execution["Status"] == "Uploaded" and exe.status.value == "Uploaded"
    (term,) = remote.catalog.lookup("deriva-ml", "Asset_Type", "Name", ["Weights"])
    assert term["Description"] == "model weights"

    got = tmp_path / "got.bin"
    remote.hatrac.download(model["URL"], got, md5=hashlib.md5(data).hexdigest())
    assert got.read_bytes() == data

    # every RID the user saw still resolves, and now names the catalog's row
    asset = ml.lookup_asset(rids["model.bin"])
    assert asset.rid == model["RID"] and asset.synced
    assert ml.lookup_asset(model["RID"]).filename == "model.bin"
    assert ml.resume_execution(exe.rid).rid == exe.rid


def test_a_second_push_sends_nothing(new_store, remote, deriva_server):
    ml = new_store()
    record_run(ml, {"a.bin": ("Model", b"a", [])})
    assert ml.push(remote=remote).ok
    deriva_server.stats.reset()
    again = ml.push(remote=remote)
    assert again.ok and not again.done and again.bytes_sent == 0
    assert ml.sync_plan().empty
    writes = {k: v for k, v in deriva_server.stats.snapshot().items() if k[0] in ("POST", "PUT", "DELETE")}
    assert writes == {}, writes


def test_inputs_tag_removals_and_descriptions_follow(new_store, remote, deriva_server):
    ml = new_store()
    ml.add_term("Asset_Type", "Draft", description="not final")
    _, rids = record_run(ml, {"m.bin": ("Model", b"model", ["Draft", "Model_File"])})
    assert ml.push(remote=remote).ok
    model_rid = ml.lookup_asset(rids["m.bin"]).rid
    reader, _ = record_run(ml, {}, inputs=[model_rid])
    ml.update_asset(model_rid, asset_types=["Model_File"], description="final model")
    # someone adds a tag on the server meanwhile: set semantics keep it
    remote.catalog.insert("test-schema", "Model_Asset_Type", [{"Model": model_rid, "Asset_Type": "Notebook_Output"}])
    result = ml.push(remote=remote)
    assert result.ok, result.failed
    tags = {r["Asset_Type"] for r in catalog_rows(remote, "Model_Asset_Type")}
    assert tags == {"Model_File", "Output_File", "Input_File", "Notebook_Output"}
    roles = sorted(r["Asset_Role"] for r in catalog_rows(remote, "Model_Execution"))
    assert roles == ["Input", "Output"]
    (row,) = catalog_rows(remote, "Model")
    assert row["Description"] == "final model"


def test_same_bytes_from_two_stores_become_one_row(new_store, remote, deriva_server):
    first, second = new_store("one"), new_store("two")
    record_run(first, {"shared.bin": ("Model", b"identical bytes", [])})
    _, rids = record_run(second, {"shared.bin": ("Model", b"identical bytes", [])})
    assert first.push(remote=remote).ok
    deriva_server.stats.reset()
    seen = len(deriva_server.log)
    result = second.push(remote=remote)
    assert result.ok and result.skipped["objects"] == 1 and result.skipped["assets"] == 1
    # the catalog names the object's URL already, so it is HEADed, found with our MD5, and not sent
    assert [(m, s) for m, t, s in list(deriva_server.log)[seen:] if t.startswith("/hatrac/")] == [("HEAD", 200)]
    assert result.bytes_sent == 0
    (row,) = catalog_rows(remote, "Model")
    assert len(remote.hatrac.versions(row["URL"])) == 1, "no second object version"
    assert second.lookup_asset(rids["shared.bin"]).rid == row["RID"], "adopted the existing row"
    assert len(catalog_rows(remote, "Model_Execution")) == 2


def test_small_bytes_already_stored_without_a_row_make_no_second_version(new_store, remote, deriva_server, tmp_path):
    """Another push stored the object but died before its row: no row names the URL, so the small object is
    PUT without a HEAD; If-None-Match makes that a 412, and a HEAD finds our bytes (sent twice, stored once)."""
    ml = new_store()
    _, rids = record_run(ml, {"orphan.bin": ("Model", b"bytes of a dead push", [])})
    url = ml.lookup_asset(rids["orphan.bin"]).url
    (tmp_path / "orphan.bin").write_bytes(b"bytes of a dead push")
    remote.hatrac.create(url, tmp_path / "orphan.bin", md5=md5_base64(hashlib.md5(b"bytes of a dead push").hexdigest()))
    seen = len(deriva_server.log)
    result = ml.push(remote=remote)
    assert result.ok and result.skipped["objects"] == 1 and result.done["assets"] == 1
    assert [(m, s) for m, t, s in list(deriva_server.log)[seen:] if t.startswith("/hatrac/")] == [("PUT", 412),
                                                                                                 ("HEAD", 200)]
    assert len(remote.hatrac.versions(url)) == 1


def test_a_refused_row_fails_alone_and_retry_failed_tries_again(new_store, remote, deriva_server):
    ml = new_store()
    exe = ml.create_execution(config(ml))
    with exe:
        exe.asset_file_path("Model", "ok.bin").write_bytes(b"fine")
        exe.asset_file_path("Model", "meta.bin", metadata={"Not_A_Column": 1}).write_bytes(b"bad metadata")
        exe.asset_file_path("Imgae", "typo.png").write_bytes(b"unknown table")
    exe.commit_output_assets()
    result = ml.push(remote=remote)
    reasons = {f.rid: f.reason for f in result.failed}
    assert len(reasons) == 2
    assert any("Imgae" in r and "not in the catalog" in r for r in reasons.values())
    assert any("Not_A_Column" in r for r in reasons.values())
    assert [r["Filename"] for r in catalog_rows(remote, "Model")] == ["ok.bin"]
    assert ml.sync_plan().failed == 2
    assert ml.status()["failed_assets"] == 2
    # without --retry-failed the failures stay put; with it they are tried (and fail) again
    assert not ml.push(remote=remote).failed
    assert len(ml.push(remote=remote, retry_failed=True).failed) == 2


def test_executions_created_after_a_push_get_leased_rids(new_store, remote):
    ml = new_store()
    record_run(ml, {"a.bin": ("Model", b"a", [])})
    assert ml.push(remote=remote).done["rid_pool"] > 0
    exe, rids = record_run(ml, {"b.bin": ("Model", b"b", [])})  # offline again
    assert not exe.rid.startswith("L_") and not rids["b.bin"].startswith("L_")
    assert ml.push(remote=remote).ok
    assert ml.lookup_asset(rids["b.bin"]).rid == rids["b.bin"], "the leased RID is the final RID"
    assert {r["RID"] for r in remote.catalog.get("deriva-ml", "Execution")} >= {exe.rid}


def test_push_without_credentials_is_a_clear_error(new_store, deriva_server):
    ml = new_store()
    record_run(ml, {"a.bin": ("Model", b"a", [])})
    with Remote(deriva_server.url, "1", credential=None) as anonymous:
        with pytest.raises(AuthenticationError, match="no credentials.*SATCHEL_TOKEN"):
            ml.push(remote=anonymous)
    with make_remote(deriva_server.url, "not-a-valid-token") as bad:
        with pytest.raises(AuthenticationError):
            ml.push(remote=bad)
    assert ml.sync_plan().assets == 1, "nothing was marked synced"


def test_one_sync_at_a_time(new_store, remote):
    ml = new_store()
    held = threading.Event()
    release = threading.Event()

    def hold():
        with sync_lock(ml.store.root):
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(10)
    try:
        with pytest.raises(StoreBusyError, match="another sync"):
            ml.push(remote=remote)
    finally:
        release.set()
        t.join()
    assert ml.push(remote=remote).ok


def test_the_ml_file_table_is_used_though_www_has_a_file_table_too(new_store, remote, tmp_path):
    """Every deriva-ml catalog has deriva-ml:File and WWW:File (both asset-shaped); File means the ML one."""
    assert {t.schema for t in remote.catalog.model().tables() if t.name == "File"} == {"deriva-ml", "WWW"}
    ml = new_store()
    _, rids = record_run(ml, {"notes.txt": ("File", b"field notes", ["File"])})
    result = ml.push(remote=remote)
    assert result.ok, result.failed
    (row,) = catalog_rows(remote, "File", schema="deriva-ml")
    assert row["Filename"] == "notes.txt" and ml.lookup_asset(rids["notes.txt"]).rid == row["RID"]
    assert catalog_rows(remote, "File", schema="WWW") == []
    tags = {r["Asset_Type"] for r in catalog_rows(remote, "File_Asset_Type", schema="deriva-ml")}
    assert tags == {"File", "Output_File"}

    reader = new_store("reader")
    assert reader.pull(remote=remote).ok
    (mirrored,) = reader.list_assets("File")
    assert mirrored.rid == row["RID"] and mirrored.filename == "notes.txt"
    with reader.store.engine.connect() as conn:
        (schema,) = conn.exec_driver_sql("SELECT schema_name FROM asset_tables WHERE name = 'File'").one()
    assert schema == "deriva-ml"


def test_a_refused_vocabulary_term_fails_alone_and_the_rest_lands(new_store, remote, deriva_server):
    """A curator-only vocabulary (403 on its inserts) fails the new term and the tags using it, nothing else."""
    ml = new_store()
    ml.add_term("Asset_Type", "Curated_Only", description="curators add these")
    exe, rids = record_run(ml, {"m.bin": ("Model", b"model", ["Curated_Only", "Model_File"]),
                                "i.png": ("Image", b"image", [])})
    deriva_server.inject(403, "Access forbidden.", method="POST", path_contains="/entity/deriva-ml:Asset_Type", times=10)
    result = ml.push(remote=remote)
    assert not result.ok
    failed = {(f.step, f.rid): f.reason for f in result.failed}
    assert "Access forbidden" in failed[("terms", "Asset_Type:Curated_Only")]
    (model,) = catalog_rows(remote, "Model")
    assert "could not be added" in failed[("tags", f"{model['RID']}:Curated_Only")]
    assert len(catalog_rows(remote, "Image")) == 1
    assert {r["Asset_Type"] for r in catalog_rows(remote, "Model_Asset_Type")} == {"Model_File", "Output_File"}
    assert len(catalog_rows(remote, "Model_Execution")) == 1 and len(catalog_rows(remote, "Image_Execution")) == 1
    status = ml.status()
    assert {"table": "Asset_Type", "RID": "Curated_Only", "reason": failed[("terms", "Asset_Type:Curated_Only")]} in [
        {k: f[k] for k in ("table", "RID", "reason")} for f in status["failures"]]
    assert status["would_send"]["tags"] == 1  # the refused tag is still to send
    # uploaded into the store; the catalog says Pending_Upload while not all of it is there
    assert ml.resume_execution(exe.rid).status.value == "Uploaded"
    (row,) = remote.catalog.get("deriva-ml", "Execution")
    assert row["Status"] == "Pending_Upload"

    deriva_server.clear_faults()
    again = ml.push(remote=remote, retry_failed=True)
    assert again.ok, again.failed
    assert {r["Asset_Type"] for r in catalog_rows(remote, "Model_Asset_Type")} == {
        "Curated_Only", "Model_File", "Output_File"}
    assert ml.resume_execution(exe.rid).status.value == "Uploaded"
    (row,) = remote.catalog.get("deriva-ml", "Execution")
    assert row["Status"] == "Uploaded", "once every output is in the catalog"
    assert ml.sync_plan().empty


def test_a_refused_link_is_marked_failed_with_the_reason(new_store, remote, deriva_server):
    ml = new_store()
    record_run(ml, {"m.bin": ("Model", b"model", [])})
    deriva_server.inject(409, "Request conflicts with state of server. Detail: violates foreign key constraint",
                         method="POST", path_contains="Model_Execution", times=5)
    result = ml.push(remote=remote)
    assert [f.step for f in result.failed] == ["links"]
    assert catalog_rows(remote, "Model_Execution") == [] and len(catalog_rows(remote, "Model")) == 1
    status = ml.status()
    assert any(f["table"] == "Model_Execution" and "foreign key" in f["reason"] for f in status["failures"])
    assert status["would_send"]["failed"] == 1 and ml.sync_plan().links == 0
    deriva_server.clear_faults()
    assert ml.push(remote=remote).ok  # failed rows wait for --retry-failed
    assert catalog_rows(remote, "Model_Execution") == []
    assert ml.push(remote=remote, retry_failed=True).ok
    assert len(catalog_rows(remote, "Model_Execution")) == 1


def test_progress_reaches_the_callback_step_by_step(new_store, remote):
    ml = new_store()
    big = random_bytes(100_000, 3)
    record_run(ml, {"big.bin": ("Model", big, []), "a.png": ("Image", b"a", []), "b.png": ("Image", b"bb", [])})
    events = []
    result = ml.push(remote=remote, progress=events.append, chunked_threshold=32 * 1024, chunk_size=32 * 1024)
    assert result.ok
    steps = list(dict.fromkeys(e.step for e in events if e.unit == "items"))
    assert steps == ["terms", "workflows", "executions", "objects", "assets", "tags", "links"]
    last = {e.step: e for e in events}
    assert (last["objects"].done, last["objects"].total) == (3, 3)
    assert (last["assets"].done, last["assets"].total) == (3, 3)
    sent = [e for e in events if e.unit == "bytes"]
    assert [e.done for e in sent] == sorted(e.done for e in sent), "byte counts only grow"
    assert sent[-1].done == sent[-1].total == len(big) + 3 == result.bytes_sent
    assert len(sent) >= 4, "the chunked file reports each chunk"


def test_a_table_known_from_the_model_takes_its_own_tag_after_a_push(new_store, remote):
    """A push records the catalog's model; registering into a model table then still defaults to its own tag."""
    ml = new_store()
    record_run(ml, {"m.bin": ("Model", b"first", [])})
    assert ml.push(remote=remote).ok  # no pull: the local Asset_Type has no 'Image' term
    assert "Image" not in {t.name for t in ml.list_vocabulary_terms("Asset_Type")}
    exe = ml.create_execution(ExecutionConfiguration(workflow=ml.create_workflow("t.py", "Training")))
    with exe:
        exe.asset_file_path("Image", "cat.png").write_bytes(b"meow")  # types default to the table's own
    (cat,) = exe.commit_output_assets().assets
    assert ml.lookup_asset(cat.asset_rid).asset_types == ["Image", "Output_File"]
    assert ml.push(remote=remote).ok
    (row,) = catalog_rows(remote, "Image")
    assert {r["Asset_Type"] for r in catalog_rows(remote, "Image_Asset_Type")} == {"Image", "Output_File"}


def test_a_skipped_insert_whose_answer_was_lost_is_adopted(new_store, remote, deriva_server, fault_proxy):
    """ERMrest consumes a lease even when onconflict=skip drops the row; the retry after a lost answer then
    gets 403. The row the catalog already has under the same URL is ours to adopt, not a failure."""
    there = new_store("there")
    record_run(there, {"same.bin": ("Model", b"identical bytes", [])})
    assert there.push(remote=remote).ok
    here = new_store("here")
    _, rids = record_run(here, {"same.bin": ("Model", b"identical bytes", [])})
    fault_proxy.lose_response(method="POST", path_contains=":Model?")
    with make_remote(fault_proxy.url, deriva_server.token) as faulty:
        result = here.push(remote=faulty)
    assert fault_proxy.pending() == 0
    assert result.ok, result.failed
    (row,) = catalog_rows(remote, "Model")
    assert here.lookup_asset(rids["same.bin"]).rid == row["RID"]


def _run_of(ml, name: str, wf_type: str):
    exe = ml.create_execution(ExecutionConfiguration(
        workflow=ml.create_workflow(f"{name}.py", wf_type, checksum=f"sha-{name}"), description=name))
    with exe:
        exe.asset_file_path("Image", f"{name}.png").write_bytes(name.encode())
    exe.commit_output_assets()
    return exe


def test_one_refused_workflow_type_fails_its_workflow_alone(new_store, remote, deriva_server):
    ml = new_store()
    ml.add_term("Workflow_Type", "Training", description="training")
    _run_of(ml, "first", "Training")
    assert ml.push(remote=remote).ok  # 'Training' is in the catalog now
    ml.add_term("Workflow_Type", "Curated", description="curators only")
    _run_of(ml, "good", "Training")
    bad = _run_of(ml, "bad", "Curated")
    # the new term is refused, so the catalog refuses the bad workflow's type row (foreign key) ...
    deriva_server.inject(403, "Access forbidden.", method="POST", times=10, path_contains="/entity/deriva-ml:Workflow_Type")
    result = ml.push(remote=remote)
    deriva_server.clear_faults()
    failed = {(f.step, f.rid) for f in result.failed if f.step == "workflows"}
    assert len(failed) == 1, result.failed
    # ... and the good one, sent in the same batch, still goes in with its execution
    executions = {e["Description"] for e in remote.catalog.get("deriva-ml", "Execution")}
    assert executions == {"first", "good"}
    assert ml.push(remote=remote, retry_failed=True).ok
    assert {e["Description"] for e in remote.catalog.get("deriva-ml", "Execution")} == {"first", "good", "bad"}
    assert ml.resume_execution(bad.rid).status.value == "Uploaded"


def test_a_workflow_is_its_checksum_when_it_has_one(new_store, remote):
    """As find_workflow matches locally: by checksum when there is one, by URL only when there is none."""
    first = new_store("first")
    first.add_term("Workflow_Type", "Training", description="training")
    first.create_execution(ExecutionConfiguration(workflow=first.create_workflow(
        "train.py", "Training", url="https://git.example.org/train.py", checksum="sha-v1")))
    assert first.push(remote=remote).ok
    later = new_store("later")  # the same script, edited: same URL, another checksum
    later.add_term("Workflow_Type", "Training", description="training")
    later.create_execution(ExecutionConfiguration(workflow=later.create_workflow(
        "train.py", "Training", url="https://git.example.org/train.py", checksum="sha-v2")))
    assert later.push(remote=remote).ok
    no_checksum = new_store("nochecksum")
    no_checksum.add_term("Workflow_Type", "Training", description="training")
    no_checksum.create_execution(ExecutionConfiguration(workflow=no_checksum.create_workflow(
        "train.py", "Training", url="https://git.example.org/train.py")))
    result = no_checksum.push(remote=remote)
    assert result.ok and result.skipped["workflows"] == 1, "adopted by URL"
    rows = remote.catalog.get("deriva-ml", "Workflow")
    assert sorted(w["Checksum"] for w in rows) == ["sha-v1", "sha-v2"]
    executions = remote.catalog.get("deriva-ml", "Execution")
    assert len(executions) == 3 and len({e["Workflow"] for e in executions}) == 2

"""Push against the emulator over real loopback HTTP: what lands, exactly once, and what fails alone."""

from __future__ import annotations

import hashlib
import threading

import pytest

from satchel import AuthenticationError, StoreBusyError
from satchel.remote import Remote
from satchel.sync.lock import sync_lock

from syncsupport import catalog_rows, make_remote, random_bytes, record_run


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
    result = second.push(remote=remote)
    assert result.ok and result.skipped["objects"] == 1 and result.skipped["assets"] == 1
    assert deriva_server.stats.requests("PUT", "hatrac.object") == 0, "no second object version"
    (row,) = catalog_rows(remote, "Model")
    assert second.lookup_asset(rids["shared.bin"]).rid == row["RID"], "adopted the existing row"
    assert len(catalog_rows(remote, "Model_Execution")) == 2


def test_a_refused_row_fails_alone_and_retry_failed_tries_again(new_store, remote, deriva_server):
    ml = new_store()
    exe = ml.create_execution()
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

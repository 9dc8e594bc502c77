"""gc and the server deleting assets: bytes in a Deleted conflict stay, pins never block a pull's sweep."""

from __future__ import annotations

from syncsupport import random_bytes, record_run


def _delete_asset_everywhere(remote, table, rid):
    remote.catalog.delete("test-schema", f"{table}_Asset_Type", f"{table}={rid}")
    remote.catalog.delete("test-schema", f"{table}_Execution", f"{table}={rid}")
    remote.catalog.delete("test-schema", table, f"RID={rid}")


def test_gc_keeps_the_only_copy_of_an_asset_the_server_deleted(new_store, remote):
    ml = new_store("here")
    _, rids = record_run(ml, {"model.pt": ("Model", random_bytes(3000, 7), ["Model_File"])})
    assert ml.push(remote=remote).ok
    _delete_asset_everywhere(remote, "Model", ml.lookup_asset(rids["model.pt"]).rid)
    assert ml.pull(remote=remote).pulled["conflicts"] == 1
    report = ml.gc()
    assert report.removed_objects == 0 and report.kept["unsynced"]["objects"] == 1
    ml.resolve(rids["model.pt"], keep="local")  # sends it again: its bytes are still here
    assert ml.push(remote=remote).ok


def test_a_pinned_asset_deleted_on_the_server_is_forgotten_by_pull(new_store, remote):
    other = new_store("other")
    _, rids = record_run(other, {"w.bin": ("Model", random_bytes(2000, 2), ["Model_File"])})
    assert other.push(remote=remote).ok
    rid = other.lookup_asset(rids["w.bin"]).rid
    ml = new_store("here")
    assert ml.pull(remote=remote, assets=[rid]).ok
    assert ml.pin_assets([rid]) == 1
    _delete_asset_everywhere(remote, "Model", rid)
    result = ml.pull(remote=remote)
    assert result.ok, result.failed
    assert ml.storage_summary()["pinned_assets"] == 0

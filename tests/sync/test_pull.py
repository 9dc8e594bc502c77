"""Pull: another machine's work becomes visible offline; bytes prefetched; tags merge as sets; conflicts wait."""

from __future__ import annotations

import hashlib

import pytest
from syncsupport import catalog_rows, random_bytes, record_run

from satchel import ObjectMissingError, UnknownAssetTableError, UnknownRIDError, sync
from workflows import config


@pytest.fixture
def other_machine_pushed(new_store, remote):
    """Work pushed by another store; returns its RIDs by file name (server RIDs)."""
    other = new_store("other")
    other.add_term("Asset_Type", "Mask", description="segmentation masks")
    _, rids = record_run(other, {
        "mask.png": ("Image", random_bytes(700, 1), ["Mask"]),
        "weights.bin": ("Model", random_bytes(2000, 2), ["Model_File"]),
    })
    assert other.push(remote=remote).ok
    return {name: other.lookup_asset(rid).rid for name, rid in rids.items()}


def test_pull_mirrors_metadata_for_offline_lookups(new_store, remote, other_machine_pushed):
    ml = new_store("here")
    result = ml.pull(remote=remote)
    assert result.ok and result.pulled["assets"] == 2
    mask = ml.lookup_asset(other_machine_pushed["mask.png"])
    assert mask.asset_table == "Image" and mask.length == 700 and mask.synced
    assert mask.asset_types == ["Mask", "Output_File"]
    assert [e.asset_role for e in mask.executions] == ["Output"]
    assert [a.rid for a in ml.find_assets(asset_type="Mask")] == [mask.rid]
    assert {a.filename for a in ml.list_assets("Model")} == {"weights.bin"}
    # tables and terms are now checked offline against the catalog
    assert "Mask" in {t.name for t in ml.list_vocabulary_terms("Asset_Type")}
    exe = ml.create_execution(config(ml))
    with exe:
        with pytest.raises(UnknownAssetTableError, match="Imgae.*known asset tables"):
            exe.asset_file_path("Imgae", "x.png")
        exe.asset_file_path("Image", "mine.png", asset_types=["Mask"]).write_bytes(b"mine")
    exe.commit_output_assets()
    # nothing to send for what was pulled; our own work is what waits
    assert ml.sync_plan().assets == 1


def test_a_second_pull_reads_only_what_changed(new_store, remote, deriva_server, other_machine_pushed):
    ml = new_store("here")
    ml.pull(remote=remote)
    deriva_server.stats.reset()
    again = ml.pull(remote=remote)
    assert again.pulled["assets"] <= 2, "only the overlap window is read again"
    assert not {k for k in deriva_server.stats.snapshot() if k[0] != "GET"}


def test_prefetch_then_download_offline_and_no_refetch(new_store, remote, deriva_server, other_machine_pushed, tmp_path):
    ml = new_store("here")
    ml.pull(remote=remote)
    rid = other_machine_pushed["weights.bin"]
    reader = ml.create_execution(config(ml))
    with pytest.raises(ObjectMissingError, match=f"satchel pull --asset {rid}"):
        reader.download_asset(rid, tmp_path / "in")
    result = ml.pull(remote=remote, assets=[rid])
    assert result.done["bytes"] == 1 and result.bytes_received == 2000
    got = reader.download_asset(rid, tmp_path / "in")
    assert hashlib.md5(got.read_bytes()).hexdigest() == ml.lookup_asset(rid).md5
    deriva_server.stats.reset()
    again = ml.pull(remote=remote, assets=[rid], metadata=False)
    assert again.skipped["bytes"] == 1 and deriva_server.stats.requests("GET", "hatrac.object") == 0
    # the Input link reaches the catalog at the next push
    assert ml.push(remote=remote).ok
    roles = sorted(r["Asset_Role"] for r in catalog_rows(remote, "Model_Execution"))
    assert roles == ["Input", "Output"]


def test_prefetch_by_table_and_execution(new_store, remote, other_machine_pushed):
    ml = new_store("here")
    ml.pull(remote=remote)
    assert ml.pull(remote=remote, tables=["Image"], metadata=False).done["bytes"] == 1
    producer = ml.lookup_asset(other_machine_pushed["weights.bin"]).execution_rid
    assert ml.pull(remote=remote, executions=[producer], metadata=False).done["bytes"] == 1


def test_tags_merge_as_sets(new_store, remote, other_machine_pushed):
    ml = new_store("here")
    ml.pull(remote=remote)
    rid = other_machine_pushed["mask.png"]
    ml.add_term("Asset_Type", "Reviewed", description="reviewed")
    ml.update_asset(rid, asset_types=["Reviewed"])  # here: remove Mask, add Reviewed
    remote.catalog.insert("test-schema", "Image_Asset_Type", [{"Image": rid, "Asset_Type": "Notebook_Output"}])
    result = ml.sync(remote=remote)  # there: someone added Notebook_Output meanwhile
    assert result.ok, result.failed
    remote_tags = {r["Asset_Type"] for r in catalog_rows(remote, "Image_Asset_Type")}
    assert remote_tags == {"Reviewed", "Output_File", "Notebook_Output"}
    assert set(ml.lookup_asset(rid).asset_types) == remote_tags


def test_description_changed_on_both_sides_is_a_conflict(new_store, remote, other_machine_pushed):
    ml = new_store("here")
    ml.pull(remote=remote)
    rid = other_machine_pushed["weights.bin"]
    ml.update_asset(rid, description="ours")
    remote.catalog.update("test-schema", "Model", [{"RID": rid, "Description": "theirs"}])
    result = ml.sync(remote=remote)
    assert any("conflict" in f.reason for f in result.failed)
    (conflict,) = ml.status()["conflicts"]
    assert (conflict["RID"], conflict["local"], conflict["remote"]) == (rid, "ours", "theirs")
    assert catalog_rows(remote, "Model")[0]["Description"] == "theirs", "nothing silently overwritten"
    assert ml.lookup_asset(rid).description == "ours"
    ml.resolve(rid, keep="local")
    assert ml.sync(remote=remote).ok
    assert catalog_rows(remote, "Model")[0]["Description"] == "ours"
    assert ml.status()["conflicts"] == []


def test_keep_remote_takes_theirs(new_store, remote, other_machine_pushed):
    ml = new_store("here")
    ml.pull(remote=remote)
    rid = other_machine_pushed["weights.bin"]
    ml.update_asset(rid, description="ours")
    remote.catalog.update("test-schema", "Model", [{"RID": rid, "Description": "theirs"}])
    ml.pull(remote=remote)
    assert len(ml.status()["conflicts"]) == 1
    ml.resolve(rid, keep="remote")
    assert ml.lookup_asset(rid).description == "theirs"
    assert ml.sync(remote=remote).ok and ml.sync_plan().descriptions == 0


def test_a_remote_only_description_change_is_taken(new_store, remote, other_machine_pushed):
    ml = new_store("here")
    ml.pull(remote=remote)
    rid = other_machine_pushed["mask.png"]
    remote.catalog.update("test-schema", "Image", [{"RID": rid, "Description": "annotated upstream"}])
    ml.pull(remote=remote)
    assert ml.lookup_asset(rid).description == "annotated upstream"


def test_same_bytes_pushed_elsewhere_first_is_adopted_by_pull(new_store, remote, other_machine_pushed):
    ml = new_store("here")
    _, rids = record_run(ml, {"weights.bin": ("Model", random_bytes(2000, 2), ["Model_File"])})
    ml.pull(remote=remote)
    assert ml.lookup_asset(rids["weights.bin"]).rid == other_machine_pushed["weights.bin"]
    assert ml.push(remote=remote).ok
    assert len(catalog_rows(remote, "Model")) == 1


# --- deletions on the server: no RMT shows them; a count check and a key sweep do ---------------------------


def _delete_asset_everywhere(remote, table: str, rid: str) -> None:
    """What a curator does on the server: the association rows, then the asset row."""
    remote.catalog.delete("test-schema", f"{table}_Asset_Type", f"{table}={rid}")
    remote.catalog.delete("test-schema", f"{table}_Execution", f"{table}={rid}")
    remote.catalog.delete("test-schema", table, f"RID={rid}")


def test_a_tag_removed_on_the_server_is_removed_here(new_store, remote, other_machine_pushed):
    ml = new_store("here")
    ml.pull(remote=remote)
    rid = other_machine_pushed["mask.png"]
    ml.add_term("Asset_Type", "Reviewed", description="reviewed")
    ml.update_asset(rid, asset_types=["Mask", "Output_File", "Reviewed"])  # here: a pending addition
    remote.catalog.delete("test-schema", "Image_Asset_Type", f"Image={rid}", "Asset_Type=Mask")  # there: a removal
    result = ml.pull(remote=remote)
    assert result.pulled["tags_removed"] == 1
    assert set(ml.lookup_asset(rid).asset_types) == {"Output_File", "Reviewed"}
    assert ml.sync(remote=remote).ok
    remote_tags = {r["Asset_Type"] for r in catalog_rows(remote, "Image_Asset_Type")}
    assert remote_tags == {"Output_File", "Reviewed"} == set(ml.lookup_asset(rid).asset_types)


def test_a_link_removed_on_the_server_is_removed_here(new_store, remote, other_machine_pushed):
    ml = new_store("here")
    ml.pull(remote=remote)
    rid = other_machine_pushed["weights.bin"]
    assert len(ml.lookup_asset(rid).executions) == 1
    remote.catalog.delete("test-schema", "Model_Execution", f"Model={rid}")
    assert ml.pull(remote=remote).pulled["links_removed"] == 1
    assert ml.lookup_asset(rid).executions == []


def test_an_unchanged_catalog_costs_one_count_per_table(new_store, remote, deriva_server, other_machine_pushed):
    ml = new_store("here")
    ml.pull(remote=remote)
    deriva_server.stats.reset()
    result = ml.pull(remote=remote)
    # the catalog's snaptime has not moved since the last pull: no table is read at all
    assert not result.pulled and result.skipped["unchanged catalog"] == 1
    for kind in ("ermrest.aggregate", "ermrest.attribute", "ermrest.entity"):
        assert deriva_server.stats.requests("GET", kind) == 0, kind
    _touch(remote)  # any write moves the snaptime: then one count per table, and no key sweep
    deriva_server.stats.reset()
    ml.pull(remote=remote)
    assert deriva_server.stats.requests("GET", "ermrest.aggregate") >= 3
    assert deriva_server.stats.requests("GET", "ermrest.attribute") == 0, "no key sweep when the counts agree"


def _touch(remote) -> None:
    """A write that changes no row: the catalog's snaptime moves all the same (as on ERMrest)."""
    remote.catalog.update("test-schema", "Model", [{"RID": "0-0000", "Description": "none"}])


def test_a_mirrored_asset_deleted_on_the_server_leaves_the_mirror(new_store, remote, other_machine_pushed):
    ml = new_store("here")
    ml.pull(remote=remote)
    rid = other_machine_pushed["mask.png"]
    _delete_asset_everywhere(remote, "Image", rid)
    result = ml.pull(remote=remote)
    assert result.pulled["deleted"] == 1 and result.pulled["conflicts"] == 0
    with pytest.raises(UnknownRIDError):
        ml.lookup_asset(rid)
    assert list(ml.find_assets(asset_type="Mask")) == []
    assert {a.filename for a in ml.list_assets("Model")} == {"weights.bin"}, "the others stay"


def test_a_mirrored_asset_with_work_pending_here_is_not_dropped(new_store, remote, other_machine_pushed):
    ml = new_store("here")
    ml.pull(remote=remote)
    rid = other_machine_pushed["mask.png"]
    ml.update_asset(rid, description="annotated here, not yet pushed")
    _delete_asset_everywhere(remote, "Image", rid)
    result = ml.pull(remote=remote)
    assert result.pulled["deleted"] == 0 and result.pulled["conflicts"] == 1
    (conflict,) = ml.status()["conflicts"]
    assert (conflict["RID"], conflict["field"]) == (rid, "Deleted")
    assert ml.lookup_asset(rid).description == "annotated here, not yet pushed"
    assert ml.pull(remote=remote).pulled["conflicts"] == 0, "one conflict, not one per pull"
    with pytest.raises(ObjectMissingError, match="--keep remote"):
        ml.resolve(rid, keep="local")  # never fetched: nothing to send again
    assert ml.resolve(rid, keep="remote") == 1
    with pytest.raises(UnknownRIDError):
        ml.lookup_asset(rid)
    assert ml.status()["conflicts"] == [] and ml.sync(remote=remote).ok


def test_our_own_asset_deleted_on_the_server_is_a_conflict_and_can_be_sent_again(new_store, remote, tmp_path):
    ml = new_store("here")
    exe_rid, rids = record_run(ml, {"model.pt": ("Model", random_bytes(3000, 7), ["Model_File"])})
    assert ml.push(remote=remote).ok
    first = ml.lookup_asset(rids["model.pt"]).rid
    _delete_asset_everywhere(remote, "Model", first)
    assert ml.pull(remote=remote).pulled["conflicts"] == 1
    assert ml.lookup_asset(rids["model.pt"]).asset_types == ["Model_File", "Output_File"], "tags kept meanwhile"
    ml.resolve(rids["model.pt"], keep="local")
    result = ml.sync(remote=remote)
    assert result.ok, result.failed
    (row,) = catalog_rows(remote, "Model")
    assert row["RID"] != first and row["MD5"] == hashlib.md5(random_bytes(3000, 7)).hexdigest()
    assert {r["Asset_Type"] for r in catalog_rows(remote, "Model_Asset_Type")} == {"Model_File", "Output_File"}
    (link,) = catalog_rows(remote, "Model_Execution")
    assert link["Model"] == row["RID"] and link["Asset_Role"] == "Output"
    assert ml.lookup_asset(rids["model.pt"]).rid == row["RID"], "the RID we handed out still resolves"
    assert ml.lookup_asset(first).rid == row["RID"], "so does the RID the catalog had before"
    assert ml.status()["conflicts"] == []


def test_an_incremental_pull_reads_from_the_watermark_less_the_overlap(new_store, remote):
    there = new_store("there")
    for batch in range(3):  # three pushes: three catalog transactions, three RMTs
        record_run(there, {f"b{batch}-{i}.bin": ("Model", random_bytes(100, 10 * batch + i), []) for i in range(4)})
        assert there.push(remote=remote).ok
    here = new_store("here")
    assert sync.pull(here, remote, overlap_seconds=0.0).pulled["assets"] == 12  # the first pull reads everything
    assert sync.pull(here, remote, overlap_seconds=0.0).pulled["assets"] == 0  # nothing changed: nothing read
    _touch(remote)
    # the catalog moved: only the rows at the watermark (the last transaction's) are read again ...
    assert sync.pull(here, remote, overlap_seconds=0.0).pulled["assets"] == 4
    _touch(remote)
    # ... and a window reaching back over every transaction reads them all again
    assert sync.pull(here, remote, overlap_seconds=3600.0).pulled["assets"] == 12
    # a row changed on the server since is read, whatever its age
    first = next(r for r in catalog_rows(remote, "Model") if r["Filename"] == "b0-0.bin")
    remote.catalog.update("test-schema", "Model", [{"RID": first["RID"], "Description": "changed there"}])
    assert sync.pull(here, remote, overlap_seconds=0.0).pulled["assets"] == 4 + 1  # the watermark's rows, and it
    assert here.lookup_asset(first["RID"]).description == "changed there"


def test_prefetch_by_execution_takes_its_inputs_too(new_store, remote):
    there = new_store("there")
    _, made = record_run(there, {"raw.bin": ("Model", random_bytes(900, 4), [])})
    _, outs = record_run(there, {"eval.txt": ("Execution_Metadata", b"score 1", [])}, inputs=[made["raw.bin"]])
    assert there.push(remote=remote).ok
    here = new_store("here")
    assert here.pull(remote=remote).ok
    reader_rid = there.lookup_asset(outs["eval.txt"]).execution_rid  # the catalog's RID of the reading execution
    got = here.pull(remote=remote, executions=[reader_rid], metadata=False)
    assert got.done["bytes"] == 2, "its input and its output"
    for rid in (there.lookup_asset(made["raw.bin"]).rid, there.lookup_asset(outs["eval.txt"]).rid):
        assert here.lookup_asset(rid).download(here.working_dir / "check").exists()


def test_a_download_reports_its_bytes_as_they_arrive(new_store, remote):
    there = new_store("there")
    _, made = record_run(there, {"big.bin": ("Model", random_bytes(3 * 1024 * 1024 + 5, 8), [])})
    assert there.push(remote=remote).ok
    here = new_store("here")
    events = []
    assert here.pull(remote=remote, assets=[there.lookup_asset(made["big.bin"]).rid], progress=events.append).ok
    seen = [e.done for e in events if e.unit == "bytes"]
    assert len(seen) > 2 and seen == sorted(seen), "many steps, not one jump at the end"
    assert seen[-1] == 3 * 1024 * 1024 + 5

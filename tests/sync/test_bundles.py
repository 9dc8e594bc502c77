"""Air-gap bundles against the emulator: work crosses the gap both ways, and reaches the catalog exactly once.

A is the air-gapped store (it never talks to a server), B and C are connected
stores on other machines (other store directories). Bundles are real files;
pushes are real HTTP to the emulator.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from syncsupport import catalog_rows, check_catalog, populate, record_run

from satchel import BundleError, DerivaML


def _seed_offline_store(new_store, remote, tmp_path: Path, name: str = "A", pool: int = 40,
                        tables: tuple[str, ...] = ()) -> DerivaML:
    """An air-gapped store set up the way a lab would: from a --for-offline bundle made on a connected store."""
    seeder = new_store(f"{name}-seeder")
    seeder.pull(remote=remote)
    seed = tmp_path / f"{name}-seed.zip"
    seeder.export_bundle(seed, for_offline=True, rid_pool=pool, tables=tables, remote=remote)
    a = new_store(name)
    report = a.import_bundle(seed)
    assert report.applied["leases"] == pool
    return a


def _pending(ml: DerivaML) -> dict:
    return {k: v for k, v in ml.status()["would_send"].items() if v}


def test_three_store_round_trip(new_store, remote, tmp_path):
    a = _seed_offline_store(new_store, remote, tmp_path)
    outputs = populate(a)
    before = _pending(a)
    assert before["assets"] == 5 and before["executions"] == 2

    out = tmp_path / "to-b.zip"
    sent = a.export_bundle(out)
    assert sent.records["asset"] == 5 and sent.objects == 5
    assert not sent.warnings  # every row has a leased RID
    assert _pending(a) == before  # exporting is not syncing: A still waits for the server's word

    b = new_store("B")
    got = b.import_bundle(out)
    assert got.applied["assets"] == 5 and got.applied["executions"] == 2
    assert _pending(b) == before
    result = b.push(remote=remote)
    assert result.ok, result.failed
    check_catalog(remote, outputs)
    executions = {e["RID"] for e in remote.catalog.get("deriva-ml", "Execution")}
    # A's rows took RIDs leased for it: the catalog's rows have the RIDs A's users saw
    assert {e.execution_rid for e in a.list_executions()} == executions

    back = tmp_path / "to-a.zip"
    b.export_bundle(back, for_offline=True, rid_pool=0, remote=remote)
    confirmed = a.import_bundle(back)
    assert confirmed.applied.get("assets_confirmed") == 5, confirmed.applied
    assert _pending(a) == {}
    assert not a.status()["pending_changes"]
    for asset in a.find_assets():
        assert asset.synced if hasattr(asset, "synced") else True
    small = next(x for x in a.find_assets() if x.filename == "small.bin")
    assert a.lookup_asset(small.rid).description == "edited offline"

    again = a.export_bundle(tmp_path / "next.zip")
    assert again.records.get("asset", 0) == 0 and again.records.get("execution", 0) == 0 and again.objects == 0


def test_provisional_rids_resolve_after_the_return_bundle(new_store, remote, tmp_path):
    """A store that never got leased RIDs: its rows get the server's RIDs through the return bundle."""
    a = new_store("A")
    outputs = populate(a)
    provisional = {x.rid for x in a.find_assets()}
    assert all(r.startswith("L_") for r in provisional)
    sent = a.export_bundle(tmp_path / "out.zip")
    assert "2 execution(s) have provisional RIDs" in sent.warnings[0]
    b = new_store("B")
    b.import_bundle(tmp_path / "out.zip")
    assert b.push(remote=remote).ok
    check_catalog(remote, outputs)
    b.export_bundle(tmp_path / "back.zip", for_offline=True, rid_pool=5, remote=remote)
    report = a.import_bundle(tmp_path / "back.zip")
    assert report.applied["leases"] == 5
    assert _pending(a) == {}
    server = {r["RID"]: r["Filename"] for t in ("Model", "Image") for r in catalog_rows(remote, t)}
    server.update({r["RID"]: r["Filename"] for r in remote.catalog.get("deriva-ml", "Execution_Metadata")})
    for rid, filename in server.items():  # the server's RIDs name A's rows, and the provisional ones still do
        assert a.lookup_asset(rid).filename == filename
    for rid in provisional:  # and the provisional RIDs still resolve, to the server's
        assert a.lookup_asset(rid).rid in server


def test_double_import_and_two_importers_push_once(new_store, remote, tmp_path):
    a = _seed_offline_store(new_store, remote, tmp_path)
    outputs = populate(a)
    out = tmp_path / "work.tar"
    a.export_bundle(out)
    b, c = new_store("B"), new_store("C")
    first = b.import_bundle(out)
    second = b.import_bundle(out)
    assert second.already_imported and not second.applied and first.applied
    assert _pending(b)["assets"] == 5
    c.import_bundle(out)
    assert b.push(remote=remote).ok
    result = c.push(remote=remote)
    assert result.ok, result.failed
    check_catalog(remote, outputs)  # one row per asset, one link per pair, one object version
    assert b.push(remote=remote).done.get("assets", 0) == 0
    assert _pending(c) == {}


def test_offline_bundle_lets_a_new_store_validate_and_download(new_store, remote, tmp_path):
    producer = new_store("producer")
    populate(producer)
    assert producer.push(remote=remote).ok
    connected = new_store("connected")
    connected.pull(remote=remote)
    model = next(x for x in connected.find_assets() if x.filename == "big.bin")
    connected.export_bundle(tmp_path / "lab.zip", for_offline=True, assets=[model.rid], rid_pool=3, remote=remote)

    lab = new_store("lab")  # never online
    lab.import_bundle(tmp_path / "lab.zip")
    mirrored = {x.rid: x.filename for x in connected.find_assets()}
    assert {x.rid: x.filename for x in lab.find_assets()} == mirrored  # every row for lookups, offline
    assert _pending(lab) == {}
    exe = lab.create_execution(_config(lab, [model.rid]))
    with exe:
        got = exe.download_asset(model.rid, exe.working_dir / "in")
        assert got.read_bytes() == Path(connected.lookup_asset(model.rid).download(tmp_path / "chk")).read_bytes()
        with pytest.raises(Exception, match="not in the catalog model"):
            exe.asset_file_path("No_Such_Table", "x.bin")
        exe.asset_file_path("Model", "new.bin").write_bytes(b"trained offline")
    exe.commit_output_assets()
    new = next(x for x in lab.find_assets() if x.filename == "new.bin")
    assert not new.rid.startswith("L_")  # a leased RID from the bundle's pool


def _config(ml: DerivaML, inputs: list[str]):
    from satchel import ExecutionConfiguration

    wf = ml.create_workflow("eval.py", "Training")
    return ExecutionConfiguration(workflow=wf, description="offline run", assets=inputs)


# --- refusals ---------------------------------------------------------------------------------------------------


def _journal_state(ml: DerivaML) -> tuple:
    objects = sorted(p.name for p in Path(ml.cache_dir, "objects").rglob("*") if p.is_file())
    return ml.status()["would_send"], len(list(ml.find_assets())), objects


def _rewrite(src: Path, dest: Path, change) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for info in zin.infolist():
            data = change(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info, data)


@pytest.fixture
def bundle_and_target(new_store, tmp_path):
    a = new_store("A")
    populate(a)
    out = tmp_path / "good.zip"
    a.export_bundle(out)
    b = new_store("B")
    return out, b


@pytest.mark.parametrize("damage, message", [
    ("tampered-object", "SHA256|altered"),
    ("tampered-record", "altered|SHA256"),
    ("dropped-object", "incomplete|disagree"),
    ("truncated", "truncated|not a readable"),
    ("newer", "newer satchel"),
    ("foreign", "catalog"),
    ("stripped-bytes", "does not carry its bytes"),
    ("bad-types", "tags is a list"),
])
def test_damaged_bundles_are_refused_and_change_nothing(bundle_and_target, tmp_path, damage, message):
    good, b = bundle_and_target
    before = _journal_state(b)
    bad = tmp_path / f"{damage}.zip"
    if damage == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size * 2 // 3])
    elif damage == "tampered-object":
        _rewrite(good, bad, lambda n, d: (d[:-1] + bytes([d[-1] ^ 1])) if "/data/objects/" in n and len(d) > 1000 else d)
    elif damage == "tampered-record":
        _rewrite(good, bad, lambda n, d: d.replace(b"edited offline", b"edited by mallory") if n.endswith(".jsonl") else d)
    elif damage == "dropped-object":
        dropped = []

        def drop(n, d):
            if "/data/objects/" in n and not dropped:
                dropped.append(n)
                return None
            return d
        _rewrite(good, bad, drop)
    else:
        import hashlib
        import json

        def header(n, d):
            if damage in ("stripped-bytes", "bad-types"):
                if "/data/objects/" in n and damage == "stripped-bytes":
                    return None
                if not n.endswith(".jsonl"):
                    return d
                lines = [json.loads(x) for x in d.decode().splitlines()]
                for r in lines:
                    if r["t"] == "asset":
                        if damage == "stripped-bytes":
                            r.pop("object", None)
                        else:
                            r["tags"] = list(r["tags"])
                return "".join(json.dumps(r) + "\n" for r in lines).encode()
            if not n.endswith("bundle.json"):
                return d
            h = json.loads(d)
            if damage == "newer":
                h["version"] = 99
            else:
                h["catalog"]["catalog_id"] = "77"
            return json.dumps(h).encode()
        # re-sign the bag so only the header's meaning is wrong, not its checksums
        _rewrite(good, bad, header)
        _resign(bad)
    with pytest.raises(BundleError, match=message):
        b.import_bundle(bad)
    assert _journal_state(b) == before
    assert not [p for p in Path(b.cache_dir, "tmp").iterdir()]


def _resign(path: Path) -> None:
    """Recompute the manifests of a zip bag (as an attacker or a newer writer could)."""
    import hashlib

    with zipfile.ZipFile(path) as z:
        files = {i.filename: z.read(i) for i in z.infolist()}
    top = next(iter(files)).split("/")[0]
    payload = {n: d for n, d in files.items() if n.startswith(f"{top}/data/")}
    info = [line for line in files[f"{top}/bag-info.txt"].decode().splitlines() if not line.startswith("Payload-Oxum")]
    info.append(f"Payload-Oxum: {sum(len(d) for d in payload.values())}.{len(payload)}")
    files[f"{top}/bag-info.txt"] = ("\n".join(info) + "\n").encode()
    for algo in ("sha256", "md5"):
        files[f"{top}/manifest-{algo}.txt"] = "".join(
            f"{hashlib.new(algo, d).hexdigest()}  {n[len(top) + 1:]}\n" for n, d in payload.items()).encode()
    tags = [n for n in files if not n.startswith(f"{top}/data/") and not n.endswith("tagmanifest-sha256.txt")]
    files[f"{top}/tagmanifest-sha256.txt"] = "".join(
        f"{hashlib.sha256(files[n]).hexdigest()}  {n[len(top) + 1:]}\n" for n in tags).encode()
    with zipfile.ZipFile(path, "w") as z:
        for n, d in files.items():
            z.writestr(n, d)


# --- crash during import ----------------------------------------------------------------------------------------

IMPORTER = r"""
import sys
from satchel import DerivaML
with DerivaML("localhost", "1", working_dir=sys.argv[1]) as ml:
    print(ml.import_bundle(sys.argv[2]).applied)
"""


@pytest.mark.parametrize("crash_at", ["bundle.import.after_objects", "bundle.import.merge#7", "bundle.import.after_rows"])
def test_kill_during_import_then_import_again(new_store, remote, tmp_path, crash_at):
    a = new_store("A")
    outputs = populate(a)
    out = tmp_path / "work.zip"
    a.export_bundle(out)
    store = tmp_path / "B"
    DerivaML("localhost", "1", working_dir=store).close()
    env = {**os.environ, "SATCHEL_CRASH_AT": crash_at}
    killed = subprocess.run([sys.executable, "-c", IMPORTER, str(store), str(out)], env=env, capture_output=True)
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    b = new_store("B")
    assert b.store.cache.remove_temp_debris(older_than_s=0) >= 1  # the staging folder the kill left
    assert b.verify().ok
    if crash_at.startswith("bundle.import.after_rows"):
        assert b.import_bundle(out).already_imported
    else:
        assert not list(b.find_assets())  # all of the rows or none
        assert b.import_bundle(out).applied["assets"] == 5
    assert b.push(remote=remote).ok
    check_catalog(remote, outputs)
    assert len(list(b.find_assets())) == 5


# --- what a review found (each failed before its fix) -----------------------------------------------------------


def _seeded_pair(new_store, remote, tmp_path):
    """A producer's work on the server, and a lab seeded with it (every row mirrored, leased RIDs)."""
    producer = new_store("producer")
    populate(producer)
    assert producer.push(remote=remote).ok
    return _seed_offline_store(new_store, remote, tmp_path, "lab", pool=10, tables=("Model",))


def test_edits_of_mirrored_rows_reach_the_server_through_a_fresh_gateway(new_store, remote, tmp_path):
    lab = _seeded_pair(new_store, remote, tmp_path)
    big = next(x for x in lab.find_assets() if x.filename == "big.bin")
    png = next(x for x in lab.find_assets() if x.filename == "a.png")
    lab.update_asset(big.rid, [t for t in big.asset_types if t != "Weights"])
    lab.update_asset(png.rid, description="edited in the lab")
    lab.export_bundle(tmp_path / "out.zip")
    gateway = new_store("gateway")  # has never pulled: the rows arrive as mirrors, with the lab's edits pending
    gateway.import_bundle(tmp_path / "out.zip")
    assert _pending(gateway) == {"tag_removals": 1, "descriptions": 1}
    assert gateway.push(remote=remote).ok
    assert next(r for r in catalog_rows(remote, "Image") if r["Filename"] == "a.png")["Description"] == "edited in the lab"
    assert sorted(r["Asset_Type"] for r in catalog_rows(remote, "Model_Asset_Type") if r["Model"] == big.rid) == ["Output_File"]
    gateway.export_bundle(tmp_path / "back.zip", for_offline=True, remote=remote)
    lab.import_bundle(tmp_path / "back.zip")
    assert _pending(lab) == {} and not lab.status()["pending_changes"]


def test_status_of_a_confirmed_execution_reaches_the_server_through_another_gateway(new_store, remote, tmp_path):
    lab = _seed_offline_store(new_store, remote, tmp_path, "lab", pool=20)
    exe = lab.create_execution(_config(lab, []))
    exe.execution_start()
    lab.export_bundle(tmp_path / "1.zip")
    b = new_store("B")
    b.import_bundle(tmp_path / "1.zip")
    assert b.push(remote=remote).ok
    b.export_bundle(tmp_path / "back.zip", for_offline=True, rid_pool=0, remote=remote)
    lab.import_bundle(tmp_path / "back.zip")
    exe.execution_stop()
    lab.export_bundle(tmp_path / "2.zip")
    c = new_store("C")  # not the gateway that pushed the execution
    c.import_bundle(tmp_path / "2.zip")
    assert c.push(remote=remote).ok
    (row,) = [e for e in remote.catalog.get("deriva-ml", "Execution") if e["RID"] == exe.execution_rid]
    assert row["Status"] == lab.lookup_execution(exe.execution_rid).status.value


def test_the_same_file_recorded_on_both_sides_is_one_asset(new_store, remote, tmp_path):
    a, b = new_store("A"), new_store("B")
    for ml in (a, b):
        record_run(ml, {"config.yaml": ("Model", b"lr: 0.1\n", [])})
    a.export_bundle(tmp_path / "out.zip")
    b.import_bundle(tmp_path / "out.zip")
    assert [x.filename for x in b.find_assets()] == ["config.yaml"]
    assert len(b.list_executions()) == 2
    assert b.push(remote=remote).ok
    assert len(catalog_rows(remote, "Model")) == 1 and len(catalog_rows(remote, "Model_Execution")) == 2
    again = new_store("C")
    again.pull(remote=remote)  # a gateway whose mirror already has the row: the bundle's asset is that row
    again.import_bundle(tmp_path / "out.zip")
    assert len(list(again.find_assets())) == 1


def test_one_setup_bundle_in_two_labs_is_refused_at_the_gateway(new_store, remote, tmp_path):
    seeder = new_store("seeder")
    seeder.export_bundle(tmp_path / "seed.zip", for_offline=True, rid_pool=10, remote=remote)
    labs = [new_store("lab1"), new_store("lab2")]
    for i, lab in enumerate(labs):
        lab.import_bundle(tmp_path / "seed.zip")
        record_run(lab, {f"lab{i}.bin": ("Model", f"lab {i}".encode(), [])})
        lab.export_bundle(tmp_path / f"lab{i}.zip")
    gateway = new_store("gateway")
    gateway.import_bundle(tmp_path / "lab0.zip")
    before = _journal_state(gateway)
    with pytest.raises(BundleError, match="imported into two offline stores"):
        gateway.import_bundle(tmp_path / "lab1.zip")
    assert _journal_state(gateway) == before


def test_a_workflow_known_on_both_sides_is_confirmed_back(new_store, remote, tmp_path):
    a, b = new_store("A"), new_store("B")
    b.create_workflow("train.py", "Training", url="https://git/train.py", checksum="c0ffee")
    a.create_execution(_config_with(a, a.create_workflow("train.py", "Training", url="https://git/train.py",
                                                         checksum="c0ffee")))
    a.export_bundle(tmp_path / "out.zip")
    b.import_bundle(tmp_path / "out.zip")
    assert len(b.find_workflows()) == 1
    assert b.push(remote=remote).ok
    b.export_bundle(tmp_path / "back.zip", for_offline=True, rid_pool=0, remote=remote)
    a.import_bundle(tmp_path / "back.zip")
    assert _pending(a) == {}


def test_a_setup_bundle_carries_nothing_the_gateway_has_not_pushed(new_store, remote, tmp_path):
    a = new_store("A")
    populate(a)
    a.export_bundle(tmp_path / "out.zip")
    gateway = new_store("gateway")
    gateway.import_bundle(tmp_path / "out.zip")  # not pushed yet
    gateway.export_bundle(tmp_path / "setup.zip", for_offline=True, rid_pool=0, remote=remote)
    lab = new_store("lab2")
    lab.import_bundle(tmp_path / "setup.zip")
    assert _pending(lab) == {} and not list(lab.find_assets())
    lab.export_bundle(tmp_path / "lab2-out.zip")


def test_an_outbound_bundle_does_not_bring_back_tags_the_server_dropped(new_store, remote, tmp_path):
    lab = _seeded_pair(new_store, remote, tmp_path)
    gateway = new_store("gateway")
    gateway.pull(remote=remote)
    big = next(x for x in gateway.find_assets() if x.filename == "big.bin")
    gateway.update_asset(big.rid, [t for t in big.asset_types if t != "Weights"])
    assert gateway.push(remote=remote).ok
    record_run(lab, {"eval.txt": ("Execution_Metadata", b"lab eval", [])}, inputs=[big.rid])  # stale tags there
    lab.export_bundle(tmp_path / "out.zip")
    gateway.import_bundle(tmp_path / "out.zip")
    assert "Weights" not in gateway.lookup_asset(big.rid).asset_types


def _config_with(ml: DerivaML, workflow):
    from satchel import ExecutionConfiguration

    return ExecutionConfiguration(workflow=workflow, description="run")


def _journal_dump(ml: DerivaML) -> dict:
    import sqlite3

    db = sqlite3.connect(Path(ml.working_dir) / "journal.db")
    rid = "(SELECT rid FROM assets WHERE id = {})"
    out = {
        "assets": db.execute("SELECT rid, remote_rid, asset_table, filename, length, md5, blake3, url, description,"
                             " asset_metadata, origin, sync_state, remote_description, object_url FROM assets"
                             " ORDER BY rid").fetchall(),
        "tags": db.execute(f"SELECT {rid.format('asset_id')}, term, sync_state FROM asset_tags ORDER BY 1, 2").fetchall(),
        "links": db.execute(f"SELECT {rid.format('l.asset_id')}, e.rid, l.role, l.sync_state FROM asset_links l"
                            " JOIN executions e ON e.id = l.execution_id ORDER BY 1, 2").fetchall(),
        "changes": sorted(db.execute("SELECT kind, entity_kind, detail FROM changes").fetchall()),
        "bundle_rows": db.execute("SELECT rid, kind FROM bundle_rows ORDER BY rid").fetchall(),
    }
    db.close()
    return out


def test_the_bulk_merge_records_what_the_one_by_one_merge_records(new_store, remote, tmp_path, monkeypatch):
    from satchel.bundle import merge

    lab = _seeded_pair(new_store, remote, tmp_path)  # mirrored rows, leased RIDs
    big = next(x for x in lab.find_assets() if x.filename == "big.bin")
    lab.update_asset(big.rid, [t for t in big.asset_types if t != "Weights"], description="lab edit")
    populate(lab, salt=5)  # new local work, with an input link to a mirrored asset
    lab.export_bundle(tmp_path / "out.zip")
    dumps = []
    for name, bulk in (("bulk", True), ("one-by-one", False)):
        ml = new_store(name)
        if not bulk:
            real = merge.Merger.__init__
            monkeypatch.setattr(merge.Merger, "__init__",
                                lambda self, *a, **k: real(self, *a, **{**k, "bulk": False}))
        ml.import_bundle(tmp_path / "out.zip")
        dumps.append(_journal_dump(ml))
    assert dumps[0] == dumps[1]
    assert len(dumps[0]["assets"]) >= 6 and len(dumps[0]["links"]) >= 5 and dumps[0]["changes"]


def test_one_setup_bundle_in_two_labs_through_two_gateways_is_refused_at_push(new_store, remote, tmp_path):
    seeder = new_store("seeder")
    seeder.export_bundle(tmp_path / "seed.zip", for_offline=True, rid_pool=10, remote=remote)
    gateways = []
    for i in range(2):
        lab = new_store(f"lab{i}")
        lab.import_bundle(tmp_path / "seed.zip")
        record_run(lab, {f"lab{i}.bin": ("Model", f"lab {i}".encode(), [])})
        lab.export_bundle(tmp_path / f"lab{i}.zip")
        gateway = new_store(f"gateway{i}")
        gateway.import_bundle(tmp_path / f"lab{i}.zip")
        gateways.append(gateway)
    assert gateways[0].push(remote=remote).ok
    second = gateways[1].push(remote=remote)
    assert any("given to two rows" in f.reason for f in second.failed), second.failed
    assert [r["Filename"] for r in catalog_rows(remote, "Model")] == ["lab0.bin"]
    lost = next(a for a in gateways[1].find_assets() if a.filename == "lab1.bin")
    assert gateways[1].status()["failed_assets"] == 1 and lost.rid  # kept, failed, named: not lost

"""Several machines pushing overlapping work into one catalog at once converge, with no duplicates."""

from __future__ import annotations

import hashlib
from collections import Counter

from syncsupport import catalog_rows, make_remote, push_at_once, random_bytes, record_run

from satchel import ExecutionConfiguration


def test_three_stores_push_overlapping_content_at_once(deriva_server, new_store):
    shared = {f"shared{i}.bin": ("Model", random_bytes(2000 + i, 100 + i), ["Model_File"]) for i in range(8)}
    stores = []
    for n in range(3):
        ml = new_store(f"machine{n}")
        own = {f"own{n}-{i}.png": ("Image", random_bytes(500, 10 * n + i), []) for i in range(4)}
        record_run(ml, {**shared, **own})
        stores.append(ml)
    results = push_at_once(deriva_server, stores, transfers=2)
    with make_remote(deriva_server.url, deriva_server.token) as remote:
        for i, ml in enumerate(stores):  # a second round settles anything a race left pending
            if not results[i].ok:
                assert ml.push(remote=remote).ok
        models = catalog_rows(remote, "Model")
        assert sorted(r["Filename"] for r in models) == sorted(shared), "one row per shared file"
        assert len(catalog_rows(remote, "Image")) == 12
        for r in models:
            live = [v for v in deriva_server.app.hatrac.versions[r["URL"]] if not v.get("deleted")]
            assert len(live) == 1, f"{r['URL']}: {len(live)} object versions"
            assert r["MD5"] == hashlib.md5(shared[r["Filename"]][1]).hexdigest()
        tags = Counter((t["Model"], t["Asset_Type"]) for t in catalog_rows(remote, "Model_Asset_Type"))
        assert set(tags.values()) == {1} and len(tags) == 16
        links = Counter((x["Model"], x["Execution"]) for x in catalog_rows(remote, "Model_Execution"))
        assert set(links.values()) == {1} and len(links) == 24, "each machine's execution links every shared file"
        for ml in stores:  # every store's RIDs now name the catalog's rows
            for a in ml.find_assets("Model"):
                assert a.rid in {r["RID"] for r in models}


def _run_with(ml, workflow, name: str) -> None:
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow, description=name))
    with exe:
        exe.asset_file_path("Image", f"{name}.png").write_bytes(name.encode())
    exe.commit_output_assets()


def test_machines_pushing_the_same_workflow_at_once_leave_one_row(deriva_server, new_store):
    """No catalog key stops two inserts of one workflow; every machine settles on the first row."""
    for trial in range(3):
        stores = []
        for n in range(3):
            ml = new_store(f"trial{trial}-machine{n}")
            ml.add_term("Workflow_Type", "Training", description="training")
            wf = ml.create_workflow("train.py", "Training", url=f"https://git.example.org/train.py#{trial}",
                                    checksum=f"sha-of-train-{trial}")
            _run_with(ml, wf, f"t{trial}m{n}")
            stores.append(ml)
        results = push_at_once(deriva_server, stores)
        assert all(r.ok for r in results), [r.failed for r in results]
        with make_remote(deriva_server.url, deriva_server.token) as remote:
            workflows = [w for w in remote.catalog.get("deriva-ml", "Workflow") if w["Checksum"] == f"sha-of-train-{trial}"]
            assert len(workflows) == 1, f"trial {trial}: {len(workflows)} Workflow rows"
            (wf,) = workflows
            executions = [e for e in remote.catalog.get("deriva-ml", "Execution") if e["Description"].startswith(f"t{trial}")]
            assert len(executions) == 3 and {e["Workflow"] for e in executions} == {wf["RID"]}
            types = [t for t in remote.catalog.get("deriva-ml", "Workflow_Workflow_Type") if t["Workflow"] == wf["RID"]]
            assert [t["Workflow_Type"] for t in types] == ["Training"]
            orphans = {t["Workflow"] for t in remote.catalog.get("deriva-ml", "Workflow_Workflow_Type")} - {
                w["RID"] for w in remote.catalog.get("deriva-ml", "Workflow")}
            assert not orphans


def test_machines_with_one_login_pushing_one_large_object_at_once(deriva_server, new_store):
    """Their upload jobs are listed to each of them (GET obj;upload is per login): a push may take over a
    job another is still sending; whoever finds the job gone finds the object there instead."""
    for trial in range(3):
        big = random_bytes(600_000, 99 + trial)
        stores = []
        for n in range(3):
            ml = new_store(f"big{trial}-{n}")
            record_run(ml, {"big.bin": ("Model", big, [])})
            stores.append(ml)
        results = push_at_once(deriva_server, stores, chunked_threshold=64 * 1024, chunk_size=16 * 1024, transfers=1)
        assert all(r.ok for r in results), [r.failed for r in results]
        with make_remote(deriva_server.url, deriva_server.token) as remote:
            rows = [r for r in catalog_rows(remote, "Model") if r["MD5"] == hashlib.md5(big).hexdigest()]
            assert len(rows) == 1
            live = [v for v in deriva_server.app.hatrac.versions[rows[0]["URL"]] if not v.get("deleted")]
            assert len(live) == 1
    assert deriva_server.app.hatrac.jobs == {}, "no job left open"


def test_a_losing_workflow_row_that_cannot_be_deleted_is_kept_and_used(deriva_server, new_store):
    """Without the right to delete (403), a machine keeps its own duplicate workflow row and goes on."""
    deriva_server.inject(403, "Access forbidden.", method="DELETE", path_contains="deriva-ml:Workflow", times=1000)
    for trial in range(4):  # the race is not certain in any one trial
        stores = []
        for n in range(3):
            ml = new_store(f"nodelete{trial}-{n}")
            ml.add_term("Workflow_Type", "Training", description="training")
            wf = ml.create_workflow("train.py", "Training", checksum=f"sha-of-nodelete-{trial}")
            _run_with(ml, wf, f"nodelete{trial}-{n}")
            stores.append(ml)
        results = push_at_once(deriva_server, stores)
        assert all(r.ok for r in results), [r.failed for r in results]
        with make_remote(deriva_server.url, deriva_server.token) as remote:
            workflows = {w["RID"] for w in remote.catalog.get("deriva-ml", "Workflow")
                         if w["Checksum"] == f"sha-of-nodelete-{trial}"}
            executions = [e for e in remote.catalog.get("deriva-ml", "Execution")
                          if e["Description"].startswith(f"nodelete{trial}-")]
            assert len(executions) == 3 and {e["Workflow"] for e in executions} <= workflows
        for ml in stores:
            assert ml.sync_plan().empty

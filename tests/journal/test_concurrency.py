"""Several processes write one store at once: nothing is lost, duplicated or refused.

Four real processes, started together, each create 100 executions on the same
working_dir and commit outputs from each. Some outputs have the same name and
bytes in every process, so they must collapse into one asset (unique per table
and URL) linked as an Output of several executions. The journal is then read
back through SQL and through the API.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from satchel import DerivaML

pytestmark = pytest.mark.slow

PROCESSES = 4
EXECUTIONS = 100
#: every SHARED_EVERY-th execution of each process also writes a file shared by all processes
SHARED_EVERY = 10
TABLE = "Execution_Asset"

WORKER = r"""
import json, os, sys, time
from pathlib import Path

from satchel import DerivaML, ExecutionConfiguration  # imported before the start line: the work starts at once

store, worker, count, every, barrier, wf_rid, out = sys.argv[1:8]
worker, count, every = int(worker), int(count), int(every)
barrier = Path(barrier)
(barrier / f"ready-{worker}").touch()
deadline = time.monotonic() + 60
while not (barrier / "go").exists():  # start together: the parent opens the gate when all are ready
    if time.monotonic() > deadline:
        sys.exit("the start signal never came")
    time.sleep(0.002)

records = []
began = time.time()
with DerivaML("example.org", "1", working_dir=store) as ml:
    for i in range(count):
        exe = ml.create_execution(ExecutionConfiguration(workflow=wf_rid, description=f"w{worker} e{i}"))
        outputs = []
        with exe:
            own = exe.asset_file_path("__TABLE__", f"w{worker}-e{i}.bin", asset_types=["__TABLE__", f"Worker_{worker}"])
            own.write_bytes(f"worker {worker} execution {i} ".encode() * 4)
            outputs.append(own.name)
            if i % every == 0:  # the same name and bytes in every process: one asset, several Output links
                shared = exe.asset_file_path("__TABLE__", f"shared-{i}.txt", asset_types=[f"Worker_{worker}"])
                shared.write_bytes(f"shared output {i}".encode())
                outputs.append(shared.name)
        report = exe.commit_output_assets()
        assert report.total_uploaded == len(outputs), report
        records.append({"rid": exe.rid, "outputs": sorted(outputs), "assets": sorted(a.asset_rid for a in report.assets)})
Path(out).write_text(json.dumps({"began": began, "ended": time.time(), "executions": records}))
""".replace("__TABLE__", TABLE)


def _wait_for(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


@pytest.fixture
def concurrent_run(ml: DerivaML, workflow, store_dir: Path, tmp_path: Path) -> dict:
    """Run the workers to the end; returns their results, exit codes and stderr."""
    for k in range(PROCESSES):
        ml.add_term("Asset_Type", f"Worker_{k}", description=f"written by worker {k}")
    wf_rid = ml.add_workflow(workflow)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    outs = [tmp_path / f"out-{k}.json" for k in range(PROCESSES)]
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(store_dir), str(k), str(EXECUTIONS), str(SHARED_EVERY),
             str(barrier), wf_rid, str(outs[k])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy(),
        )
        for k in range(PROCESSES)
    ]
    try:
        _wait_for(lambda: all((barrier / f"ready-{k}").exists() for k in range(PROCESSES)), 30, "workers to start")
        (barrier / "go").touch()
        results = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return {
        "returncodes": [p.returncode for p in procs],
        "stdout": [r[0].decode(errors="replace") for r in results],
        "stderr": [r[1].decode(errors="replace") for r in results],
        "results": [json.loads(o.read_text()) if o.exists() else {} for o in outs],
        "seconds": time.monotonic() - started,
        "wf_rid": wf_rid,
    }


def test_four_processes_write_one_store_at_once(concurrent_run: dict, ml: DerivaML, store_dir: Path) -> None:
    run = concurrent_run
    for k, (rc, err) in enumerate(zip(run["returncodes"], run["stderr"], strict=True)):
        assert "database is locked" not in err, f"worker {k} saw a lock error:\n{err}"
        assert "Traceback" not in err, f"worker {k} failed:\n{err}"
        assert rc == 0, f"worker {k} exited {rc}:\n{err}"
    results = run["results"]
    # they really ran at the same time: every worker started before any finished
    assert max(r["began"] for r in results) < min(r["ended"] for r in results)
    records = [r for res in results for r in res["executions"]]
    assert len(records) == PROCESSES * EXECUTIONS

    db = sqlite3.connect(f"file:{store_dir / 'journal.db'}?mode=ro", uri=True)
    try:
        # --- executions: all there, each once, each RID unique
        exe_rows = db.execute("SELECT id, rid, status FROM executions").fetchall()
        assert len(exe_rows) == PROCESSES * EXECUTIONS
        rids = [r[1] for r in exe_rows]
        assert len(set(rids)) == len(rids)
        assert set(rids) == {r["rid"] for r in records}
        assert {r[2] for r in exe_rows} == {"Uploaded"}
        exe_id = {rid: i for i, rid, _ in exe_rows}
        history: dict[int, list[str]] = defaultdict(list)
        for e, to_status in db.execute("SELECT execution_id, to_status FROM execution_status_events ORDER BY id"):
            history[e].append(to_status)
        assert {tuple(h) for h in history.values()} == {("Created", "Running", "Stopped", "Pending_Upload", "Uploaded")}
        assert len(history) == len(exe_rows)
        announced = Counter(e for (e,) in db.execute("SELECT entity_id FROM changes WHERE kind = 'execution'"))
        assert set(announced) == set(exe_id.values()) and set(announced.values()) == {1}

        # --- assets: unique per (table, URL); the shared files collapsed into one row each
        dup_urls = db.execute(
            "SELECT asset_table, url, count(*) FROM assets GROUP BY asset_table, url HAVING count(*) > 1"
        ).fetchall()
        assert dup_urls == []
        shared_names = {f"shared-{i}.txt" for i in range(0, EXECUTIONS, SHARED_EVERY)}
        assets = {row[0]: row[1:] for row in db.execute("SELECT id, rid, asset_table, filename FROM assets")}
        by_name = Counter(filename for _, _, filename in assets.values())
        assert by_name == Counter(
            {f"w{k}-e{i}.bin": 1 for k in range(PROCESSES) for i in range(EXECUTIONS)} | {n: 1 for n in shared_names}
        )
        assert len({rid for rid, _, _ in assets.values()}) == len(assets)
        assert {table for _, table, _ in assets.values()} == {TABLE}

        # --- links: each execution has exactly its outputs, all with role Output, no duplicates
        links = db.execute("SELECT asset_id, execution_id, role FROM asset_links").fetchall()
        assert len(links) == len({(a, e) for a, e, _ in links})
        assert {role for _, _, role in links} == {"Output"}
        outputs_of: dict[int, set[str]] = defaultdict(set)
        rids_of: dict[int, set[str]] = defaultdict(set)
        for a, e, _ in links:
            outputs_of[e].add(assets[a][2])
            rids_of[e].add(assets[a][0])
        for rec in records:
            e = exe_id[rec["rid"]]
            assert outputs_of[e] == set(rec["outputs"]), rec["rid"]
            assert rids_of[e] == set(rec["assets"]), rec["rid"]  # the report's RIDs are the journal's
        writers = Counter(a for a, _, _ in links)
        for a, (_, _, filename) in assets.items():
            assert writers[a] == (PROCESSES if filename in shared_names else 1), filename

        # --- tags are sets: no duplicate rows, and exactly the expected set per asset
        dup_tags = db.execute(
            "SELECT asset_id, term, count(*) FROM asset_tags GROUP BY asset_id, term HAVING count(*) > 1"
        ).fetchall()
        assert dup_tags == []
        tags: dict[int, set[str]] = defaultdict(set)
        for a, term in db.execute("SELECT asset_id, term FROM asset_tags"):
            tags[a].add(term)
        for a, (_, _, filename) in assets.items():
            if filename in shared_names:
                expected = {"Output_File"} | {f"Worker_{k}" for k in range(PROCESSES)}
            else:
                expected = {"Output_File", TABLE, f"Worker_{filename[1:filename.index('-')]}"}
            assert tags[a] == expected, filename
        # the outbox announces each tag once: later writers of a shared asset add only what is new
        tag_adds = Counter(
            db.execute(
                "SELECT entity_id, json_extract(detail, '$.term') FROM changes WHERE kind = 'tag_add'"
            ).fetchall()
        )
        assert all(n == 1 for n in tag_adds.values()), [k for k, n in tag_adds.items() if n > 1]
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        db.close()

    # --- the API agrees with the SQL
    rec = results[1]["executions"][0]  # execution 0 of worker 1 has its own output and a shared one
    listed = ml.list_execution_assets(rec["rid"], asset_role="Output")
    assert sorted(a.filename for a in listed) == rec["outputs"]
    (shared,) = [a for a in listed if a.filename == "shared-0.txt"]
    assert sorted(e.execution_rid for e in shared.list_executions("Output")) == sorted(
        res["executions"][0]["rid"] for res in results
    )
    report = ml.verify()
    assert report.ok, report
    assert report.objects_checked == len(assets)

"""Crash anywhere: a push subprocess SIGKILLed at every step boundary (and at random moments),
then pushed to completion, leaves the catalog with exactly the expected rows and objects, each once."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from syncsupport import KiB, catalog_rows, check_catalog, kill_at_work, make_remote, populate, random_bytes, record_run

from satchel import DerivaML, ExecutionConfiguration
from satchel.remote import urls

SMALL_CHUNKS = {"chunked_threshold": 64 * KiB, "chunk_size": 32 * KiB}

PUSH_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from satchel import DerivaML
    sys.path.insert(0, os.environ["SYNC_SUPPORT"])
    from syncsupport import make_remote
    with DerivaML("localhost", "1", working_dir=sys.argv[1]) as ml, make_remote(sys.argv[2], sys.argv[3]) as remote:
        result = ml.push(remote=remote, chunked_threshold=64 * 1024, chunk_size=32 * 1024, transfers=2)
        print("OK" if result.ok else f"FAILED {result.failed}")
    """
)

CRASH_POINTS = [
    "push.after_terms",
    "push.workflows.after_reserve",
    "rows.Workflow.after_insert",
    "push.after_workflows",
    "push.executions.after_reserve",
    "rows.Execution.after_insert",
    "push.after_executions",
    "objects.after_upload",
    "objects.after_job_created",
    "objects.after_chunk#3",
    "push.after_objects",
    "push.assets.after_reserve",
    "rows.Model.after_insert",
    "push.after_assets",
    "push.after_tags",
    "push.after_links",
    "push.after_updates",
    "push.after_status",
]


def run_push(store: Path, server, env_extra: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, SYNC_SUPPORT=str(Path(__file__).parent), **env_extra)
    return subprocess.run(
        [sys.executable, "-c", PUSH_SCRIPT, str(store), server.url, server.token],
        capture_output=True, text=True, timeout=timeout, env=env,
    )


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_killed_at_a_step_boundary_then_completed(point, deriva_server, remote, tmp_path):
    store = tmp_path / "store"
    with DerivaML("localhost", "1", working_dir=store) as ml:
        outputs = populate(ml)
    crashed = run_push(store, deriva_server, {"SATCHEL_CRASH_AT": point})
    assert crashed.returncode == -9, f"{point} was never reached: {crashed.stdout}{crashed.stderr}"
    done = run_push(store, deriva_server, {})
    assert done.returncode == 0 and "OK" in done.stdout, done.stdout + done.stderr
    check_catalog(remote, outputs)
    with DerivaML("localhost", "1", working_dir=store) as ml:
        assert ml.sync_plan().empty
        assert ml.push(remote=remote, **SMALL_CHUNKS).bytes_sent == 0


def test_killed_at_random_moments(deriva_server, remote, tmp_path):
    """Kill the push at random moments while it is at work (after a random number of its requests reached
    the server, and up to a millisecond later), several times in a row, then let it finish."""
    rng = random.Random(20261125)
    store = tmp_path / "store"
    with DerivaML("localhost", "1", working_dir=store) as ml:
        outputs = populate(ml)
    script = [sys.executable, "-c", PUSH_SCRIPT, str(store), deriva_server.url, deriva_server.token]
    env = dict(os.environ, SYNC_SUPPORT=str(Path(__file__).parent))
    interrupted = kill_at_work(script, env, deriva_server, rng)
    assert interrupted >= 3, f"only {interrupted} of 6 kills landed while the push was at work"
    done = run_push(store, deriva_server, {})
    assert done.returncode == 0 and "OK" in done.stdout, done.stdout + done.stderr
    check_catalog(remote, outputs)


def _check_the_one_model(server, tmp_path: Path, data: bytes) -> None:
    """The catalog holds one Model row, whose object has one version, holding ``data``."""
    with make_remote(server.url, server.token) as remote:
        (row,) = catalog_rows(remote, "Model")
        assert len(server.app.hatrac.versions[row["URL"]]) == 1
        got = tmp_path / "got"
        remote.hatrac.download(row["URL"], got, md5=hashlib.md5(data).hexdigest())
        assert got.read_bytes() == data


def test_chunked_upload_resumes_without_resending_acknowledged_chunks(deriva_server, tmp_path):
    store = tmp_path / "store"
    data = random_bytes(10 * 32 * KiB + 5, 9)  # 11 chunks of 32 KiB
    with DerivaML("localhost", "1", working_dir=store) as ml:
        record_run(ml, {"large.bin": ("Model", data, [])})
    crashed = run_push(store, deriva_server, {"SATCHEL_CRASH_AT": "objects.after_chunk#6"})
    assert crashed.returncode == -9
    sent_before = deriva_server.stats.bytes_received("PUT", "hatrac.chunk")
    assert sent_before == 6 * 32 * KiB
    done = run_push(store, deriva_server, {})
    assert done.returncode == 0, done.stderr
    total = deriva_server.stats.bytes_received("PUT", "hatrac.chunk")
    assert total - len(data) <= 32 * KiB, f"sent {total} bytes in chunks for a {len(data)}-byte file"
    _check_the_one_model(deriva_server, tmp_path, data)


def test_a_job_created_but_never_recorded_is_used_not_left_behind(deriva_server, tmp_path):
    """Hatrac jobs never expire: one the journal never heard of is found (GET obj;upload) and finished."""
    store = tmp_path / "store"
    data = random_bytes(5 * 32 * KiB + 7, 12)  # 6 chunks of 32 KiB
    with DerivaML("localhost", "1", working_dir=store) as ml:
        record_run(ml, {"large.bin": ("Model", data, [])})
    crashed = run_push(store, deriva_server, {"SATCHEL_CRASH_AT": "objects.after_job_created"})
    assert crashed.returncode == -9
    assert len(deriva_server.app.hatrac.jobs) == 1 and deriva_server.stats.requests("POST", "hatrac.job") == 1
    done = run_push(store, deriva_server, {})
    assert done.returncode == 0 and "OK" in done.stdout, done.stdout + done.stderr
    assert deriva_server.app.hatrac.jobs == {}, "no job left open on the server"
    assert deriva_server.stats.requests("POST", "hatrac.job") == 2, "one job created, one finalized"
    _check_the_one_model(deriva_server, tmp_path, data)


def test_an_adopted_workflow_row_removed_meanwhile_is_sent_again(deriva_server, remote, tmp_path):
    """A store adopts another machine's workflow row by URL, then that machine removes the row (it lost the
    race for the first row): the execution's insert is refused by its foreign key, and the workflow goes
    again, not the execution to failed for good."""
    url = "https://git.example.org/train.py"
    with DerivaML("localhost", "1", working_dir=tmp_path / "owner") as owner:
        owner.add_term("Workflow_Type", "Training", description="training")
        owner.add_workflow(owner.create_workflow("train.py", "Training", url=url))
        assert owner.push(remote=remote).ok
    (theirs,) = remote.catalog.get("deriva-ml", "Workflow")
    store = tmp_path / "store"
    with DerivaML("localhost", "1", working_dir=store) as ml:
        ml.add_term("Workflow_Type", "Training", description="training")
        exe = ml.create_execution(ExecutionConfiguration(workflow=ml.create_workflow("train.py", "Training", url=url)))
        with exe:
            exe.asset_file_path("Image", "cat.png").write_bytes(b"meow")
        exe.commit_output_assets()
    crashed = run_push(store, deriva_server, {"SATCHEL_CRASH_AT": "push.after_workflows"})
    assert crashed.returncode == -9  # the workflow was adopted (by URL) and recorded; no execution sent yet
    remote.catalog.delete("deriva-ml", "Workflow_Workflow_Type", urls.eq("Workflow", theirs["RID"]))
    remote.catalog.delete_rids("deriva-ml", "Workflow", [theirs["RID"]])
    with DerivaML("localhost", "1", working_dir=store) as ml:
        first = ml.push(remote=remote)
        assert not first.ok and "removed meanwhile" in first.failed[0].reason
        assert ml.sync_plan().failed == 0
        assert ml.push(remote=remote).ok
        assert ml.sync_plan().empty
    (workflow,) = remote.catalog.get("deriva-ml", "Workflow")
    (execution,) = remote.catalog.get("deriva-ml", "Execution")
    assert workflow["URL"] == url and execution["Workflow"] == workflow["RID"] != theirs["RID"]

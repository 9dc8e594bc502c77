"""Ctrl-C during a push, from outside: the CLI stops at a safe point within moments, says what is kept and
how to go on, exits 130, and the next push finishes the upload without sending it all again."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from satchel import DerivaML, ExecutionConfiguration

MiB = 1 << 20


def _satchel() -> str:
    return shutil.which("satchel") or str(Path(sys.executable).parent / "satchel")


def test_ctrl_c_stops_a_large_upload_at_a_chunk_and_the_next_push_resumes(deriva_server, tmp_path):
    store = tmp_path / "store"
    with DerivaML("localhost", "1", working_dir=store) as ml:
        ml.add_term("Workflow_Type", "Training", description="training")
        exe = ml.create_execution(ExecutionConfiguration(workflow=ml.create_workflow("t.py", "Training")))
        with exe:
            with open(exe.asset_file_path("Model", "big.bin"), "wb") as f:
                for _ in range(192):
                    f.write(os.urandom(MiB))
        exe.commit_output_assets()
        ml.set_remote(deriva_server.url)
    env = {**os.environ, "SATCHEL_TOKEN": deriva_server.token}
    push = [_satchel(), "push", "--store", str(store), "--chunk-threshold", "1", "--transfers", "1"]
    sent_before = deriva_server.stats.bytes_received("PUT")
    proc = subprocess.Popen(push, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    start = deriva_server.stats.requests()
    deadline = time.monotonic() + 60
    while deriva_server.stats.requests() < start + 20 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)  # a few chunks have gone
    assert proc.poll() is None, "the push finished before it could be interrupted: make the file bigger"
    proc.send_signal(signal.SIGINT)
    asked = time.monotonic()
    out, err = proc.communicate(timeout=60)
    assert time.monotonic() - asked < 5, "stopped at the next chunk, not at the end of the upload"
    assert proc.returncode == 130, (proc.returncode, err)
    assert "satchel push" in err and "Traceback" not in err, err
    with DerivaML("localhost", "1", working_dir=store) as ml:
        assert ml.status()["in_flight_uploads"] == 1  # the job is recorded, with its acknowledged chunks
    events = []
    with DerivaML("localhost", "1", working_dir=store) as ml, deriva_server.remote() as remote:
        assert ml.push(remote=remote, progress=events.append, chunked_threshold=MiB, chunk_size=MiB,
                       transfers=1).ok
    byte_events = [e for e in events if e.unit == "bytes"]
    # the resumed upload's bar starts at what was acknowledged before, and fills
    assert byte_events[0].done > MiB and byte_events[-1].done == byte_events[-1].total == 192 * MiB
    with deriva_server.remote() as remote:
        (row,) = remote.catalog.get("test-schema", "Model")
        assert row["Length"] == 192 * MiB and len(remote.hatrac.versions(row["URL"])) == 1
    # the chunks acknowledged before Ctrl-C were not sent again: at most the one in flight
    assert deriva_server.stats.bytes_received("PUT") - sent_before <= 193 * MiB

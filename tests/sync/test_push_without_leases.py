"""A server without RID leases (an older ERMrest): push still lands everything exactly once.

Assets are matched by their unique URL; workflows and executions carry a
correlation marker in a field satchel manages until their RID is recorded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from syncsupport import check_catalog, make_remote, populate

from satchel import DerivaML
from satchel.testing import DerivaServer
from satchel.testing.proxy import FaultProxy


@pytest.fixture
def old_server(tmp_path):
    with DerivaServer(tmp_path / "old-ermrest", rid_lease=False) as server:
        yield server


def no_markers_left(remote) -> None:
    for e in remote.catalog.get("deriva-ml", "Execution"):
        assert not (e["Status_Detail"] or "").startswith("satchel-pending:")
    for w in remote.catalog.get("deriva-ml", "Workflow"):
        assert not (w["Checksum"] or "").startswith("satchel-pending:")


def test_push_without_leases_lands_everything_once(old_server, tmp_path):
    assert old_server.app.ermrest.features["rid_lease"] is False
    with DerivaML("localhost", "1", working_dir=tmp_path / "store") as ml, \
            make_remote(old_server.url, old_server.token) as remote:
        outputs = populate(ml)
        result = ml.push(remote=remote, chunked_threshold=64 * 1024, chunk_size=32 * 1024)
        assert result.ok, result.failed
        assert "rid_pool" not in result.done, "no leases to pool"
        check_catalog(remote, outputs)
        no_markers_left(remote)
        assert ml.push(remote=remote).bytes_sent == 0 and ml.sync_plan().empty


SCRIPT = textwrap.dedent(
    """
    import os, sys
    from satchel import DerivaML
    sys.path.insert(0, os.environ["SYNC_SUPPORT"])
    from syncsupport import make_remote
    with DerivaML("localhost", "1", working_dir=sys.argv[1]) as ml, make_remote(sys.argv[2], sys.argv[3]) as remote:
        print("OK" if ml.push(remote=remote, chunked_threshold=64 * 1024, chunk_size=32 * 1024).ok else "FAILED")
    """
)


@pytest.mark.parametrize("point", [
    "rows.Workflow.after_insert", "push.Workflow.after_marker_found",
    "rows.Execution.after_insert", "push.Execution.after_marker_found",
    "rows.Model.after_insert", "push.after_executions", "push.after_status",
])
def test_crash_without_leases_then_complete(point, old_server, tmp_path):
    store = tmp_path / "store"
    with DerivaML("localhost", "1", working_dir=store) as ml:
        outputs = populate(ml)
    env = dict(os.environ, SYNC_SUPPORT=str(Path(__file__).parent))
    args = [sys.executable, "-c", SCRIPT, str(store), old_server.url, old_server.token]
    crashed = subprocess.run(args, env={**env, "SATCHEL_CRASH_AT": point}, capture_output=True, text=True, timeout=60)
    assert crashed.returncode == -9, crashed.stdout + crashed.stderr
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert "OK" in done.stdout, done.stdout + done.stderr
    with make_remote(old_server.url, old_server.token) as remote:
        check_catalog(remote, outputs)
        no_markers_left(remote)


@pytest.mark.parametrize("fragment", [":Execution?", "Workflow?", "test-schema:Model?"])
def test_lost_responses_without_leases(fragment, old_server, tmp_path):
    with FaultProxy(old_server.url, timeout=30) as proxy, \
            DerivaML("localhost", "1", working_dir=tmp_path / "store") as ml:
        outputs = populate(ml)
        proxy.lose_response(method="POST", path_contains=fragment)
        with make_remote(proxy.url, old_server.token) as remote:
            for _ in range(3):
                if ml.push(remote=remote, chunked_threshold=64 * 1024, chunk_size=32 * 1024).ok and ml.sync_plan().empty:
                    break
        assert proxy.pending() == 0
    with make_remote(old_server.url, old_server.token) as remote:
        check_catalog(remote, outputs)
        no_markers_left(remote)

"""Pushes of thousands of assets: every request within what Apache in front of ERMrest and Hatrac accepts.

A push of 3,000 assets once failed against a real server: its ``RID=any(...)`` lookups were longer
than the path Apache can stat, and Apache answered its own 404. The emulator now refuses those
requests the same way (tests/testing/test_front_end.py), so these pushes would fail here too.
"""

from __future__ import annotations

import hashlib

import pytest

from satchel import ExecutionConfiguration

from syncsupport import catalog_rows


def record_many(ml, n: int, table: str = "Image") -> dict[str, str]:
    """One execution with ``n`` small outputs whose names need percent-encoding; {file name: MD5}."""
    ml.add_term("Workflow_Type", "Training", description="training")
    exe = ml.create_execution(ExecutionConfiguration(workflow=ml.create_workflow("train.py", "Training")))
    md5s = {}
    with exe:
        for i in range(n):
            name = f"tile {i:05d} (é).png"
            data = f"tile {i}".encode()
            exe.asset_file_path(table, name, asset_types=["Image"]).write_bytes(data)
            md5s[name] = hashlib.md5(data).hexdigest()
    assert exe.commit_output_assets().total_uploaded == n
    return md5s


def push_and_check(ml, remote, server, n: int) -> None:
    md5s = record_many(ml, n)
    result = ml.push(remote=remote)
    assert result.ok, result.failed
    assert result.done["assets"] == n and result.done["objects"] == n
    rows = catalog_rows(remote, "Image")
    assert len(rows) == n and {r["Filename"]: r["MD5"] for r in rows} == md5s
    assert remote.catalog.count("test-schema", "Image_Execution") == n
    assert remote.catalog.count("test-schema", "Image_Asset_Type") == 2 * n  # Image and Output_File
    assert server.stats.requests("PUT", "hatrac.object") == n
    assert ml.sync_plan().empty


def test_a_push_of_3000_assets(new_store, remote, deriva_server):
    push_and_check(new_store(), remote, deriva_server, 3000)


@pytest.mark.slow
def test_a_push_of_20000_assets(new_store, remote, deriva_server):
    push_and_check(new_store(), remote, deriva_server, 20_000)

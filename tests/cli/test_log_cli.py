"""``satchel log`` as a user runs it: the real command line in a subprocess, pushes and pulls over loopback
to the emulator, a push killed mid-way, and the history read back as a table, as JSON and as failures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from satchel import DerivaML
from satchel.testing.pytest_plugin import deriva_server  # noqa: F401
from workflows import config


def satchel(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("satchel") or str(Path(sys.executable).parent / "satchel")
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    full_env.pop("SATCHEL_DEBUG", None)
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, env=full_env)


@pytest.fixture
def store(tmp_path: Path, deriva_server) -> Path:
    """A store with one good asset and one for a table the catalog lacks, its remote set to the emulator."""
    path = tmp_path / "store"
    with DerivaML("example.org", "1", working_dir=path) as ml:
        exe = ml.create_execution(config(ml, "log"))
        with exe:
            exe.asset_file_path("Execution_Asset", "weights.bin").write_bytes(b"w" * 4096)
            exe.asset_file_path("Imgae", "typo.png").write_bytes(b"a table nobody made")
        exe.commit_output_assets()
        ml.set_remote(deriva_server.url)
    return path


def test_log_of_a_store_that_never_synced_says_how_to(store):
    res = satchel("log", "--store", str(store))
    assert res.returncode == 0, res.stderr
    assert "nothing recorded" in res.stdout and "satchel push" in res.stdout and "satchel remote set" in res.stdout
    assert json.loads(satchel("log", "--store", str(store), "--json").stdout) == []
    only = satchel("log", "--store", str(store), "--operation", "pull")
    assert "no pull recorded" in only.stdout


def test_log_after_pushes_and_a_pull(store, deriva_server):
    env = {"SATCHEL_TOKEN": deriva_server.token}
    first = satchel("push", "--store", str(store), env=env)
    assert first.returncode == 7, first.stderr  # the typo'd table is refused, the rest lands
    assert satchel("pull", "--store", str(store), env=env).returncode == 0
    killed = satchel("push", "--store", str(store), env={**env, "SATCHEL_CRASH_AT": "push.after_terms"})
    assert killed.returncode == -9, killed.stderr

    entries = json.loads(satchel("log", "--store", str(store), "--json").stdout)
    assert [(e["operation"], e["outcome"]) for e in entries] == [
        ("push", "unfinished"), ("pull", "ok"), ("push", "partial")]
    dead, pulled, pushed = entries
    assert pushed["remote"] == f"{deriva_server.url}/ermrest/catalog/1"
    assert pushed["summary"]["done"]["assets"] == 1 and pushed["summary"]["bytes_sent"] == 4096
    assert pushed["summary"]["failed"] == 1 and "Imgae" in pushed["summary"]["failures"][0]
    assert pushed["duration_s"] >= 0 and pushed["finished_at"] >= pushed["started_at"]
    assert dead["finished_at"] is None and dead["duration_s"] is None
    assert pulled["summary"]["pulled"]["assets"] == 1

    table = satchel("log", "--store", str(store))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    row = {op: next(line for line in lines if f" {op} " in line and outcome in line)
           for op, outcome in (("push", "partial"), ("pull", "ok"))}
    assert "1 asset, 1 execution" in row["push"] and "4.0 KiB sent" in row["push"]
    assert row["push"].rstrip(" │").endswith("1")  # the failures column
    assert "1 asset" in row["pull"] and "other rows" in row["pull"]
    assert "did not finish" in table.stdout and "satchel log --failures" in table.stdout
    assert "Imgae" not in table.stdout, "failure messages only with --failures"

    failures = satchel("log", "--store", str(store), "--failures")
    assert "Imgae" in failures.stdout and "not in the catalog" in failures.stdout
    assert "its process ended before it did" in failures.stdout

    pulls = json.loads(satchel("log", "--store", str(store), "--operation", "pull", "--json").stdout)
    assert [e["id"] for e in pulls] == [pulled["id"]]
    newest = json.loads(satchel("log", "--store", str(store), "--limit", "1", "--json").stdout)
    assert [e["id"] for e in newest] == [dead["id"]]
    every = json.loads(satchel("log", "--store", str(store), "--limit", "0", "--json").stdout)
    assert every == entries
    bad = satchel("log", "--store", str(store), "--operation", "sync")
    assert bad.returncode == 2 and "bundle-export" in bad.stderr


def test_bundles_show_in_the_log(store, tmp_path):
    out = tmp_path / "work.zip"
    assert satchel("bundle", "export", str(out), "--store", str(store)).returncode == 0
    res = satchel("log", "--store", str(store), "--operation", "bundle-export")
    assert res.returncode == 0, res.stderr
    assert "bundle export to work.zip" in res.stdout
    assert "2 assets, 1 execution" in res.stdout and "2 objects" in res.stdout
    (entry,) = json.loads(satchel("log", "--store", str(store), "--json").stdout)
    assert entry["remote"] == str(out) and entry["outcome"] == "ok"

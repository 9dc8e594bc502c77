"""A full disk, for real: a small tmpfs mounted for the test (skipped where mounting is not allowed).

Each failure is one clear error naming what ran out, and the store stays as it was: the commit records
nothing and keeps its registrations, the journal keeps its last good state.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
from mounts import small_tmpfs

from satchel import CommitError, DerivaML, StoreError
from workflows import config

MiB = 1 << 20


@pytest.fixture
def small_fs(tmp_path: Path):
    with small_tmpfs(tmp_path / "small", "3m") as mount:
        yield mount


def test_cache_full_during_a_commit(small_fs, tmp_path):
    with DerivaML("example.org", "1", working_dir=tmp_path / "store", cache_dir=small_fs / "cache") as ml:
        exe = ml.create_execution(config(ml, "big output"))
        with exe:
            with open(exe.asset_file_path("Execution_Asset", "big.bin"), "wb") as f:
                f.write(os.urandom(5 * MiB))
        with pytest.raises(CommitError, match="no space left on the file system of the cache") as caught:
            exe.commit_output_assets()
        assert "commit again" in str(caught.value)
        assert ml.status()["assets"] == 0
    db = sqlite3.connect(tmp_path / "store" / "journal.db")
    assert db.execute("SELECT count(*) FROM registrations").fetchone()[0] == 1  # still registered: commit later
    db.close()
    assert not [p for p in (small_fs / "cache" / "tmp").iterdir()], "no partial object left behind"


def test_journal_full(small_fs):
    store = small_fs / "store"
    with DerivaML("example.org", "1", working_dir=store) as ml:
        ml.create_execution(config(ml, "first"))
        filler = small_fs / "filler"
        with open(filler, "wb") as f:  # take the rest of the space
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        with pytest.raises(StoreError, match="no space left for the journal"):
            for i in range(200):  # enough rows to need a new page
                ml.create_execution(config(ml, "more " * 200 + str(i)))
        filler.unlink()
        assert len(ml.list_executions()) >= 1  # what was recorded before is there, and the store works again
        ml.create_execution(config(ml, "after"))


def test_a_store_on_read_only_media_reads_and_refuses_changes_plainly(small_fs):
    import shutil as _shutil
    import sys

    store = small_fs / "store"
    with DerivaML("example.org", "1", working_dir=store) as ml:
        exe = ml.create_execution(config(ml, "on a disk later made read-only"))
        with exe:
            exe.asset_file_path("Execution_Asset", "a.txt").write_text("bytes")
        exe.commit_output_assets()
    res = subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot remount read-only here: {res.stderr.decode().strip()}")
    exe_path = _shutil.which("satchel") or str(Path(sys.executable).parent / "satchel")
    for command in (["status", "--json"], ["ls"], ["verify"]):
        done = subprocess.run([exe_path, *command, "--store", str(store)], capture_output=True, text=True)
        assert done.returncode == 0, (command, done.stderr)
    pushed = subprocess.run([exe_path, "push", "--store", str(store)], capture_output=True, text=True,
                            env={**os.environ, "SATCHEL_TOKEN": "t"})
    assert pushed.returncode == 5 and "read-only media" in pushed.stderr and "Traceback" not in pushed.stderr
    with DerivaML("example.org", "1", working_dir=store) as ml:
        asset = next(iter(ml.find_assets()))
        assert asset.download(small_fs.parent / "out").read_text() == "bytes"
        with pytest.raises(StoreError, match="read-only media"):
            ml.create_execution(config(ml, "a change"))

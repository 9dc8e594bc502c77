"""How commit_output_assets puts staged bytes into the cache: taken by hardlink when it is safe, else copied.

A staged file (a new file written at the returned path, or the copy that
``copy_file=True`` makes) that the commit deletes anyway becomes the cache
object itself: no second write of its bytes. It is taken only when nothing else
can write to it: the staging folder is cleaned, the file has no other name, no
process holds it open for writing. Otherwise it is copied, as before. A copy
made by ``asset_file_path(copy_file=True)`` is hashed while it is written, so
the commit reads none of its bytes again.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from satchel import DerivaML, ExecutionConfiguration
from satchel.cache import objects as objects_mod
from satchel.errors import FileChangedError
from satchel.journal import queries as q
from satchel.journal import read_transaction

TABLE = "Execution_Asset"
BIG = objects_mod.SMALL + 12_345  # above the small-file path: streamed, and looked up in the stat cache


def new_exe(ml: DerivaML, workflow):
    return ml.create_execution(ExecutionConfiguration(workflow=workflow, description="capture test"))


def object_of(ml: DerivaML, rid: str) -> Path:
    a = ml.lookup_asset(rid)
    with read_transaction(ml.store.engine) as conn:
        (digest,) = q.digests_by_md5(conn, a.md5, a.length)
    return ml.store.cache.path_of(digest)


def old_file(path: Path, data: bytes) -> Path:
    """A file written a minute ago, as far as its mtime says (so a stat entry for it is not racy)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    past = path.stat().st_mtime_ns - 60_000_000_000
    os.utime(path, ns=(past, past))
    return path


@pytest.mark.parametrize("size", [10, BIG])
def test_a_staged_file_becomes_the_object_without_a_copy(ml, workflow, size):
    data = os.urandom(size)
    exe = new_exe(ml, workflow)
    with exe:
        p = exe.asset_file_path(TABLE, "model.bin")
        p.write_bytes(data)
    staged_inode = p.stat().st_ino
    report = exe.commit_output_assets()
    obj = object_of(ml, report.assets[0].asset_rid)
    st = obj.stat()
    assert st.st_ino == staged_inode, "the staged file itself became the object"
    assert (st.st_nlink, stat.S_IMODE(st.st_mode)) == (1, 0o444), "read-only, and its staged name is gone"
    assert not p.exists()
    assert obj.read_bytes() == data
    assert ml.verify().ok


def test_a_staged_file_still_open_for_writing_is_copied(ml, workflow):
    exe = new_exe(ml, workflow)
    with exe:
        p = exe.asset_file_path(TABLE, "train.log")
        log = open(p, "ab")  # noqa: SIM115 - e.g. a logging handler the script never closed
        log.write(b"epoch 1\n")
        log.flush()
    staged_inode = p.stat().st_ino
    report = exe.commit_output_assets()
    log.write(b"written after the commit\n")  # lands in the (now unlinked) staged file, never in the cache
    log.close()
    obj = object_of(ml, report.assets[0].asset_rid)
    assert obj.stat().st_ino != staged_inode
    assert obj.read_bytes() == b"epoch 1\n"
    assert ml.verify().ok


def test_a_writer_in_another_process_keeps_the_file_from_being_taken(ml, workflow):
    exe = new_exe(ml, workflow)
    with exe:
        p = exe.asset_file_path(TABLE, "shared.bin")
        p.write_bytes(b"v1")
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import sys; f = open({str(p)!r}, 'ab'); print('open', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline() == b"open\n"
        staged_inode = p.stat().st_ino
        report = exe.commit_output_assets()
    finally:
        holder.communicate(b"")
    assert object_of(ml, report.assets[0].asset_rid).stat().st_ino != staged_inode


def test_a_staged_file_with_another_name_is_copied(ml, workflow, tmp_path):
    exe = new_exe(ml, workflow)
    with exe:
        p = exe.asset_file_path(TABLE, "weights.pt")
        p.write_bytes(b"weights v1")
    keep = tmp_path / "keep.pt"
    os.link(p, keep)  # the user kept a hardlink of the output
    report = exe.commit_output_assets()
    obj = object_of(ml, report.assets[0].asset_rid)
    assert obj.stat().st_ino != keep.stat().st_ino
    keep.write_bytes(b"weights v2, edited")  # the user's file stays writable and separate
    assert obj.read_bytes() == b"weights v1"
    assert ml.verify().ok


def test_without_the_clean_up_the_staged_file_stays_separate_and_writable(ml, workflow):
    exe = new_exe(ml, workflow)
    with exe:
        p = exe.asset_file_path(TABLE, "kept.bin")
        p.write_bytes(b"kept")
    report = exe.commit_output_assets(clean_folder=False)
    obj = object_of(ml, report.assets[0].asset_rid)
    st = p.stat()
    assert st.st_ino != obj.stat().st_ino
    assert stat.S_IMODE(st.st_mode) & 0o200, "the staged file is still the user's to write"


def test_a_staged_name_replaced_by_a_symlink_never_takes_its_target(ml, workflow, tmp_path):
    target = tmp_path / "elsewhere.bin"
    target.write_bytes(b"the user's own file")
    mode = stat.S_IMODE(target.stat().st_mode)
    exe = new_exe(ml, workflow)
    with exe:
        p = exe.asset_file_path(TABLE, "out.bin")
        os.symlink(target, p)
    report = exe.commit_output_assets()
    st = target.stat()
    assert (st.st_nlink, stat.S_IMODE(st.st_mode)) == (1, mode)
    assert object_of(ml, report.assets[0].asset_rid).read_bytes() == b"the user's own file"


def test_symlink_mode_never_touches_the_users_file(ml, workflow, tmp_path):
    src = old_file(tmp_path / "data.csv", b"a,b\n1,2\n")
    mode = stat.S_IMODE(src.stat().st_mode)
    exe = new_exe(ml, workflow)
    with exe:
        exe.asset_file_path(TABLE, src)
    exe.commit_output_assets()
    st = src.stat()
    assert (st.st_nlink, stat.S_IMODE(st.st_mode)) == (1, mode)


# --- copy mode ------------------------------------------------------------------------------------


def test_copy_mode_snapshots_at_registration_and_the_commit_reads_nothing(ml, workflow, tmp_path, count_byte_reads):
    data = os.urandom(BIG)
    src = old_file(tmp_path / "weights.bin", data)
    exe = new_exe(ml, workflow)
    with exe:
        c = exe.asset_file_path(TABLE, src, copy_file=True)
    src.write_bytes(b"overwritten after registration")  # the snapshot was taken at registration
    assert c.read_bytes() == data and not c.is_symlink()
    staged_inode = c.stat().st_ino
    reads = count_byte_reads()
    report = exe.commit_output_assets()
    assert reads == [], "the commit read the staged copy again"
    obj = object_of(ml, report.assets[0].asset_rid)
    assert obj.stat().st_ino == staged_inode, "the copy became the object: its bytes were written once"
    a = ml.lookup_asset(report.assets[0].asset_rid)
    assert (a.length, a.md5) == (len(data), hashlib.md5(data).hexdigest())
    assert ml.verify().ok


def test_copy_mode_commits_an_edit_of_the_staged_copy(ml, workflow, tmp_path):
    data = os.urandom(BIG)
    src = old_file(tmp_path / "weights.bin", data)
    exe = new_exe(ml, workflow)
    with exe:
        c = exe.asset_file_path(TABLE, src, copy_file=True)
        edited = bytes(reversed(data))  # same size: only the modification time tells
        c.write_bytes(edited)
    report = exe.commit_output_assets()
    a = ml.lookup_asset(report.assets[0].asset_rid)
    assert a.md5 == hashlib.md5(edited).hexdigest()
    assert object_of(ml, a.rid).read_bytes() == edited
    assert ml.verify().ok


def test_copy_mode_of_a_file_modified_just_now_is_hashed_again_at_commit(ml, workflow, tmp_path, count_byte_reads):
    """A source whose mtime is not clearly older than the copy's record could still change within the same
    timestamp: the digest recorded at registration is racy and the commit must not trust it."""
    data = os.urandom(BIG)
    src = tmp_path / "fresh.bin"
    src.write_bytes(data)
    soon = src.stat().st_mtime_ns + 5_000_000_000
    os.utime(src, ns=(soon, soon))
    exe = new_exe(ml, workflow)
    with exe:
        exe.asset_file_path(TABLE, src, copy_file=True)
    reads = count_byte_reads()
    report = exe.commit_output_assets()
    assert reads, "a racy stat entry was trusted"
    assert object_of(ml, report.assets[0].asset_rid).read_bytes() == data


KILLED_REGISTRATION = r"""
import sys
from satchel import DerivaML, ExecutionConfiguration
store, src = sys.argv[1:3]
with DerivaML("example.org", "1", working_dir=store) as ml:
    ml.add_term("Workflow_Type", "Testing", description="tests")
    exe = ml.create_execution(ExecutionConfiguration(workflow=ml.create_workflow("t.py", "Testing"),
                                                     description="killed while registering"))
    print(exe.rid, flush=True)
    with exe:
        exe.asset_file_path("Execution_Asset", src, copy_file=True)
"""


def test_a_kill_during_a_copy_registration_leaves_nothing_the_next_run_trips_on(tmp_path):
    data = os.urandom(BIG)
    src = old_file(tmp_path / "weights.bin", data)
    store = tmp_path / "store"
    env = {**os.environ, "SATCHEL_CRASH_AT": "register.before_rename"}
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_REGISTRATION, str(store), str(src)],
        capture_output=True, env=env, timeout=120, check=False,
    )
    assert proc.returncode == -9, proc.stderr.decode()
    rid = proc.stdout.decode().split()[0]
    with DerivaML("example.org", "1", working_dir=store) as ml:
        exe = ml.resume_execution(rid)
        assert exe._handed_out == {}, "the killed registration left no row"
        c = exe.asset_file_path(TABLE, src, copy_file=True)  # the same name again (the run is still Running)
        report = exe.commit_output_assets()
        assert report.total_uploaded == 1
        assert object_of(ml, report.assets[0].asset_rid).read_bytes() == data
        assert not c.parent.exists(), "the clean-up took the killed registration's temp file too"
        assert ml.verify().ok


def test_the_journal_never_commits_before_the_bytes_are_synced(ml, workflow, monkeypatch):
    """The sync runs beside the journal transaction; a failed sync must abort that transaction."""
    exe = new_exe(ml, workflow)
    with exe:
        for i in range(3):
            exe.asset_file_path(TABLE, f"out-{i}.bin").write_bytes(f"output {i}".encode())
    real_sync = objects_mod.sync_filesystem

    def failing_sync(path):
        raise OSError(5, "Input/output error (injected)", str(path))

    monkeypatch.setattr(objects_mod, "sync_filesystem", failing_sync)
    with pytest.raises(OSError, match="injected"):
        exe.commit_output_assets()
    with sqlite3.connect(ml.store.journal_path) as db:
        assert db.execute("SELECT count(*) FROM assets").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM registrations WHERE asset_id IS NULL").fetchone() == (3,)
    monkeypatch.setattr(objects_mod, "sync_filesystem", real_sync)
    assert exe.commit_output_assets().total_uploaded == 3  # the staged files, taken or not, commit now
    assert ml.verify().ok


def test_a_staged_file_that_changes_during_the_commit_stays_writable(ml, workflow, monkeypatch):
    exe = new_exe(ml, workflow)
    with exe:
        p = exe.asset_file_path(TABLE, "growing.log")
        p.write_bytes(b"line 1\n")
    real_read = objects_mod._read_all

    def append_while_reading(fd, size_hint):
        data = real_read(fd, size_hint)
        with open(p, "ab") as f:  # a writer that the lease could not see yet: it opens after the check
            f.write(b"line 2\n")
        return data

    monkeypatch.setattr(objects_mod, "_read_all", append_while_reading)
    with pytest.raises(FileChangedError, match="changed while"):
        exe.commit_output_assets()
    monkeypatch.setattr(objects_mod, "_read_all", real_read)
    assert stat.S_IMODE(p.stat().st_mode) & 0o200, "the file is the user's to finish writing"
    report = exe.commit_output_assets()
    assert object_of(ml, report.assets[0].asset_rid).read_bytes() == b"line 1\nline 2\n"

"""The sync history (``sync_log``): every push, pull and bundle export or import leaves one entry, with what
it moved and how it ended, and an entry whose process died shows as one that never finished.

Real journal, real HTTP to the emulator over loopback, real subprocesses for the kills.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from mounts import small_tmpfs
from syncsupport import make_remote, record_run

from satchel import DerivaML, Interrupted, RemoteError, StoreError
from satchel.journal.synclog import SyncLogRecord

PUSH_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from satchel import DerivaML
    sys.path.insert(0, os.environ["SYNC_SUPPORT"])
    from syncsupport import make_remote
    with DerivaML("localhost", "1", working_dir=sys.argv[1]) as ml, make_remote(sys.argv[2], sys.argv[3]) as remote:
        print("OK" if ml.push(remote=remote).ok else "FAILED")
    """
)


def run_push(store: Path, server, **env_extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SYNC_SUPPORT=str(Path(__file__).parent), **env_extra)
    return subprocess.run([sys.executable, "-c", PUSH_SCRIPT, str(store), server.url, server.token],
                          capture_output=True, text=True, timeout=120, env=env)


def lock_files(ml: DerivaML) -> list[str]:
    folder = ml.working_dir / "sync-log"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_push_and_pull_are_recorded_with_what_they_moved(new_store, remote, deriva_server):
    ml = new_store()
    before = datetime.now(timezone.utc)
    record_run(ml, {"m.bin": ("Model", b"m" * 5000, []), "i.png": ("Image", b"png", [])})
    pushed = ml.push(remote=remote)
    pulled = ml.pull(remote=remote)
    again = ml.push(remote=remote)
    assert pushed.ok and pulled.ok and again.ok

    last, pull, push = ml.sync_history()
    assert isinstance(push, SyncLogRecord)
    assert [e.operation for e in (last, pull, push)] == ["push", "pull", "push"]
    assert last.id > pull.id > push.id
    catalog = f"{deriva_server.url}/ermrest/catalog/1"
    assert {e.remote for e in (last, pull, push)} == {catalog}
    assert {e.outcome for e in (last, pull, push)} == {"ok"} and push.error is None
    assert before <= push.started_at <= push.finished_at <= pull.started_at
    assert push.duration == (push.finished_at - push.started_at).total_seconds() >= 0

    assert push.summary["done"]["assets"] == 2 and push.summary["done"]["executions"] == 1
    assert push.summary["bytes_sent"] == pushed.bytes_sent == 5003
    assert push.summary["failed"] == 0 and push.summary["failures"] == []
    assert pull.summary["pulled"] == {k: v for k, v in pulled.pulled.items() if v}
    assert last.summary["bytes_sent"] == 0 and "assets" not in last.summary["done"]

    assert [e.id for e in ml.sync_history(limit=2)] == [last.id, pull.id]
    assert [e.id for e in ml.sync_history(operation="pull")] == [pull.id]
    assert ml.sync_history(operation="bundle-import") == []
    assert lock_files(ml) == [], "a finished entry lets go of its lock file"
    with pytest.raises(ValueError, match="bundle-export"):
        ml.sync_history(operation="sync")
    with pytest.raises(ValueError, match="positive"):
        ml.sync_history(limit=0)


def test_a_push_with_refused_items_is_partial_and_keeps_the_reasons(new_store, remote):
    ml = new_store()
    record_run(ml, {"ok.bin": ("Model", b"fine", []), "typo.png": ("Imgae", b"unknown table", [])})
    result = ml.push(remote=remote)
    assert len(result.failed) == 1
    (entry,) = ml.sync_history()
    assert entry.outcome == "partial" and entry.error is None
    assert entry.summary["failed"] == 1 and entry.summary["done"]["assets"] == 1
    (line,) = entry.summary["failures"]
    assert line.startswith("objects ") and "Imgae" in line


def test_an_unreachable_server_is_a_failed_entry_with_the_message(new_store, deriva_server):
    ml = new_store()
    record_run(ml, {"a.bin": ("Model", b"a", [])})
    with make_remote("http://127.0.0.1:9", deriva_server.token) as nowhere:
        with pytest.raises(RemoteError) as caught:
            ml.push(remote=nowhere)
    (entry,) = ml.sync_history()
    assert (entry.operation, entry.outcome, entry.remote) == ("push", "failed", "http://127.0.0.1:9/ermrest/catalog/1")
    assert entry.error == str(caught.value) and "127.0.0.1:9" in entry.error
    assert entry.finished_at is not None and entry.summary == {}


def test_a_server_error_fails_the_entry_and_the_next_push_is_ok(new_store, remote, deriva_server):
    ml = new_store()
    record_run(ml, {"a.bin": ("Model", b"a", [])})
    deriva_server.inject(403, "Access forbidden.", method="GET", path_contains="/schema", times=100)
    with pytest.raises(RemoteError, match="forbidden"):
        ml.push(remote=remote)
    deriva_server.clear_faults()
    assert ml.pull(remote=remote).ok and ml.push(remote=remote).ok
    pushed, pulled, failed = ml.sync_history()
    assert (failed.outcome, pulled.outcome, pushed.outcome) == ("failed", "ok", "ok")
    assert "forbidden" in failed.error
    assert pushed.summary["done"]["assets"] == 1


def test_a_push_stopped_when_asked_is_interrupted_with_what_it_did(new_store, remote):
    ml = new_store()
    ml.add_term("Asset_Type", "Weights", description="weights")
    record_run(ml, {"a.bin": ("Model", b"a", ["Weights"])})
    stop = threading.Event()
    stop.set()  # stops at the first safe point: after the terms step
    with pytest.raises(Interrupted) as caught:
        ml.push(remote=remote, stop=stop)
    (entry,) = ml.sync_history()
    assert entry.outcome == "interrupted" and entry.error == str(caught.value)
    assert entry.summary["done"] == {"terms": 2}  # Training and Weights, the first step's work
    assert ml.push(remote=remote).ok
    assert [e.outcome for e in ml.sync_history()] == ["ok", "interrupted"]


def test_a_running_push_shows_as_running_to_another_reader(new_store, remote, deriva_server):
    ml = new_store()
    record_run(ml, {"a.bin": ("Model", b"a" * 100, [])})
    in_objects, go_on = threading.Event(), threading.Event()

    def progress(event):
        if event.step == "objects" and not in_objects.is_set():
            in_objects.set()
            go_on.wait(30)

    worker = threading.Thread(target=lambda: ml.push(remote=remote, progress=progress))
    worker.start()
    try:
        assert in_objects.wait(30)
        with DerivaML("localhost", "1", working_dir=ml.working_dir) as reader:
            (entry,) = reader.sync_history()
            assert entry.outcome == "running" and entry.finished_at is None and entry.duration is None
    finally:
        go_on.set()
        worker.join(60)
    (entry,) = ml.sync_history()
    assert entry.outcome == "ok"


def test_a_killed_push_never_finished_and_the_next_push_goes_on(new_store, remote, deriva_server):
    ml = new_store()
    record_run(ml, {"a.bin": ("Model", b"a" * 1000, []), "b.png": ("Image", b"b", [])})
    store = ml.working_dir
    ml.close()
    killed = run_push(store, deriva_server, SATCHEL_CRASH_AT="push.after_executions")
    assert killed.returncode == -9, killed.stderr
    with DerivaML("localhost", "1", working_dir=store) as ml:
        (dead,) = ml.sync_history()
        assert dead.outcome == "unfinished" and dead.finished_at is None and not dead.finished
        assert lock_files(ml) == [f"{dead.id}.lock"]  # left by the dead process, held by nobody
    done = run_push(store, deriva_server)
    assert done.returncode == 0 and "OK" in done.stdout, done.stderr
    with DerivaML("localhost", "1", working_dir=store) as ml:
        finished, dead_again = ml.sync_history()
        assert (finished.outcome, dead_again.id, dead_again.outcome) == ("ok", dead.id, "unfinished")
        assert finished.summary["done"]["assets"] == 2 and "executions" not in finished.summary["done"]
        assert lock_files(ml) == [], "the next entry swept the dead one's lock file"
        db = sqlite3.connect(store / "journal.db")
        try:
            (stored,) = db.execute("SELECT outcome FROM sync_log WHERE id = ?", (dead.id,)).fetchone()
        finally:
            db.close()
        assert stored == "running", "history is reported, not rewritten"


def test_bundle_export_and_import_are_recorded(new_store, tmp_path):
    lab = new_store("lab")
    record_run(lab, {"w.bin": ("Model", b"w" * 700, []), "log.txt": ("Execution_Metadata", b"epoch 1", [])})
    out = tmp_path / "usb" / "work.zip"
    out.parent.mkdir()
    exported = lab.export_bundle(out)
    (export,) = lab.sync_history()
    assert (export.operation, export.outcome, export.remote) == ("bundle-export", "ok", str(out))
    assert export.summary["bundle_id"] == exported.bundle_id and export.summary["records"]["asset"] == 2
    assert export.summary["objects"] == 2 and export.summary["object_bytes"] == 707

    gateway = new_store("gateway")
    imported = gateway.import_bundle(out)
    again = gateway.import_bundle(out)
    assert not imported.already_imported and again.already_imported
    second, first = gateway.sync_history(operation="bundle-import")
    assert first.outcome == second.outcome == "ok" and first.remote == str(out)
    assert first.summary["applied"]["assets"] == 2 and second.summary["already_imported"] is True

    cut = tmp_path / "cut.zip"
    cut.write_bytes(out.read_bytes()[:-200])
    with pytest.raises(Exception) as caught:
        gateway.import_bundle(cut)
    failed = gateway.sync_history(limit=1)[0]
    assert (failed.outcome, failed.remote, failed.error) == ("failed", str(cut), str(caught.value))


def test_a_history_that_cannot_be_written_never_fails_the_push(new_store, remote, caplog):
    ml = new_store()
    record_run(ml, {"a.bin": ("Model", b"a", [])})
    (ml.working_dir / "sync-log").write_text("a file where the history keeps its locks")
    with caplog.at_level(logging.WARNING, logger="satchel.sync"):
        result = ml.push(remote=remote)
    assert result.ok and result.done["assets"] == 1
    assert "without an entry in the sync history" in caplog.text
    assert ml.sync_history() == []


@pytest.fixture
def small_fs(tmp_path: Path):
    with small_tmpfs(tmp_path / "small", "4m") as mount:
        yield mount


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def test_a_full_disk_fails_the_push_with_its_own_error_not_the_historys(small_fs, deriva_server, caplog):
    store = small_fs / "store"
    with DerivaML("localhost", "1", working_dir=store) as ml, make_remote(deriva_server.url, deriva_server.token) as r:
        record_run(ml, {"a.bin": ("Model", b"a", [])})
        assert ml.push(remote=r).ok
        record_run(ml, {"b.bin": ("Model", b"b", [])})
        filler = _fill(small_fs)
        try:
            with caplog.at_level(logging.WARNING, logger="satchel.sync"):
                with pytest.raises(StoreError, match="no space left for the journal"):
                    ml.push(remote=r)
            assert "without an entry in the sync history" in caplog.text
        finally:
            filler.unlink()
        assert ml.push(remote=r).done["assets"] == 1
        assert [e.outcome for e in ml.sync_history()] == ["ok", "ok"]
        assert lock_files(ml) == []


def test_an_end_the_journal_refuses_leaves_the_result_returned(new_store, remote, caplog):
    """The row of a push cannot be completed (SQLite refuses the update): the push still returns its
    result, the entry shows as never finished, and the next push records normally."""
    ml = new_store()
    record_run(ml, {"a.bin": ("Model", b"a", [])})
    db = sqlite3.connect(ml.store.journal_path)
    db.execute("CREATE TRIGGER refuse_end BEFORE UPDATE ON sync_log BEGIN SELECT RAISE(ABORT, 'refused'); END")
    db.commit()
    with caplog.at_level(logging.WARNING, logger="satchel.sync"):
        result = ml.push(remote=remote)
    assert result.ok and result.done["assets"] == 1
    assert "could not be written to the sync history" in caplog.text and "refused" in caplog.text
    (entry,) = ml.sync_history()
    assert entry.outcome == "unfinished" and lock_files(ml) == []
    db.execute("DROP TRIGGER refuse_end")
    db.commit()
    db.close()
    assert ml.push(remote=remote).ok
    assert [e.outcome for e in ml.sync_history()] == ["ok", "unfinished"]


def test_the_history_of_a_store_on_read_only_media_is_read(small_fs, deriva_server):
    store = small_fs / "store"
    with DerivaML("localhost", "1", working_dir=store) as ml, make_remote(deriva_server.url, deriva_server.token) as r:
        record_run(ml, {"a.bin": ("Model", b"a", [])})
        assert ml.push(remote=r).ok
    killed = run_push(store, deriva_server, SATCHEL_CRASH_AT="push.after_terms")
    assert killed.returncode == -9, killed.stderr
    with DerivaML("localhost", "1", working_dir=store) as ml:  # closing it checkpoints the WAL, which an
        assert [e.outcome for e in ml.sync_history()] == ["unfinished", "ok"]  # immutable reader ignores
    res = subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot remount read-only here: {res.stderr.decode().strip()}")
    with DerivaML("localhost", "1", working_dir=store) as ml:
        assert ml.store.read_only
        assert [e.outcome for e in ml.sync_history()] == ["unfinished", "ok"]
    exe = shutil.which("satchel") or str(Path(sys.executable).parent / "satchel")
    shown = subprocess.run([exe, "log", "--json", "--store", str(store)], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert [e["outcome"] for e in json.loads(shown.stdout)] == ["unfinished", "ok"]

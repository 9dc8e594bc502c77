"""``gc``: what it frees, what it never frees, and that nothing races it.

Real stores, real pushes to the emulator (what makes bytes "on the server"),
real subprocesses for the crash and the lock.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from satchel import AssetSpec, BadArgumentError, DerivaML, ExecutionConfiguration, ObjectMissingError
from satchel.cache import Digest
from satchel.journal import queries as q
from satchel.journal import read_transaction, retention
from satchel.testing.pytest_plugin import deriva_server, shared_deriva_server  # noqa: F401
from workflows import a_workflow, config

DAY = 86400


def record(ml: DerivaML, contents: dict[str, bytes], description: str = "run") -> list[str]:
    """One execution committing these files; their asset RIDs, in order."""
    exe = ml.create_execution(config(ml, description))
    with exe:
        for name, data in contents.items():
            exe.asset_file_path("Execution_Asset", name).write_bytes(data)
    report = exe.commit_output_assets()
    by_name = {a.file_name.rsplit("/", 1)[-1]: a.asset_rid for a in report.assets}
    return [by_name[n] for n in contents]


def blake3_of(ml: DerivaML, rid: str) -> str:
    with read_transaction(ml.workspace.engine) as conn:
        (asset_id,) = q.resolve_asset_rids(conn, [rid]).values()
        return conn.connection.driver_connection.execute(
            "SELECT blake3 FROM assets WHERE id = ?", (asset_id,)).fetchone()[0]


def digest_of(ml: DerivaML, rid: str) -> Digest:
    a = ml.lookup_asset(rid)
    return Digest(blake3_of(ml, rid), a.md5, a.length)


def age(ml: DerivaML, b3: str, days: float) -> None:
    """Make an object look last used ``days`` ago."""
    t = time.time() - days * DAY
    os.utime(ml.store.cache.path_of(b3), (t, t))


@pytest.fixture
def pushed(tmp_path, deriva_server):
    """A store with three assets on the server and one not."""
    ml = DerivaML("example.org", "1", working_dir=tmp_path / "store")
    synced = record(ml, {"a.bin": b"a" * 3000, "b.bin": b"b" * 2000, "c.bin": b"c" * 1000})
    with deriva_server.remote() as remote:
        assert ml.push(remote=remote).ok
    (local,) = record(ml, {"d.bin": b"d" * 500}, "not pushed")
    yield ml, synced, local, deriva_server
    ml.close()


def test_gc_frees_what_the_server_has_and_keeps_what_it_does_not(pushed, tmp_path):
    ml, synced, local, _ = pushed
    plan = ml.gc(dry_run=True)
    assert (plan.dry_run, plan.removed_objects, plan.removed_bytes) == (True, 3, 6000)  # says, removes nothing
    assert all(ml.store.cache.has(blake3_of(ml, r)) for r in synced)
    report = ml.gc()
    assert (report.removed_objects, report.removed_bytes) == (3, 6000)
    assert report.kept["unsynced"] == {"objects": 1, "bytes": 500}
    assert report.size_before == 6500 and report.size_after == 500
    assert not any(ml.store.cache.has(blake3_of(ml, r)) for r in synced)
    assert ml.store.cache.verify_object(digest_of(ml, local))  # the only copy: kept, intact
    assert ml.verify().ok and ml.verify().lost_assets == []
    # the metadata stays; the bytes are one pull away, and a download says so
    a = ml.lookup_asset(synced[0])
    assert a.length == 3000
    with pytest.raises(ObjectMissingError, match=f"satchel pull --asset {a.rid}"):
        ml.lookup_asset(synced[0]).download(tmp_path / "out")
    assert ml.gc().removed_objects == 0  # nothing left to free


def test_bytes_shared_with_an_unsynced_asset_stay(pushed):
    ml, synced, _, _ = pushed
    (again,) = record(ml, {"same-as-a.bin": b"a" * 3000}, "the same bytes, not pushed")
    assert blake3_of(ml, again) == blake3_of(ml, synced[0])
    ml.gc()
    assert ml.store.cache.has(blake3_of(ml, synced[0]))


def test_pinned_and_open_execution_bytes_stay(pushed, tmp_path):
    ml, synced, _, _ = pushed
    assert ml.pin_assets([synced[0]]) == 1 and ml.pin_assets([synced[0]]) == 0
    exe = ml.create_execution(config(ml, "still running"))
    exe.execution_start()
    exe.download_asset(synced[1], tmp_path / "in")
    report = ml.gc()
    assert report.removed_objects == 1  # c.bin only
    assert report.kept["pinned"]["objects"] == 1 and report.kept["open-execution"]["objects"] == 1
    # once the execution is done and the pin gone, they go too
    exe.execution_stop()
    exe.commit_output_assets()
    assert ml.unpin_assets([synced[0]]) == 1
    assert ml.gc().removed_objects == 2


def test_download_with_use_cache_pins(pushed, tmp_path):
    ml, synced, _, _ = pushed
    exe = ml.create_execution(config(ml, "reads"))
    with exe:
        exe.download_asset(synced[2], tmp_path / "in", use_cache=True)
    exe.commit_output_assets()
    ml.gc()
    assert ml.store.cache.has(blake3_of(ml, synced[2]))
    assert not ml.store.cache.has(blake3_of(ml, synced[1]))


def test_keep_days_keeps_what_was_used_recently(pushed, tmp_path):
    ml, synced, _, _ = pushed
    for rid in synced:
        age(ml, blake3_of(ml, rid), 30)
    ml.lookup_asset(synced[0]).download(tmp_path / "out")  # a download is a use
    ml.verify()  # a check is not
    report = ml.gc(keep_days=7)
    assert report.removed_objects == 2 and report.kept["recent"]["objects"] == 1
    assert ml.store.cache.has(blake3_of(ml, synced[0]))


def test_max_size_removes_least_recently_used_first(pushed):
    ml, synced, _, _ = pushed
    for rid, days in zip(synced, (3, 1, 2)):  # a.bin the oldest, then c.bin
        age(ml, blake3_of(ml, rid), days)
    report = ml.gc(max_size="3000")  # 6500 -> remove a (3000): 3500; remove c (1000): 2500
    assert report.removed_bytes == 4000 and report.size_after == 2500 and report.over_target == 0
    assert [ml.store.cache.has(blake3_of(ml, r)) for r in synced] == [False, True, False]
    assert report.kept["within-size"]["objects"] == 1
    short = ml.gc(max_size=100)  # only the unsynced 500 B and b.bin's 2000 B are left; b.bin goes
    assert short.size_after == 500 and short.over_target == 400


@pytest.mark.parametrize("kwargs", [{"keep_days": -1}, {"max_size": "ten gigs"}, {"max_size": -5},
                                    {"keep_days": "7"}])
def test_bad_options_are_clear_errors_and_remove_nothing(pushed, kwargs):
    ml, synced, _, _ = pushed
    with pytest.raises(BadArgumentError):
        ml.gc(**kwargs)
    assert all(ml.store.cache.has(blake3_of(ml, r)) for r in synced)


def test_gc_waits_for_a_commit_in_another_process(pushed):
    """A process using the cache (as a commit does between capture and journal) holds gc off."""
    ml, synced, _, _ = pushed
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from satchel.cache.uselock import UseLock
        from pathlib import Path
        lock = UseLock(Path({str(ml.store.cache.root)!r}) / "gc.lock")
        with lock.shared():
            print("holding", flush=True)
            time.sleep(1.5)
    """)], stdout=subprocess.PIPE, text=True)
    with holder:
        assert holder.stdout.readline().strip() == "holding"
        waited: list[float] = []
        start = time.monotonic()
        report = ml.gc(on_wait=lambda: waited.append(time.monotonic()))
        assert waited and time.monotonic() - start > 0.5  # it waited, then ran
        assert report.removed_objects == 3


def test_gc_refuses_to_run_beside_a_sync(pushed):
    from satchel import StoreBusyError
    from satchel.sync.lock import sync_lock

    ml, synced, _, _ = pushed
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from pathlib import Path
        from satchel.sync.lock import sync_lock
        with sync_lock(Path({str(ml.store.root)!r})):
            print("syncing", flush=True)
            time.sleep(30)
    """)], stdout=subprocess.PIPE, text=True)
    with holder:
        try:
            assert holder.stdout.readline().strip() == "syncing"
            with pytest.raises(StoreBusyError, match="another sync"):
                ml.gc()
            assert all(ml.store.cache.has(blake3_of(ml, r)) for r in synced)
        finally:
            holder.kill()


# --- crash mid-gc ---------------------------------------------------------------------------------


def test_a_gc_killed_between_removals_leaves_a_store_the_next_gc_finishes(pushed, tmp_path):
    ml, synced, local, server = pushed
    root = ml.store.root
    ml.close()
    env = {**os.environ, "SATCHEL_CRASH_AT": "gc.after_remove#2"}
    res = subprocess.run([sys.executable, "-m", "satchel.cli", "gc", "--store", str(root)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == -9, res.stderr  # SIGKILLed after removing two objects
    with DerivaML("example.org", "1", working_dir=root) as again:
        present = [again.store.cache.has(blake3_of(again, r)) for r in synced]
        assert present.count(False) == 2
        assert again.store.cache.verify_object(digest_of(again, local))
        check = again.verify()
        assert check.ok and check.quarantined == [] and check.lost_assets == []
        report = again.gc()
        assert report.removed_objects == 1 and report.kept["unsynced"]["objects"] == 1
        # and every byte comes back from the server, verified
        with server.remote() as remote:
            result = again.pull(remote=remote, assets=synced, metadata=False)
            assert result.ok and result.done["bytes"] == 3
        for rid in synced:
            again.lookup_asset(rid).download(tmp_path / "back")
        assert (tmp_path / "back" / "a.bin").read_bytes() == b"a" * 3000


# --- the property: gc never removes bytes an unsynced asset, a pin or an open execution needs -------


@pytest.fixture(scope="module")
def base_store(tmp_path_factory, shared_deriva_server):
    """Six assets on the server (two sharing bytes), built once and copied for each example."""
    root = tmp_path_factory.mktemp("gc-base") / "store"
    with DerivaML("example.org", "1", working_dir=root) as ml:
        rids = record(ml, {f"s{i}.bin": bytes([65 + i % 5]) * (700 + 300 * (i % 5)) for i in range(6)})
        with shared_deriva_server.remote() as remote:
            assert ml.push(remote=remote).ok
    return root, rids


example = st.fixed_dictionaries({
    "pinned": st.lists(st.integers(0, 5), max_size=3),
    "open_inputs": st.lists(st.integers(0, 5), max_size=3),
    "closed_inputs": st.lists(st.integers(0, 5), max_size=2),
    "unsynced_copies": st.lists(st.integers(0, 5), max_size=2),  # new local assets with a synced one's bytes
    "ages": st.lists(st.floats(0, 60), min_size=6, max_size=6),
    "keep_days": st.one_of(st.none(), st.floats(0, 40)),
    "max_size": st.one_of(st.none(), st.integers(0, 8000)),
})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=example)
def test_gc_never_removes_needed_bytes(base_store, tmp_path_factory, case):
    base, rids = base_store
    root = tmp_path_factory.mktemp("gc-case") / "store"
    shutil.copytree(base, root)
    with DerivaML("example.org", "1", working_dir=root) as ml:
        inputs = tmp_path_factory.mktemp("inputs")
        ml.pin_assets([rids[i] for i in case["pinned"]])
        if case["open_inputs"]:
            exe = ml.create_execution(ExecutionConfiguration(
                workflow=a_workflow(ml), assets=[AssetSpec(rids[i]) for i in set(case["open_inputs"])]))
            exe.execution_start()
        if case["closed_inputs"]:
            done = ml.create_execution(config(ml, "closed"))
            with done:
                done.download_assets([rids[i] for i in set(case["closed_inputs"])], inputs / "closed")
            done.commit_output_assets()
        copies = {f"copy{n}.bin": ml.lookup_asset(rids[i]).download(inputs / f"c{n}").read_bytes()
                  for n, i in enumerate(case["unsynced_copies"])}
        local = record(ml, copies, "copies") if copies else []
        for rid, days in zip(rids, case["ages"]):
            age(ml, blake3_of(ml, rid), days)
        with read_transaction(ml.workspace.engine) as conn:
            needed = retention.digests_to_keep(conn)
        before = {o.blake3: o for o in ml.store.cache.object_stats()}

        report = ml.gc(keep_days=case["keep_days"], max_size=case["max_size"])

        after = {o.blake3 for o in ml.store.cache.object_stats()}
        for rid in [*local, *(rids[i] for i in case["pinned"] + case["open_inputs"])]:
            b3 = blake3_of(ml, rid)
            assert b3 in after, (rid, needed.get(b3))
            ml.store.cache.verify_object(digest_of(ml, rid))
        removed = set(before) - after
        assert not removed & set(needed)
        assert report.removed_objects == len(removed)
        assert report.removed_bytes == sum(before[b].size for b in removed)
        eligible = set(before) - set(needed)
        if case["keep_days"] is None and case["max_size"] is None:
            assert removed == eligible  # and everything it may free, it frees
        if case["max_size"] is not None:
            assert report.size_after <= case["max_size"] or not (eligible - removed - {
                b for b in eligible if case["keep_days"] is not None
                and time.time() - before[b].last_used < case["keep_days"] * DAY})
        assert ml.verify().lost_assets == []


def test_a_gc_during_a_commit_waits_for_it(pushed, tmp_path):
    """The moment the lock exists for: a commit whose capture found its bytes already cached (a synced
    asset's) is held between capture and journal write while gc runs; gc must wait, not free them."""
    ml, synced, _, _ = pushed
    mark = tmp_path / "paused"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from satchel import DerivaML
        from workflows import config
        with DerivaML("example.org", "1", working_dir={str(ml.store.root)!r}) as ml:
            exe = ml.create_execution(config(ml, "same bytes as a.bin"))
            with exe:
                exe.asset_file_path("Execution_Asset", "again.bin").write_bytes(b"a" * 3000)
            print(exe.commit_output_assets().assets[0].asset_rid, flush=True)
    """)
    env = {**os.environ, "SATCHEL_PAUSE_AT": "commit.after_capture", "SATCHEL_PAUSE_MARK": str(mark),
           "SATCHEL_PAUSE_SECONDS": "2"}
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env) as writer:
        deadline = time.monotonic() + 60
        while not mark.exists() and writer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert mark.exists(), "the commit never reached its capture"
        waited: list[bool] = []
        report = ml.gc(on_wait=lambda: waited.append(True))
        new_rid = writer.stdout.read().strip()
    assert writer.returncode == 0 and waited
    assert report.kept["unsynced"]["objects"] == 2  # d.bin and the commit's a.bin bytes: seen after it
    assert ml.store.cache.verify_object(digest_of(ml, new_rid))
    assert ml.verify().lost_assets == []


def test_a_cache_shared_by_two_stores_keeps_the_other_stores_bytes(tmp_path):
    """Only objects an asset of this store names may go: another store's unsynced work stays."""
    cache = tmp_path / "shared-cache"
    with DerivaML("example.org", "2", working_dir=tmp_path / "b", cache_dir=cache) as b:
        (theirs,) = record(b, {"theirs.bin": b"t" * 1700})
    with DerivaML("example.org", "1", working_dir=tmp_path / "a", cache_dir=cache) as a:
        report = a.gc()
        assert report.removed_objects == 0 and report.kept["not-ours"]["objects"] == 1
    with DerivaML("example.org", "2", working_dir=tmp_path / "b", cache_dir=cache) as b:
        assert b.verify().lost_assets == []


def test_not_a_number_of_days_and_gc_inside_a_cache_use_are_refused(pushed):
    from satchel import StoreBusyError

    ml, synced, _, _ = pushed
    with pytest.raises(BadArgumentError):
        ml.gc(keep_days=float("nan"))
    with ml.store.cache.use.shared(), pytest.raises(StoreBusyError, match="this process is using the cache"):
        ml.gc()
    assert all(ml.store.cache.has(blake3_of(ml, r)) for r in synced)

"""Workload 9, freeing the cache: ``ml.gc()`` on a store whose objects the server has, and ``storage_summary``.

Built once, before any clock: workload 1's store (one execution, N × 4 KiB
outputs, committed), pushed to a fresh emulator, so every object is one the
server has confirmed and ``gc`` may remove. Each repeat copies that store (not
timed), syncs the filesystem, then times in this process:

* ``ml.gc(dry_run=True)``: the plan alone (the journal's keep set, a stat of
  every object);
* ``ml.gc()``: plan, locks, and one ``unlink`` per object (all N go);
* ``ml.storage_summary()`` (``satchel du``) on a second copy.

References on the same copies, same repeat: a bare Python loop over the
objects' fan-out doing what gc cannot avoid (``scandir`` + ``stat`` + ``unlink``
of each file), and ``du -s`` of the cache (a subprocess). Issue 11 sets no
target; the ratios are for information.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from bench.harness import Context, Figure, Series, WorkloadResult, clock, settle
from bench.workloads._common import HOST, SEED, payloads
from bench.workloads._sync import emulator
from bench.workloads.push_small import _store as small_store

NAME = "gc"
NUMBER = 9
TITLE = "free the cache: gc of N objects the server has, and the storage summary"


def sizes(quick: bool) -> dict[str, int]:
    return {"files": 500 if quick else 10_000, "file_bytes": 4096}


def _pushed_store(ctx: Context, n: int, size: int) -> Path:
    from satchel import DerivaML

    store, _ = small_store(ctx, payloads(n, size, seed=SEED + 9 + ctx.salt))
    with emulator(ctx, "gc-server") as server, DerivaML(HOST, "1", working_dir=store) as ml, \
            server.remote() as remote:
        result = ml.push(remote=remote)
        assert result.ok, result.failed[:3]
    settle(store)
    return store


def _unlink_loop(objects: Path) -> int:
    """What gc cannot avoid: find every object, stat it, unlink it."""
    n = 0
    for sub in os.scandir(objects):
        if sub.is_dir(follow_symlinks=False):
            for entry in os.scandir(sub.path):
                entry.stat(follow_symlinks=False)
                os.unlink(entry.path)
                n += 1
    return n


def run(ctx: Context) -> WorkloadResult:
    from satchel import DerivaML

    p = sizes(ctx.quick)
    n = p["files"]
    res = WorkloadResult(NAME, NUMBER, TITLE, params={**p, "state": "every object pushed (the server has it)"})
    ctx.log(f"{NAME}: building and pushing the store")
    base = _pushed_store(ctx, n, p["file_bytes"])

    plan = Series("ml.gc(dry_run=True): the plan", "objects/s")
    gc = Series("ml.gc(): plan, locks, removal", "objects/s")
    floor = Series("bare loop: scandir + stat + unlink", "objects/s")
    du = Series("ml.storage_summary() (satchel du)", "s")
    du_ref = Series("du -s of the cache", "s")
    for r in range(ctx.repeat):
        ctx.log(f"{NAME}: repeat {r + 1}/{ctx.repeat}")
        store, bare = ctx.fresh_dir("gc-store"), ctx.fresh_dir("gc-bare")
        shutil.copytree(base, store, dirs_exist_ok=True)
        shutil.copytree(base / "cache" / "objects", bare, dirs_exist_ok=True)
        settle(ctx.data_dir)
        with DerivaML(HOST, "1", working_dir=store) as ml:
            t0 = clock()
            s = ml.storage_summary()
            du.add(clock() - t0)
            assert s["reclaimable"]["objects"] == n, s
            t0 = clock()
            dry = ml.gc(dry_run=True)
            t = clock() - t0
            plan.add(n / t, t)
            assert dry.removed_objects == n
            t0 = clock()
            report = ml.gc()
            t = clock() - t0
            gc.add(n / t, t)
            assert report.removed_objects == n and report.size_after == 0, report
        t0 = clock()
        subprocess.run(["du", "-s", str(bare)], check=True, capture_output=True)
        du_ref.add(clock() - t0)
        t0 = clock()
        removed = _unlink_loop(bare)
        t = clock() - t0
        assert removed == n
        floor.add(n / t, t)
        shutil.rmtree(store, ignore_errors=True)
        shutil.rmtree(bare, ignore_errors=True)
    res.figures = [
        Figure("gc", gc, [floor], note="every object removable; time ratio to the bare loop, for information"),
        Figure("gc_plan", plan, [floor], note="the dry run: what gc decides before removing anything"),
        Figure("storage_summary", du, [du_ref], note="satchel du also reads the journal's keep set"),
    ]
    res.notes.append("in the benchmark process; the store was pushed to a fresh emulator before any clock")
    return res

"""Workload 2, capture of one large file: an existing file committed in copy mode and in symlink mode.

Copy mode is ``asset_file_path(table, path, copy_file=True)`` (the file is copied
to the staging area at once, hashed (blake3 + MD5) in the same pass) then
``commit_output_assets``, which takes the staged copy into the cache by hardlink
without reading it again. Symlink mode is the default for an existing file (a
staged symlink; at commit the bytes are hashed and copied into the cache in one
pass). Either way the filesystem is synced before the journal commit; the figure
is the whole of it, registration plus commit.

References in the same repeat, on the same file: ``md5sum`` (the MD5 floor:
the bytes have to be hashed once), ``cp`` without a sync, and ``cp`` followed by
``syncfs`` (the disk's floor for a durable copy). The source file
is read once beforehand, so every contender reads it from the page cache.
"""

from __future__ import annotations

import random
import shutil

from bench.harness import Accumulator, Context, Figure, Series, Target, WorkloadResult, clock, run_timed, settle
from bench.workloads._common import SEED, new_execution, open_store

NAME = "capture-large"
NUMBER = 2
TITLE = "capture one large file, copy mode and symlink mode"
TABLE = "Execution_Asset"
MB = 1_000_000


def sizes(quick: bool) -> dict[str, int]:
    return {"file_bytes": (16 if quick else 1024) << 20}


def _make_file(path, size: int) -> None:
    rng = random.Random(SEED)
    block = 64 << 20
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(block, left)
            f.write(rng.randbytes(n))
            left -= n


def _satchel_once(ctx: Context, src, copy: bool) -> dict[str, float]:
    from satchel.cache import objects

    store = ctx.fresh_dir("store-copy" if copy else "store-symlink")
    ml = open_store(store)
    try:
        exe = new_execution(ml)
        settle(store)
        with exe:
            t0 = clock()
            exe.asset_file_path(TABLE, str(src), copy_file=copy)
            t1 = clock()
        sync = Accumulator()
        with sync.patch(objects, "sync_filesystem"):
            t2 = clock()
            report = exe.commit_output_assets()
            t3 = clock()
        assert report.total_uploaded == 1 and report.new_objects == 1, report
        return {"register": t1 - t0, "commit": t3 - t2, "syncfs": sync.seconds}
    finally:
        ml.close()
        shutil.rmtree(store, ignore_errors=True)


def run(ctx: Context) -> WorkloadResult:
    size = sizes(ctx.quick)["file_bytes"]
    res = WorkloadResult(NAME, NUMBER, TITLE, params={"file_bytes": size, "table": TABLE, "MB": "10^6 bytes"})
    d = ctx.fresh_dir("source")
    src = d / "weights.bin"
    ctx.log(f"{NAME}: writing a {size >> 20} MiB file")
    _make_file(src, size)
    settle(d)

    md5 = Series("md5sum of the same file", "MB/s")
    cp = Series("cp of the same file (no sync)", "MB/s")
    cp_sync = Series("cp of the same file, then syncfs", "MB/s")
    modes = {
        True: {
            "whole": Series("copy mode: register + commit", "MB/s"),
            "register": Series("copy mode: asset_file_path (copies and hashes)", "s"),
            "commit": Series("copy mode: commit_output_assets", "s"),
            "syncfs": Series("copy mode: syncfs inside the commit", "s"),
        },
        False: {
            "whole": Series("symlink mode: register + commit", "MB/s"),
            "register": Series("symlink mode: asset_file_path", "s"),
            "commit": Series("symlink mode: commit_output_assets", "s"),
            "syncfs": Series("symlink mode: syncfs inside the commit", "s"),
        },
    }

    ctx.log(f"{NAME}: warm-up (md5sum reads the file into the page cache)")
    run_timed(["md5sum", str(src)])
    for r in range(ctx.repeat):
        ctx.log(f"{NAME}: repeat {r + 1}/{ctx.repeat}")
        t = run_timed(["md5sum", str(src)])
        md5.add(size / MB / t, t)
        out = d / f"cp-{r}.bin"
        t = run_timed(["cp", str(src), str(out)])
        cp.add(size / MB / t, t)
        out.unlink()
        settle(d, pause=1.0 if not ctx.quick else 0.0)
        out = d / f"cp-sync-{r}.bin"
        t0 = clock()
        run_timed(["cp", str(src), str(out)])
        settle(d)
        t = clock() - t0
        cp_sync.add(size / MB / t, t)
        out.unlink()
        settle(d, pause=1.0 if not ctx.quick else 0.0)
        for copy in (True, False):
            s = _satchel_once(ctx, src, copy)
            m = modes[copy]
            whole = s["register"] + s["commit"]
            m["whole"].add(size / MB / whole, whole)
            for k in ("register", "commit", "syncfs"):
                m[k].add(s[k])
            settle(d, pause=1.0 if not ctx.quick else 0.0)

    target = Target("<=", 1.3, "≤ 1.3× md5sum time", on="ratio")
    res.figures = [
        Figure("copy_mode", modes[True]["whole"], [md5, cp, cp_sync], target),
        Figure("symlink_mode", modes[False]["whole"], [md5, cp, cp_sync], Target("<=", 1.3, "≤ 1.3× md5sum time", on="ratio")),
    ]
    for copy in (True, False):
        for k in ("register", "commit", "syncfs"):
            res.figures.append(Figure(f"{'copy' if copy else 'symlink'}_{k}", modes[copy][k]))
    return res

"""Workload 1, capture of many small files: one execution registers N files of 4 KiB and commits them.

Timed separately: the ``asset_file_path`` calls (registration), the user's own
writes to the returned paths (not satchel's work, reported for context), and
``commit_output_assets`` (hash each staged file, take it into the cache by
hardlink since the staging folder is cleaned, one ``syncfs`` beside the journal
transaction, which commits after it, then the clean-up). "End to end" is
registration plus commit, what the tools the issue compares with (``dvc add``,
``mlflow.log_artifacts``) do on files that exist.

References, on the same data in the same repeat: ``cp -r`` of the same tree;
the same tree copied and hashed (blake3 + MD5) by a bare Python loop with one
``syncfs`` (the floor for a durable capture in Python); the same number of rows
inserted into a bare SQLite file in one transaction (under the commit); and one
row per ``BEGIN IMMEDIATE`` transaction in WAL mode (under ``asset_file_path``).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3

import blake3

from bench.harness import Accumulator, Context, Figure, Series, Target, WorkloadResult, clock, run_timed, settle
from bench.workloads._common import new_execution, open_store, payloads, write_tree

NAME = "capture-small"
NUMBER = 1
TITLE = "capture many small files (asset_file_path + commit_output_assets)"
SIZE = 4096
TABLE = "Execution_Asset"


def sizes(quick: bool) -> dict[str, int]:
    return {"files": 1_000 if quick else 10_000, "file_bytes": SIZE}


def _satchel_once(ctx: Context, datas: list[bytes]) -> dict[str, float]:
    """One execution: register, write, commit. Returns the seconds of each phase."""
    from satchel.cache import objects

    store = ctx.fresh_dir("store")
    ml = open_store(store)
    try:
        exe = new_execution(ml)
        settle(store)
        with exe:
            t0 = clock()
            paths = [exe.asset_file_path(TABLE, f"f{i:06d}.bin") for i in range(len(datas))]
            t1 = clock()
            for p, data in zip(paths, datas, strict=True):
                p.write_bytes(data)
            t2 = clock()
        sync = Accumulator()
        with sync.patch(objects, "sync_filesystem"):
            t3 = clock()
            report = exe.commit_output_assets()
            t4 = clock()
        assert report.total_uploaded == len(datas), report
        return {"register": t1 - t0, "write": t2 - t1, "commit": t4 - t3, "syncfs": sync.seconds}
    finally:
        ml.close()


def _python_floor(src: list, dest: os.PathLike) -> None:
    """Hash (blake3 + MD5) and copy each file in one read, then one syncfs: a durable capture, bare."""
    from satchel.cache.durable import sync_filesystem

    os.makedirs(dest)
    for p in src:
        with open(p, "rb") as f:
            data = f.read()
        blake3.blake3(data).hexdigest()
        hashlib.md5(data, usedforsecurity=False).hexdigest()
        with open(os.path.join(dest, p.name), "xb") as out:
            out.write(data)
    sync_filesystem(dest)


def _sqlite_rows(path: os.PathLike, n: int) -> float:
    """Insert n asset-like rows into a bare SQLite file (default pragmas) in one transaction."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "CREATE TABLE assets (id INTEGER PRIMARY KEY, rid TEXT UNIQUE, asset_table TEXT, filename TEXT,"
        " length INTEGER, md5 TEXT, blake3 TEXT, url TEXT)"
    )
    rows = [
        (f"L_{i:08d}", TABLE, f"f{i:06d}.bin", SIZE, hashlib.md5(str(i).encode()).hexdigest(),
         hashlib.sha256(str(i).encode()).hexdigest(), f"/hatrac/{TABLE}/{i}")
        for i in range(n)
    ]
    t0 = clock()
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO assets (rid, asset_table, filename, length, md5, blake3, url) VALUES (?,?,?,?,?,?,?)", rows
    )
    conn.execute("COMMIT")
    elapsed = clock() - t0
    conn.close()
    return elapsed


def _sqlite_per_row(path: os.PathLike, n: int) -> float:
    """Insert n rows, one ``BEGIN IMMEDIATE`` transaction each, WAL and ``synchronous=NORMAL``:
    what one ``asset_file_path`` asks of SQLite, bare."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE registrations (id INTEGER PRIMARY KEY, execution_id INTEGER, asset_table TEXT, file_name TEXT,"
        " staged_path TEXT, mode TEXT, asset_types TEXT, UNIQUE (execution_id, asset_table, file_name))"
    )
    t0 = clock()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO registrations (execution_id, asset_table, file_name, staged_path, mode, asset_types)"
            " VALUES (?,?,?,?,?,?)",
            (1, TABLE, f"f{i:06d}.bin", f"/store/executions/L_1/assets/{TABLE}/f{i:06d}.bin", "new", '["Execution_Asset"]'),
        )
        conn.execute("COMMIT")
    elapsed = clock() - t0
    conn.close()
    return elapsed


def run(ctx: Context) -> WorkloadResult:
    p = sizes(ctx.quick)
    n = p["files"]
    res = WorkloadResult(NAME, NUMBER, TITLE, params={**p, "table": TABLE, "mode": "new files written at the returned paths"})
    datas = payloads(n, SIZE)

    ctx.log(f"{NAME}: warm-up")
    _satchel_once(ctx, payloads(min(n, 300), SIZE, seed=99))

    register = Series("asset_file_path (registration)", "files/s")
    commit = Series("commit_output_assets", "files/s")
    whole = Series("end to end (register + commit)", "files/s")
    writes = Series("user writes to the paths (not satchel)", "files/s")
    syncfs = Series("syncfs inside the commit", "s")
    cp = Series("cp -r of the same tree", "files/s")
    floor = Series("bare Python hash+copy loop, one syncfs", "files/s")
    rows = Series("bare SQLite: same rows, one transaction", "rows/s")
    row_tx = Series("bare SQLite: one row per transaction (WAL)", "rows/s")

    for r in range(ctx.repeat):
        ctx.log(f"{NAME}: repeat {r + 1}/{ctx.repeat}")
        d = ctx.fresh_dir(f"run{r}")
        tree = write_tree(d / "tree", datas)
        settle(d)
        t = run_timed(["cp", "-r", str(d / "tree"), str(d / "tree-cp")])
        cp.add(n / t, t)
        settle(d)
        t0 = clock()
        _python_floor(tree, d / "tree-py")
        t = clock() - t0
        floor.add(n / t, t)
        t = _sqlite_rows(d / "bare.db", n)
        rows.add(n / t, t)
        t = _sqlite_per_row(d / "bare-wal.db", n)
        row_tx.add(n / t, t)
        settle(d)
        s = _satchel_once(ctx, datas)
        register.add(n / s["register"], s["register"])
        commit.add(n / s["commit"], s["commit"])
        e2e = s["register"] + s["commit"]
        whole.add(n / e2e, e2e)
        writes.add(n / s["write"], s["write"])
        syncfs.add(s["syncfs"])

    res.figures = [
        Figure("end_to_end", whole, [cp, floor], Target(">=", 10_000, "≥ 10,000 files/s")),
        Figure("asset_file_path", register, [row_tx]),
        Figure("commit_output_assets", commit, [rows]),
        Figure("user_writes", writes, note="the user's own write_bytes to the returned paths; not counted end to end"),
        Figure("commit_syncfs", syncfs, note="the one syncfs() of the commit, run beside its journal transaction, which commits after it"),
    ]
    return res

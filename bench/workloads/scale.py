"""Workload 7, scale: a store holding N assets; status, lookup, list, find by tag, size on disk.

The store is generated through the journal's own write path, without the bytes:
per execution of ``BATCH`` assets, the registration rows are inserted as
``asset_file_path`` inserts them (same SQL, batched), then the commit's journal
half runs exactly as ``commit_output_assets`` runs it: ``Execution._record_assets``
(assets, asset_tags, asset_links, changes, registrations updated) and the status
change to ``Pending_Upload``, in one write transaction; the cache index gets the
stat entry the capture would have recorded for each object. Only the capture
of bytes (measured by workloads 1 and 2) is skipped, so no object files exist:
the size figure is the store's own overhead per asset, bytes of assets excluded.

Assets: every 10th in table ``File`` (the table listed), 2 in 10 in
``Execution_Asset``, the rest in a local ``Image`` table; 1 in 100 also tagged
``Model_File`` (the tag found). References are the same questions asked of the
same journal file in bare SQL (sqlite3), the floor under the ORM and the API.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import blake3

from bench.harness import Context, Figure, Series, Target, WorkloadResult, clock, run_timed, settle
from bench.workloads._common import HOST, new_execution, open_store

NAME = "scale"
NUMBER = 7
TITLE = "a store with many assets: status, lookup, list, find, size"
BATCH = 10_000
LIST_TABLE = "File"
FIND_TAG = "Model_File"


def sizes(quick: bool) -> dict[str, int]:
    return {"assets": 20_000 if quick else 1_000_000, "assets_per_execution": BATCH}


def _table(i: int) -> str:
    k = i % 10
    return "File" if k == 0 else "Execution_Asset" if k in (1, 2) else "Image"


def _generate(ctx: Context, store: Path, n: int) -> dict[str, float]:
    from satchel.cache import Digest
    from satchel.api import commit
    from satchel.api.registration import INSERT_REGISTRATION as _INSERT_REGISTRATION
    from satchel.journal import queries as q
    from satchel.journal import read_transaction, write_transaction
    from satchel.status import Status
    from satchel.store import now

    ml = open_store(store)
    if ml.workspace.check_asset_table("Image"):  # a local asset table, as a first asset_file_path("Image", ...) makes it
        ml.workspace.record_asset_table("Image")
    engine = ml.store.engine
    index = ml.store.cache.index
    ino = 1_000_000
    t_start = clock()
    t_journal = 0.0
    try:
        for start in range(0, n, BATCH):
            stop = min(n, start + BATCH)
            exe = new_execution(ml, f"bulk {start}")
            with exe:
                regs = []
                for i in range(start, stop):
                    table = _table(i)
                    types = [table, FIND_TAG] if i % 100 == 7 else [table]
                    name = f"img_{i:07d}.png" if table == "Image" else f"file_{i:07d}.bin"
                    staged = exe.working_dir / "assets" / table / name
                    regs.append((exe._id, table, name, str(staged), None, "new", json.dumps(types), "{}", None, now()))
                with ml.store.fast_writer.transaction() as raw:
                    raw.executemany(_INSERT_REGISTRATION, regs)
            t0 = clock()
            with read_transaction(engine) as conn:
                pending = commit.pending(conn.connection.driver_connection, exe._id)
            digests = []
            entries = []
            for reg in pending:
                i = int(reg.file_name[-11:-4])
                data = i.to_bytes(8, "little") * 512
                d = Digest(blake3.blake3(data).hexdigest(), hashlib.md5(data).hexdigest(), 4096)
                digests.append(d)
                # the object's entry alone: a capture records none for staged names the commit cleans
                ino += 1
                entries.append((SimpleNamespace(st_dev=1, st_ino=ino, st_size=4096, st_mtime_ns=1, st_ctime_ns=1), d, True))
            index.record(entries)
            at = now()
            with write_transaction(engine) as conn:
                commit.record_assets(conn, ml.store.store_id, exe._id, pending, digests, at)
                cur = q.execution_status(conn, exe._id)
                q.record_status(conn, exe._id, cur, Status.Pending_Upload.value, at, None, commit_time=at)
            t_journal += clock() - t0
            if (stop // BATCH) % 10 == 0 or stop == n:
                ctx.log(f"{NAME}: {stop:,} assets recorded ({stop / (clock() - t_start):,.0f} assets/s)")
    finally:
        ml.close()
    return {"total": clock() - t_start, "commit_half": t_journal}


def _sizes(store: Path) -> dict[str, int]:
    out = {"journal": 0, "cache_index": 0, "other": 0}
    blocks = 0
    for dirpath, _dirs, files in os.walk(store):
        for f in files:
            p = os.path.join(dirpath, f)
            st = os.lstat(p)
            blocks += st.st_blocks * 512
            if f.startswith("journal.db"):
                out["journal"] += st.st_size
            elif f.startswith("index.db"):
                out["cache_index"] += st.st_size
            else:
                out["other"] += st.st_size
    out["apparent_total"] = out["journal"] + out["cache_index"] + out["other"]
    out["allocated_files"] = blocks
    return out


def _pages_per_asset(store: Path, n: int) -> dict[str, dict[str, float]]:
    """Bytes of pages per asset of each table and index (SQLite's dbstat), journal and cache index."""
    out: dict[str, dict[str, float]] = {}
    for name, path in (("journal", store / "journal.db"), ("cache_index", store / "cache" / "index.db")):
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall()
        finally:
            conn.close()
        out[name] = {table: round(size / n, 1) for table, size in rows if size / n >= 0.5}
    return out


def _bare(store: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{store / 'journal.db'}?mode=ro", uri=True)


def _open(store: Path):
    from satchel import DerivaML

    return DerivaML(HOST, "1", working_dir=store)


def run(ctx: Context) -> WorkloadResult:
    n = sizes(ctx.quick)["assets"]
    store = ctx.fresh_dir("store")
    ctx.log(f"{NAME}: generating {n:,} assets through the journal's write path")
    gen = _generate(ctx, store, n)
    settle(store)
    sz = _sizes(store)
    res = WorkloadResult(
        NAME, NUMBER, TITLE,
        params={**sizes(ctx.quick), "list_table": LIST_TABLE, "find_tag": FIND_TAG, "lookup_samples": 0},
    )
    res.info["generation"] = {
        "seconds": gen["total"], "assets_per_s": n / gen["total"],
        "commit_half_seconds": gen["commit_half"], "commit_half_assets_per_s": n / gen["commit_half"],
    }
    res.info["size_bytes"] = sz
    res.info["pages_per_asset"] = _pages_per_asset(store, n)

    rng = random.Random(7)
    bare = _bare(store)
    all_rids = [r for (r,) in bare.execute("SELECT rid FROM assets ORDER BY id")]
    n_list = bare.execute("SELECT count(*) FROM assets WHERE asset_table=?", (LIST_TABLE,)).fetchone()[0]
    n_find = bare.execute("SELECT count(*) FROM asset_tags WHERE term=?", (FIND_TAG,)).fetchone()[0]
    k = 200 if ctx.quick else 2000
    res.params.update({"lookup_samples": k, "list_table_assets": n_list, "find_tag_assets": n_find})

    satchel_exe = shutil.which("satchel") or str(Path(sys.executable).parent / "satchel")
    status_cmd = [satchel_exe, "status", "--json", "--store", str(store)]
    import_cmd = [sys.executable, "-c", "import satchel.cli"]

    cli = Series("satchel status --json (subprocess)", "s")
    cli_ref = Series("python -c 'import satchel.cli' (startup)", "s")
    inproc = Series("ml.status() in process", "s")
    inproc_ref = Series("bare SQL: count(*), sum(length) of local, failed assets", "s")
    lookup = Series("ml.lookup_asset(rid), median", "ms")
    lookup_p99 = Series("ml.lookup_asset(rid), 99th percentile", "ms")
    lookup_ref = Series("bare SQL: asset row + tags + links by RID", "ms")
    first = Series(f"first page: next(iter(find_assets({LIST_TABLE!r})))", "s")
    first_ref = Series("bare SQL: first 1000 rows of the table", "s")
    full = Series(f"ml.list_assets({LIST_TABLE!r}), full", "s")
    full_ref = Series("bare SQL: the table's rows and their tags", "s")
    find = Series(f"find_assets(asset_type={FIND_TAG!r}), full", "s")
    find_ref = Series("bare SQL: rows carrying the tag, and their tags", "s")

    subprocess.run(status_cmd, check=True, capture_output=True)  # warm-up: page cache, .pyc
    out = json.loads(subprocess.run(status_cmd, check=True, capture_output=True, text=True).stdout)
    assert out["assets"] == n, out
    for r in range(ctx.repeat):
        ctx.log(f"{NAME}: repeat {r + 1}/{ctx.repeat}")
        cli.add(run_timed(status_cmd))
        cli_ref.add(run_timed(import_cmd))

        ml = _open(store)
        try:
            ml.status()  # the first call opens the connection
            t0 = clock()
            ml.status()
            inproc.add(clock() - t0)
            t0 = clock()
            for state in ("local", "failed"):  # one index range each, as status asks it
                bare.execute(
                    "SELECT count(*), coalesce(sum(length), 0) FROM assets WHERE sync_state = ?", (state,)
                ).fetchone()
            inproc_ref.add(clock() - t0)

            sample = rng.sample(all_rids, k)
            times = []
            for rid in sample:
                t0 = clock()
                ml.lookup_asset(rid)
                times.append((clock() - t0) * 1000)
            lookup.add(statistics.median(times))
            lookup_p99.add(sorted(times)[int(0.99 * (len(times) - 1))])
            times = []
            for rid in sample:
                t0 = clock()
                (aid,) = bare.execute("SELECT id FROM assets WHERE rid=?", (rid,)).fetchone()
                bare.execute("SELECT * FROM assets WHERE id=?", (aid,)).fetchall()
                bare.execute("SELECT term FROM asset_tags WHERE asset_id=?", (aid,)).fetchall()
                bare.execute(
                    "SELECT e.rid, l.role FROM asset_links l JOIN executions e ON e.id = l.execution_id"
                    " WHERE l.asset_id=?", (aid,),
                ).fetchall()
                times.append((clock() - t0) * 1000)
            lookup_ref.add(statistics.median(times))

            t0 = clock()
            next(iter(ml.find_assets(LIST_TABLE)))
            first.add(clock() - t0)
            t0 = clock()
            bare.execute("SELECT * FROM assets WHERE asset_table=? ORDER BY id LIMIT 1000", (LIST_TABLE,)).fetchall()
            first_ref.add(clock() - t0)

            t0 = clock()
            got = ml.list_assets(LIST_TABLE)
            full.add(clock() - t0)
            assert len(got) == n_list
            del got
            t0 = clock()
            bare.execute("SELECT * FROM assets WHERE asset_table=? ORDER BY id", (LIST_TABLE,)).fetchall()
            bare.execute(
                "SELECT t.asset_id, t.term FROM asset_tags t JOIN assets a ON a.id = t.asset_id WHERE a.asset_table=?",
                (LIST_TABLE,),
            ).fetchall()
            full_ref.add(clock() - t0)

            t0 = clock()
            found = sum(1 for _ in ml.find_assets(asset_type=FIND_TAG))
            find.add(clock() - t0)
            assert found == n_find, (found, n_find)
            t0 = clock()
            bare.execute(
                "SELECT a.* FROM assets a WHERE a.id IN (SELECT asset_id FROM asset_tags WHERE term=?) ORDER BY a.id",
                (FIND_TAG,),
            ).fetchall()
            bare.execute(
                "SELECT t.asset_id, t.term FROM asset_tags t WHERE t.asset_id IN"
                " (SELECT asset_id FROM asset_tags WHERE term=?)", (FIND_TAG,),
            ).fetchall()
            find_ref.add(clock() - t0)
        finally:
            ml.close()
    bare.close()

    per_asset = Series("store size per asset (journal + cache index)", "bytes")
    per_asset.add((sz["journal"] + sz["cache_index"]) / n)
    journal_only = Series("of which the journal", "bytes")
    journal_only.add(sz["journal"] / n)
    gen_rate = Series("generation: journal write path (commit half)", "assets/s")
    gen_rate.add(n / gen["commit_half"], gen["commit_half"])

    res.figures = [
        Figure("status_cli", cli, [cli_ref], Target("<", 0.5, "< 0.5 s")),
        Figure("status_in_process", inproc, [inproc_ref]),
        Figure("lookup_asset", lookup, [lookup_ref], Target("<", 1.0, "< 1 ms")),
        Figure("lookup_asset_p99", lookup_p99),
        Figure("list_first_page", first, [first_ref]),
        Figure("list_assets_full", full, [full_ref], note=f"{n_list:,} assets in table {LIST_TABLE}"),
        Figure("find_assets_by_tag", find, [find_ref], note=f"{n_find:,} assets tagged {FIND_TAG}"),
        Figure("store_bytes_per_asset", per_asset, target=Target("<", 1024, "< 1 KiB per asset"),
               note="bytes of assets excluded (no objects); staged files cleaned as after a commit"),
        Figure("journal_bytes_per_asset", journal_only),
        Figure("generation_rate", gen_rate, note="registrations + _record_assets + status, per 10,000-asset execution"),
    ]
    return res

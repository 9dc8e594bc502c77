"""Workload 4, push of many small files: sync workload 1's execution to the emulator over loopback.

Each repeat builds workload 1's store afresh (one execution, N × 4 KiB outputs
in ``Execution_Asset``, committed), starts a fresh emulator and runs
``ml.push`` in a client subprocess (timed inside it: the push call alone).
``server.stats`` counts every request the push made and the bytes of their bodies.

Reference, in the same repeat, against another fresh emulator in the same
process: the same files uploaded the way deriva-ml 1.24 does with deriva-py.
Per file, ``HatracStore.put_obj`` (a HEAD, then the PUT) and a pathbuilder
insert of its asset row; then the ``Execution_Asset_Asset_Type`` rows (the same
types satchel sends) and the ``Execution_Asset_Execution`` rows, batched by the
pathbuilder (1,000 rows a request). The execution row is created before the clock starts.
And a floor: the same files, one bare httpx ``PUT`` each (``Content-MD5``, no HEAD,
no catalog, no journal) from 4 threads, to a third fresh emulator: what one
request per asset costs on this server.
"""

from __future__ import annotations

import json

from bench.harness import Context, Figure, Series, Target, WorkloadResult, settle
from bench.workloads._common import SEED, new_execution, open_store, payloads, write_tree
from bench.workloads._sync import bytes_in, delta_json, deriva_server, requests, run_client, server_note, stats_delta

NAME = "push-small"
NUMBER = 4
TITLE = "push many small files to the server over loopback (the emulator, or --remote)"
TABLE = "Execution_Asset"
SCHEMA = "deriva-ml"
TARGETS = [
    "≥ 1,000 assets/s",
    "≥ 10× the deriva-py reference",
    "< 0.1 catalog HTTP requests per asset",
]


def sizes(quick: bool) -> dict[str, int]:
    return {"files": 500 if quick else 10_000, "file_bytes": 4096}


def _store(ctx: Context, datas: list[bytes]):
    """Workload 1's store: one execution, the files as outputs, committed. Returns (path, types per file)."""
    store = ctx.fresh_dir("store")
    ml = open_store(store)
    try:
        exe = new_execution(ml)
        with exe:
            for i, data in enumerate(datas):
                exe.asset_file_path(TABLE, f"f{i:06d}.bin").write_bytes(data)
        report = exe.commit_output_assets()
        assert report.total_uploaded == len(datas), report
        types = {a.filename: sorted(a.asset_types) for a in ml.list_assets(TABLE)}
    finally:
        ml.close()
    settle(store)
    return store, types


def _satchel(ctx: Context, store, *options: str) -> dict:
    with deriva_server(ctx, "emulator") as server:
        before = server.stats.snapshot()
        run = run_client("push", str(store), server.url, *options, server=server)
        delta, server_cpu = stats_delta(before, server.stats.snapshot()), server.cpu()
    if not run.out["ok"]:
        raise RuntimeError(f"push failed: {run.out['failed']}")
    return {"seconds": run.out["seconds"], "delta": delta, "rss": run.max_rss_bytes, "result": run.out,
            "cpu": {"client": run.out["cpu_seconds"], "server (whole client run)": server_cpu}}


def _manifest(ctx: Context, tree: list, types: dict):
    manifest = ctx.fresh_dir("manifest") / "manifest.json"
    manifest.write_text(json.dumps({
        "schema": SCHEMA, "table": TABLE,
        "files": [{"path": str(p), "types": types[p.name]} for p in tree],
    }))
    return manifest


def _rawputs(ctx: Context, manifest, threads: int = 4) -> dict:
    with deriva_server(ctx, "emulator-raw") as server:
        run = run_client("rawputs", server.url, str(manifest), "--threads", str(threads), server=server)
        server_cpu = server.cpu()
    return {"seconds": run.out["seconds"], "cpu": {"client": run.out["cpu_seconds"], "server (whole client run)": server_cpu}}


def _derivapy(ctx: Context, manifest) -> dict:
    with deriva_server(ctx, "emulator-ref") as server:
        before = server.stats.snapshot()
        run = run_client("derivapy", server.url, str(manifest), server=server)
        after, server_cpu = server.stats.snapshot(), server.cpu()
    # the untimed set-up (connect, model, the execution row) is not counted: only what the clock saw
    delta = stats_delta(before, after)
    setup = {("GET", "ermrest.catalog"), ("GET", "ermrest.schema")}
    delta = {k: v for k, v in delta.items() if k not in setup}
    entity = delta.get(("POST", "ermrest.entity"))
    if entity:  # minus the one execution insert of the set-up
        delta[("POST", "ermrest.entity")] = (entity[0] - 1, entity[1])
    return {"seconds": run.out["seconds"], "delta": delta, "rss": run.max_rss_bytes,
            "cpu": {"client": run.out["cpu_seconds"], "server (whole client run)": server_cpu}}


def run(ctx: Context) -> WorkloadResult:
    p = sizes(ctx.quick)
    n = p["files"]
    res = WorkloadResult(NAME, NUMBER, TITLE, params={
        **p, "table": f"{SCHEMA}:{TABLE}", "push options": "defaults (transfers=4)",
        "reference": "deriva-py 1.7.12 as deriva-ml 1.24: put_obj + asset-row insert per file, then association rows",
    })
    datas = payloads(n, p["file_bytes"], seed=SEED + ctx.salt)

    ctx.log(f"{NAME}: warm-up")
    warm = payloads(min(n, 100), p["file_bytes"], seed=99 + ctx.salt)
    store, types = _store(ctx, warm)
    _satchel(ctx, store)
    wmanifest = _manifest(ctx, write_tree(ctx.fresh_dir("warm-tree"), warm), types)
    _derivapy(ctx, wmanifest)
    _rawputs(ctx, wmanifest)

    push = Series("ml.push", "assets/s")
    push_s = Series("ml.push, whole push", "s")
    ref = Series("deriva-py, deriva-ml 1.24's way", "assets/s")
    ref_s = Series("deriva-py, deriva-ml 1.24's way", "s")
    floor = Series("bare httpx, one PUT per file, 4 threads", "assets/s")
    cat_req = Series("catalog (ermrest) requests per asset", "req/asset")
    ref_cat_req = Series("deriva-py: catalog requests per asset", "req/asset")
    all_req = Series("HTTP requests per asset, all", "req/asset")
    ref_all_req = Series("deriva-py: HTTP requests per asset", "req/asset")
    body = Series("request-body bytes per asset, all", "bytes")
    ref_body = Series("deriva-py: request-body bytes per asset", "bytes")
    cat_body = Series("catalog request-body bytes per asset", "bytes")
    ref_cat_body = Series("deriva-py: catalog request-body bytes", "bytes")
    def fresh(k: int) -> list[bytes]:
        """The files of one measurement: on a real server, bytes that no earlier measurement sent
        (it keeps every object, and an upload finding its bytes there sends nothing)."""
        return payloads(n, p["file_bytes"], seed=SEED + ctx.salt + k) if ctx.remote else datas

    for r in range(ctx.repeat):
        ctx.log(f"{NAME}: repeat {r + 1}/{ctx.repeat}")
        store, types = _store(ctx, fresh(2 * r + 1))
        tree = write_tree(ctx.fresh_dir("tree"), fresh(2 * r + 2))
        settle(ctx.data_dir)
        s = _satchel(ctx, store)
        push.add(n / s["seconds"], s["seconds"])
        push_s.add(s["seconds"])
        settle(ctx.data_dir)
        manifest = _manifest(ctx, tree, types)
        d = _derivapy(ctx, manifest)
        ref.add(n / d["seconds"], d["seconds"])
        ref_s.add(d["seconds"])
        settle(ctx.data_dir)
        f = _rawputs(ctx, manifest)
        floor.add(n / f["seconds"], f["seconds"])
        cat_req.add(requests(s["delta"], "ermrest") / n)
        ref_cat_req.add(requests(d["delta"], "ermrest") / n)
        all_req.add(requests(s["delta"]) / n)
        ref_all_req.add(requests(d["delta"]) / n)
        body.add(bytes_in(s["delta"]) / n)
        ref_body.add(bytes_in(d["delta"]) / n)
        cat_body.add(bytes_in(s["delta"], "ermrest") / n)
        ref_cat_body.add(bytes_in(d["delta"], "ermrest") / n)
        res.info[f"repeat{r}"] = {
            "satchel_requests": delta_json(s["delta"]), "derivapy_requests": delta_json(d["delta"]),
            "satchel_result": s["result"], "satchel_peak_rss_bytes": s["rss"], "derivapy_peak_rss_bytes": d["rss"],
            "cpu_seconds": {"satchel": s["cpu"], "derivapy": d["cpu"], "bare_puts": f["cpu"]},
        }

    res.figures = [
        Figure("push", push, [ref, floor], Target(">=", 1_000, "≥ 1,000 assets/s"),
               note="other reference: the same files, one bare PUT each (no HEAD, no catalog, no journal), "
                    "4 connections: what one request per asset costs on this emulator"),
        Figure("push_vs_derivapy", push_s, [ref_s], Target("<=", 0.1, "≥ 10× deriva-py (ratio ≤ 0.1)", on="ratio"),
               note="time ratio: satchel's push time over deriva-py's for the same files"),
        Figure("catalog_requests_per_asset", cat_req, [ref_cat_req], Target("<", 0.1, "< 0.1 catalog req/asset"),
               note="ERMrest requests (every /ermrest path kind in server.stats) over the number of assets"),
        Figure("requests_per_asset", all_req, [ref_all_req],
               note="every request the server received during the timed work, Hatrac included"),
    ]
    if ctx.remote is None:  # Apache's access log has no request-body sizes
        res.figures += [
            Figure("bytes_per_asset", body, [ref_body], note="request bodies received by the server, per asset"),
            Figure("catalog_bytes_per_asset", cat_body, [ref_cat_body]),
        ]
    res.notes.append(server_note(ctx))
    return res

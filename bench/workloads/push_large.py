"""Workload 5, push of one large file: sync workload 2's asset to the emulator over loopback.

Each repeat captures workload 2's file into a new store (symlink mode, committed),
starts a fresh emulator and runs ``ml.push`` in a client subprocess: timed inside
it (the push call alone), its peak RSS read by the parent with ``wait4`` when
it exits. The file is above the chunked threshold (25 MiB by default), so it
travels as a Hatrac upload job in 25 MiB chunks, each recorded in the journal.
With ``--quick`` the 16 MiB file is pushed with 4 MiB chunks, to exercise the same path.

References in the same repeat, against the same emulator: one raw streaming
httpx ``PUT`` of the same file (a fresh object name, ``Content-MD5`` computed
before the clock starts, as the journal already holds it; 1 MiB blocks) from a
subprocess of its own; and the peak RSS of a client that imports satchel and
opens the store without pushing (the floor under the push's RSS).
"""

from __future__ import annotations

import shutil

from bench.harness import Context, Figure, Series, Target, WorkloadResult, settle
from bench.workloads._sync import (
    MiB, bytes_in, capture_file, delta_json, deriva_server, requests, run_client, server_note, stamp, stats_delta,
)
from bench.workloads.capture_large import _make_file
from satchel.remote.hatrac import file_md5

NAME = "push-large"
NUMBER = 5
TITLE = "push one large file to the server over loopback (the emulator, or --remote)"
TABLE = "Execution_Asset"
MB = 1_000_000
TARGETS = ["≥ 0.8× the raw PUT throughput", "peak RSS < 150 MiB whatever the file size"]


def sizes(quick: bool) -> dict[str, int]:
    return {"file_bytes": (16 if quick else 1024) << 20}


def chunking(quick: bool) -> dict[str, int]:
    """Push options: the defaults (25 MiB) at full size; 4 MiB chunks for the 16 MiB quick file."""
    return {"chunk_size": 4 * MiB, "chunked_threshold": 4 * MiB} if quick else {}


def push_args(quick: bool) -> list[str]:
    c = chunking(quick)
    return ["--chunk-size", str(c["chunk_size"]), "--threshold", str(c["chunked_threshold"])] if c else []


def run(ctx: Context) -> WorkloadResult:
    size = sizes(ctx.quick)["file_bytes"]
    chunk = chunking(ctx.quick).get("chunk_size", 25 * MiB)
    res = WorkloadResult(NAME, NUMBER, TITLE, params={
        "file_bytes": size, "table": TABLE, "chunk_bytes": chunk, "chunks": -(-size // chunk), "MB": "10^6 bytes",
        "push options": chunking(ctx.quick) or "defaults (chunked above 25 MiB, 25 MiB chunks)",
    })
    d = ctx.fresh_dir("source")
    src = d / "weights.bin"
    ctx.log(f"{NAME}: writing a {size >> 20} MiB file")
    _make_file(src, size)
    settle(d)
    limit = {"max_payload": size + MiB}  # the emulator takes the raw PUT in one request

    push = Series("ml.push (chunked upload job)", "MB/s")
    raw = Series("raw httpx: one streaming PUT (a real Hatrac, which takes ≤ 128 MiB a request: a bare upload job)",
                 "MB/s")
    objects = Series("the push's objects step alone", "MB/s")
    rss = Series("peak RSS of the pushing process", "MiB")
    raw_rss = Series("peak RSS of the raw PUT process", "MiB")
    idle_rss = Series("peak RSS: import satchel, open store, no push", "MiB")
    body = Series("request-body bytes received / file size", "x")

    for r in range(-1, ctx.repeat):
        ctx.log(f"{NAME}: " + ("warm-up" if r < 0 else f"repeat {r + 1}/{ctx.repeat}"))
        stamp(src, ctx.salt + r)  # new bytes each time: a real server keeps what was sent before
        b64 = file_md5(src)
        store = capture_file(ctx, src, TABLE)
        with deriva_server(ctx, "emulator", **limit) as server:
            settle(ctx.data_dir)
            before = server.stats.snapshot()
            p = run_client("push", str(store), server.url, *push_args(ctx.quick), server=server)
            delta = stats_delta(before, server.stats.snapshot())
            server_cpu = server.cpu()
            if not p.out["ok"]:
                raise RuntimeError(f"push failed: {p.out['failed']}")
            settle(ctx.data_dir)
            q = run_client("rawput", server.url, str(src), f"/hatrac/{TABLE}/raw-{ctx.salt}-{r + 1}.bin", b64,
                           "--chunk-size", str(chunk), server=server)
        i = run_client("idle", str(store))
        shutil.rmtree(store, ignore_errors=True)  # 1 GiB each: keep the peak disk use to one store
        if r < 0:
            continue
        push.add(size / MB / p.out["seconds"], p.out["seconds"])
        raw.add(size / MB / q.out["seconds"], q.out["seconds"])
        t = p.out["steps"].get("objects")
        if t:
            objects.add(size / MB / t, t)
        rss.add(p.max_rss_bytes / MiB)
        raw_rss.add(q.max_rss_bytes / MiB)
        idle_rss.add(i.max_rss_bytes / MiB)
        if server.bodies_counted:
            body.add(bytes_in(delta) / size)
        res.info[f"repeat{r}"] = {"push_requests": delta_json(delta), "requests": requests(delta), "result": p.out,
                                  "raw": q.out, "server_cpu_seconds_during_push": server_cpu}

    res.figures = [
        Figure("push", push, [raw], Target("<=", 1.25, "≥ 0.8× raw PUT (ratio ≤ 1.25)", on="ratio"),
               note="time ratio: push time over the raw PUT's time for the same bytes; ≥ 0.8× throughput = ratio ≤ 1.25"),
        Figure("objects_step", objects, [raw],
               note="from the end of the executions step to the last byte and the finalize (progress events)"),
        Figure("peak_rss", rss, [idle_rss, raw_rss], Target("<", 150, "< 150 MiB"),
               note="VmHWM of the client process as it ends: its own peak, interpreter and imports included"),
    ]
    if ctx.remote is None:  # Apache's access log has no request-body sizes
        res.figures.append(Figure("bytes_on_the_wire", body,
                                  note="request bodies the server received during the push, over the file size"))
    res.notes.append(server_note(ctx))
    return res

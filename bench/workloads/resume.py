"""Workload 6, resume: kill the push of workload 5 at about half way, push again; count the bytes sent again.

Each repeat captures workload 5's file into a new store and starts a fresh
emulator. A push subprocess runs with ``SATCHEL_CRASH_AT=objects.after_chunk#N``
(N = half the chunk count): it SIGKILLs itself right after the N-th chunk was
acknowledged and recorded in the journal, as a power cut or an OOM kill would.
A second push, in a new process, finishes the job. From ``server.stats`` and
the emulator's request log:

- still missing = file size − the bytes of the chunks the server acknowledged in the first run;
- sent again = every request-body byte Hatrac received in the second run − still missing
  (0 when the second run sent exactly the missing chunks; a full restart would be ≈ the acknowledged half).

Chunking as in workload 5: 25 MiB chunks for 1 GiB (41 chunks), 4 MiB chunks for the 16 MiB quick file.
"""

from __future__ import annotations

import re
import shutil

from bench.harness import Context, Figure, Series, Target, WorkloadResult, settle
from bench.workloads._sync import MiB, bytes_in, capture_file, delta_json, deriva_server, run_client, stats_delta, stamp
from bench.workloads.capture_large import _make_file
from bench.workloads.push_large import chunking, push_args

NAME = "resume"
NUMBER = 6
TITLE = "resume an interrupted large push"
TABLE = "Execution_Asset"
MB = 1_000_000
TARGETS = ["at most one chunk sent again"]
_CHUNK_PUT = re.compile(r";upload/[^/?]+/(\d+)$")


def sizes(quick: bool) -> dict[str, int]:
    return {"file_bytes": (16 if quick else 1024) << 20}


def _acknowledged(log: list, size: int, chunk: int) -> tuple[int, int]:
    """(chunks, bytes) the server acknowledged (2xx) for chunk PUTs in ``log`` entries."""
    indexes = set()
    for method, target, status in log:
        m = _CHUNK_PUT.search(target.split("?")[0])
        if method == "PUT" and m and 200 <= status < 300:
            indexes.add(int(m.group(1)))
    return len(indexes), sum(min(chunk, size - i * chunk) for i in indexes)


def _chunk_bytes_sent(log: list, size: int, chunk: int) -> int:
    """The bytes of every chunk PUT in ``log`` entries, answered or not (where bodies are not counted)."""
    total = 0
    for method, target, _ in log:
        m = _CHUNK_PUT.search(target.split("?")[0])
        if method == "PUT" and m:
            total += min(chunk, size - int(m.group(1)) * chunk)
    return total


def run(ctx: Context) -> WorkloadResult:
    size = sizes(ctx.quick)["file_bytes"]
    chunk = chunking(ctx.quick).get("chunk_size", 25 * MiB)
    nchunks = -(-size // chunk)
    kill_after = nchunks // 2
    res = WorkloadResult(NAME, NUMBER, TITLE, params={
        "file_bytes": size, "chunk_bytes": chunk, "chunks": nchunks, "killed_after_chunk": kill_after,
        "crash": f"SATCHEL_CRASH_AT=objects.after_chunk#{kill_after} (SIGKILL)", "MB": "10^6 bytes",
    })
    d = ctx.fresh_dir("source")
    src = d / "weights.bin"
    ctx.log(f"{NAME}: writing a {size >> 20} MiB file")
    _make_file(src, size)
    settle(d)

    again = Series("bytes sent again after the kill", "bytes")
    again_chunks = Series("chunks sent again after the kill", "chunks")
    missing = Series("bytes still missing after the kill", "bytes")
    second = Series("resumed push: rest of the file", "MB/s")

    for r in range(ctx.repeat):
        ctx.log(f"{NAME}: repeat {r + 1}/{ctx.repeat}")
        stamp(src, ctx.salt + r)  # new bytes each time: a real server keeps what was sent before
        store = capture_file(ctx, src, TABLE)
        with deriva_server(ctx, "emulator") as server:
            settle(ctx.data_dir)
            s0 = server.stats.snapshot()
            log0 = len(server.log())
            killed = run_client("push", str(store), server.url, *push_args(ctx.quick),
                                server=server, env={"SATCHEL_CRASH_AT": f"objects.after_chunk#{kill_after}"},
                                check=False)
            if killed.returncode != -9:
                raise RuntimeError(f"the push was not killed at chunk {kill_after}: {killed.returncode} {killed.stderr[-1000:]}")
            s1 = server.stats.snapshot()
            log1 = len(server.log())
            acked_chunks, acked_bytes = _acknowledged(server.log()[log0:], size, chunk)
            done = run_client("push", str(store), server.url, *push_args(ctx.quick), server=server)
            s2 = server.stats.snapshot()
            second_log = server.log()[log1:]
            if not done.out["ok"]:
                raise RuntimeError(f"the resumed push failed: {done.out['failed']}")
            # sanity: the object is complete, with the file's size
            pushed = [t.partition(";")[0] for m, t, st in second_log if m == "POST" and ";upload/" in t and st == 201]
            current = server.object_size(pushed[-1]) if pushed else None
            if current != size:
                raise RuntimeError(f"after the resume the object has {current!r} bytes, not {size}")
        shutil.rmtree(store, ignore_errors=True)  # 1 GiB each: keep the peak disk use to one store
        run1, run2 = stats_delta(s0, s1), stats_delta(s1, s2)
        still_missing = size - acked_bytes
        sent = bytes_in(run2, "hatrac") if server.bodies_counted else _chunk_bytes_sent(second_log, size, chunk)
        resent = sent - still_missing
        again.add(resent)
        again_chunks.add(resent / chunk)
        missing.add(still_missing)
        second.add(still_missing / MB / done.out["seconds"], done.out["seconds"])
        res.info[f"repeat{r}"] = {
            "acknowledged_chunks_before_kill": acked_chunks, "first_run_requests": delta_json(run1),
            "second_run_requests": delta_json(run2), "second_run_result": done.out,
        }

    res.figures = [
        Figure("bytes_sent_again", again, target=Target("<=", chunk, f"≤ one chunk ({chunk:,} bytes)"),
               note="request-body bytes Hatrac received in the second run minus the bytes still missing"),
        Figure("chunks_sent_again", again_chunks, target=Target("<=", 1, "≤ 1 chunk")),
        Figure("bytes_missing_after_kill", missing, note=f"{kill_after} of {nchunks} chunks acknowledged before the kill"),
        Figure("resumed_push", second, note="the missing bytes over the second push's time (finalize included)"),
    ]
    return res

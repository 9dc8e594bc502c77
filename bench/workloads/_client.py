"""The client side of the sync workloads (4–6), run in its own process: ``python -m bench.workloads._client MODE ...``.

Every client runs in a subprocess, so it has a core and a GIL of its own, and the
emulator (in the benchmark process) does not slow it down by sharing them. Its
peak RSS is its own: ``VmHWM`` read from ``/proc/self/status`` as it ends (the
``ru_maxrss`` that ``wait4`` reports for a child starts from the parent's RSS at
the fork, here the benchmark process with its emulator). Each mode times
only its work (not the interpreter start-up or the imports) and prints one JSON
line on stdout.

The credential comes in ``SATCHEL_BENCH_TOKEN`` (sent as a bearer token, or as the webauthn cookie
when ``SATCHEL_BENCH_CREDENTIAL=cookie``), the catalog id in ``SATCHEL_BENCH_CATALOG`` (default 1).

Modes:

- ``push STORE URL [--chunk-size N] [--threshold N] [--transfers N]``:
  ``ml.push`` of the store to the emulator (``SATCHEL_CRASH_AT`` works here).
- ``idle STORE``: imports satchel and opens the store, pushes nothing (the RSS baseline).
- ``rawput URL FILE OBJECT_PATH MD5_B64 [--chunk-size N]``: one streaming httpx ``PUT`` of FILE, with
  ``Content-MD5`` (on a 413, as a real Hatrac answers above 128 MiB, a bare upload job in N-byte chunks).
- ``rawputs URL MANIFEST [--threads 4]``: one bare httpx ``PUT`` per file, from 4 threads (the HTTP floor).
- ``derivapy URL MANIFEST``: the files of MANIFEST uploaded the way deriva-ml 1.24 does, with deriva-py.
- ``bundle-export STORE OUT`` / ``bundle-import STORE BUNDLE``: ``ml.export_bundle`` / ``ml.import_bundle``
  (workload 8; no server), with the time spent in its parts (fsync, syncfs, writing or staging the bag).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import time


def _vm_hwm() -> int | None:
    """This process's peak resident set (``VmHWM``), in bytes: its own memory since its exec, nothing inherited."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _cpu() -> float:
    """CPU seconds (user + system) this process has used so far."""
    t = os.times()
    return t.user + t.system


def _print(doc: dict) -> None:
    print(json.dumps({**doc, "vm_hwm_bytes": _vm_hwm()}), flush=True)


def _auth(args: argparse.Namespace) -> dict[str, str]:
    """The request header carrying the credential: a bearer token (the emulator) or a webauthn cookie."""
    if args.credential == "cookie":
        return {"Cookie": f"webauthn={args.token}"}
    return {"Authorization": f"Bearer {args.token}"}


def _satchel_credential(args: argparse.Namespace):
    from satchel.remote import Credential

    if args.credential == "cookie":
        return Credential.cookie(f"webauthn={args.token}")
    return Credential.bearer(args.token)


def _push(args: argparse.Namespace) -> None:
    import threading

    from satchel import DerivaML
    from satchel.remote import Remote
    from satchel.sync.objects import ObjectSender

    from bench.workloads._common import HOST

    options = {}
    if args.chunk_size:
        options["chunk_size"] = args.chunk_size
    if args.threshold:
        options["chunked_threshold"] = args.threshold
    if args.transfers:
        options["transfers"] = args.transfers

    # the journal write after each object, timed (summed over the worker threads)
    record = {"calls": 0, "seconds": 0.0}
    lock = threading.Lock()
    original = getattr(ObjectSender, "_record", None)

    def timed_record(self, *a, **k):
        start = time.perf_counter()
        try:
            return original(self, *a, **k)
        finally:
            with lock:
                record["seconds"] += time.perf_counter() - start
                record["calls"] += 1

    if original is not None:
        ObjectSender._record = timed_record
    with DerivaML(HOST, "1", working_dir=args.store) as ml, \
            Remote(args.url, args.catalog, credential=_satchel_credential(args)) as remote:
        last: dict[str, float] = {}  # step -> seconds since the start at its last progress event

        def progress(event) -> None:
            step = "objects" if event.step == "bytes" else event.step
            last.pop(step, None)  # keep the order of the steps' last events
            last[step] = time.perf_counter() - t0

        c0, t0 = _cpu(), time.perf_counter()
        result = ml.push(remote=remote, progress=progress, **options)
        seconds, cpu = time.perf_counter() - t0, _cpu() - c0
    steps, prev = {}, 0.0
    for step, at in last.items():  # a step's time: from the previous step's last event to its own
        steps[step] = round(at - prev, 4)
        prev = at
    steps["status and RID pool"] = round(seconds - prev, 4)  # no progress events after the links
    _print({
        "seconds": seconds, "cpu_seconds": cpu, "steps": steps, "object_records": record,
        "ok": result.ok, "bytes_sent": result.bytes_sent,
        "done": dict(result.done), "skipped": dict(result.skipped),
        "failed": [str(f) for f in result.failed][:5],
    })


def _idle(args: argparse.Namespace) -> None:
    from satchel import DerivaML

    from bench.workloads._common import HOST

    with DerivaML(HOST, "1", working_dir=args.store) as ml:
        ml.sync_plan()
    _print({"seconds": 0.0})


def _file_blocks(path: str, block: int = 1 << 20):
    with open(path, "rb") as f:
        while data := f.read(block):
            yield data


def _rawput(args: argparse.Namespace) -> None:
    import httpx

    size = os.path.getsize(args.file)
    headers = {**_auth(args), "Content-MD5": args.md5,
               "Content-Length": str(size), "Content-Type": "application/octet-stream"}
    with httpx.Client(base_url=args.url, timeout=600) as client:
        t0 = time.perf_counter()
        response = client.put(args.object_path, content=_file_blocks(args.file), headers=headers)
        mode = "one PUT"
        if response.status_code == 413 and args.chunk_size:
            # a real Hatrac takes at most 128 MiB in one request by default: the floor is then a bare job
            t0 = time.perf_counter()
            response = _rawjob(client, args, size)
            mode = f"one bare upload job, {args.chunk_size} byte chunks"
        seconds = time.perf_counter() - t0
    response.raise_for_status()
    _print({"seconds": seconds, "status": response.status_code, "mode": mode,
            "location": response.headers.get("Location")})


def _rawjob(client, args: argparse.Namespace, size: int):
    """Create a job, PUT every chunk in order (no per-chunk MD5, no journal), finalize: the chunked floor."""
    auth = _auth(args)
    job = client.post(f"{args.object_path}-job;upload?parents=true", headers={**auth, "Content-Type": "application/json"},
                      json={"chunk-length": args.chunk_size, "content-length": size, "content-md5": args.md5,
                            "content-type": "application/octet-stream"})
    job.raise_for_status()
    url = job.headers["Location"]
    with open(args.file, "rb") as f:
        for index in range(-(-size // args.chunk_size)):
            data = f.read(args.chunk_size)
            client.put(f"{url}/{index}", content=data, headers={**auth, "Content-Type": "application/octet-stream"}
                       ).raise_for_status()
    return client.post(url, headers=auth)


def _rawputs(args: argparse.Namespace) -> None:
    """Each file of MANIFEST in one bare httpx ``PUT`` (``Content-MD5``, no HEAD, no journal), from
    ``--threads`` threads with a connection each: what one request per file costs on this server."""
    import threading

    import httpx

    with open(args.manifest) as f:
        manifest = json.load(f)
    table = manifest["table"]
    files = [item["path"] for item in manifest["files"]]
    bodies = []
    for path in files:  # read and hashed before the clock starts: the journal knows the MD5s
        with open(path, "rb") as fh:
            data = fh.read()
        bodies.append((os.path.basename(path), data, hashlib.md5(data).digest()))
    auth = _auth(args)
    errors: list[str] = []

    def worker(part: list) -> None:
        with httpx.Client(base_url=args.url, headers=auth, timeout=60) as client:
            for name, data, md5 in part:
                r = client.put(f"/hatrac/{table}/raw.{md5.hex()}.{name}?parents=true", content=data,
                               headers={"Content-MD5": base64.b64encode(md5).decode(),
                                        "Content-Type": "application/octet-stream", "If-None-Match": "*"})
                if r.status_code != 201:
                    errors.append(f"{r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=worker, args=(bodies[i::args.threads],)) for i in range(args.threads)]
    c0, t0 = _cpu(), time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"{len(errors)} PUTs failed, e.g. {errors[0]}")
    _print({"seconds": seconds, "cpu_seconds": _cpu() - c0, "files": len(bodies)})


def _derivapy(args: argparse.Namespace) -> None:
    """deriva-ml 1.24's way with deriva-py: per file a ``HatracStore.put_obj`` (HEAD, then PUT) and a
    catalog insert of its asset row; then the association rows, batched by the pathbuilder."""
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        os.environ.pop(var, None)
    from deriva.core import DerivaServer, HatracStore

    with open(args.manifest) as f:
        manifest = json.load(f)
    schema, table = manifest["schema"], manifest["table"]
    host = args.url.split("://", 1)[1]
    if args.credential == "cookie":  # deriva-py sends a cookie only to a host name without dots
        host = host.replace("127.0.0.1", "localhost")
        creds = {"cookie": f"webauthn={args.token}"}
    else:
        creds = {"bearer-token": args.token}
    catalog = DerivaServer("http", host, credentials=creds).connect_ermrest(args.catalog)
    pb = catalog.getPathBuilder()
    store = HatracStore("http", host, credentials=creds)
    ml_schema = pb.schemas["deriva-ml"]
    # untimed set-up: the execution the files are outputs of
    (execution,) = ml_schema.tables["Execution"].insert([{"Description": "deriva-py reference", "Status": "Running"}])
    asset_table = pb.schemas[schema].tables[table]
    type_table = pb.schemas[schema].tables[f"{table}_Asset_Type"]
    link_table = pb.schemas[schema].tables[f"{table}_Execution"]

    c0, t0 = _cpu(), time.perf_counter()
    rids: list[tuple[str, list[str]]] = []
    for item in manifest["files"]:
        path, name = item["path"], os.path.basename(item["path"])
        with open(path, "rb") as fh:
            digest = hashlib.md5(fh.read()).digest()
        md5_hex, md5_b64 = digest.hex(), base64.b64encode(digest).decode()
        url = f"/hatrac/{table}/{md5_hex}.{name}"
        location = store.put_obj(url, path, md5=md5_b64, content_disposition=f"filename*=UTF-8''{name}")
        (row,) = asset_table.insert([{"URL": location, "Filename": name, "Length": os.path.getsize(path),
                                      "MD5": md5_hex, "Description": None}])
        rids.append((row["RID"], item["types"]))
    type_table.insert([{table: rid, "Asset_Type": t} for rid, types in rids for t in types], on_conflict_skip=True)
    link_table.insert([{table: rid, "Execution": execution["RID"], "Asset_Role": "Output"} for rid, _ in rids],
                      on_conflict_skip=True)
    seconds = time.perf_counter() - t0
    _print({"seconds": seconds, "cpu_seconds": _cpu() - c0, "assets": len(rids)})


def _bundle(args: argparse.Namespace) -> None:
    """Export or import one bundle; the seconds of the call, and of its parts (patched in, summed)."""
    import contextlib

    from satchel import DerivaML
    from satchel.bundle import transfer

    from bench.harness import Accumulator
    from bench.workloads._common import HOST

    # label -> (owner, names it has had): the bundle code is young, a part not found is left out
    parts = {"fsync": (os, ("fsync",)), "syncfs": (transfer, ("sync_filesystem",))}
    if args.mode == "bundle-export":
        parts["write the bag"] = (transfer, ("_write",))
    else:
        parts["stage and verify"] = (transfer, ("read_bag",))
        parts["check records"] = (transfer, ("check_records", "_check_records"))
        parts["check identities"] = (transfer, ("check_identities",))
        parts["objects into the cache"] = (transfer, ("_take_objects",))
        parts["apply rows"] = (transfer, ("_apply_records",))
    clocks = {}
    with DerivaML(HOST, "1", working_dir=args.store) as ml, contextlib.ExitStack() as patches:
        for label, (owner, names) in parts.items():
            name = next((n for n in names if hasattr(owner, n)), None)
            if name is not None:
                clocks[label] = patches.enter_context(Accumulator().patch(owner, name))
        c0, t0 = _cpu(), time.perf_counter()
        if args.mode == "bundle-export":
            report = ml.export_bundle(args.bundle)
        else:
            report = ml.import_bundle(args.bundle)
        seconds, cpu = time.perf_counter() - t0, _cpu() - c0
    _print({"seconds": seconds, "cpu_seconds": cpu, "report": report.to_json(),
            "parts": {name: round(c.seconds, 4) for name, c in clocks.items()}})


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.workloads._client")
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("push")
    p.add_argument("store")
    p.add_argument("url")
    p.add_argument("--chunk-size", type=int)
    p.add_argument("--threshold", type=int)
    p.add_argument("--transfers", type=int)
    p = sub.add_parser("idle")
    p.add_argument("store")
    p = sub.add_parser("rawput")
    for name in ("url", "file", "object_path", "md5"):
        p.add_argument(name)
    p.add_argument("--chunk-size", type=int, help="on 413, send the file as a bare upload job in chunks of this size")
    p = sub.add_parser("rawputs")
    for name in ("url", "manifest"):
        p.add_argument(name)
    p.add_argument("--threads", type=int, default=4)
    p = sub.add_parser("derivapy")
    for name in ("url", "manifest"):
        p.add_argument(name)
    for mode in ("bundle-export", "bundle-import"):
        p = sub.add_parser(mode)
        p.add_argument("store")
        p.add_argument("bundle")
    args = ap.parse_args(argv)
    args.token = os.environ.get("SATCHEL_BENCH_TOKEN", "")
    args.credential = os.environ.get("SATCHEL_BENCH_CREDENTIAL", "bearer")
    args.catalog = os.environ.get("SATCHEL_BENCH_CATALOG", "1")
    {"push": _push, "idle": _idle, "rawput": _rawput, "rawputs": _rawputs, "derivapy": _derivapy,
     "bundle-export": _bundle, "bundle-import": _bundle}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())

"""``python -m bench``: run the workloads, write one JSON document, print a table."""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench.harness import REPO, Context, WorkloadResult, machine_facts, render_table, settle, utc_now
from bench.workloads import BY_NAME, WORKLOADS


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench",
        description="satchel's benchmark suite (issue 5). Run from the repository root. See docs/performance.md.",
    )
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run that only checks the suite runs")
    ap.add_argument(
        "--only", action="append", metavar="NAME", choices=list(BY_NAME),
        help=f"run only this workload (repeatable): {', '.join(BY_NAME)}",
    )
    ap.add_argument("--repeat", type=int, default=3, metavar="N", help="timed repeats per figure (default 3)")
    ap.add_argument(
        "--out", metavar="FILE",
        help="write the JSON here ('-' for stdout, then the table goes to stderr); "
        "default bench/results/<time>.json",
    )
    ap.add_argument(
        "--data-dir", metavar="DIR", type=Path,
        help="where to create the benchmark data (a fresh directory inside it, removed at the end); default $TMPDIR",
    )
    ap.add_argument("--keep", action="store_true", help="keep the generated data")
    ap.add_argument("--profile", metavar="DIR", type=Path, help="also write a cProfile file per workload to DIR")
    ap.add_argument("--list", action="store_true", help="list the workloads and exit")
    ap.add_argument(
        "--remote", metavar="real|URL",
        help="run the sync workloads (push-small, push-large, resume) against a real ERMrest + Hatrac instead of "
        "the emulator: 'real' is the server of ../shared/real-deriva on http://127.0.0.1 (logs in as test2, "
        "provisions catalogs as test1); a URL needs --cookie",
    )
    ap.add_argument("--cookie", metavar="VALUE", help="with --remote URL: the pushing user's webauthn cookie")
    ap.add_argument("--admin-cookie", metavar="VALUE",
                    help="with --remote URL: a cookie that may create catalogs and top-level Hatrac namespaces "
                    "(default: --cookie)")
    ap.add_argument("--access-log", metavar="FILE", type=Path, default=Path("/var/log/apache2/access.log"),
                    help="with --remote: Apache's access log, read for request counts (default %(default)s)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if args.remote and args.remote != "real" and not args.cookie:
        ap.error("--remote URL needs --cookie (or use --remote real for ../shared/real-deriva's server)")
    if args.remote and not args.only:
        args.only = list(REMOTE_WORKLOADS)
    if args.remote and set(args.only) - set(REMOTE_WORKLOADS):
        ap.error(f"--remote runs only {', '.join(REMOTE_WORKLOADS)}")
    return args


#: the workloads that talk to a server, and so can run against a real one
REMOTE_WORKLOADS = ("push-small", "push-large", "resume")


def remote_server(args: argparse.Namespace):
    """The real server of ``--remote``, logged in; None for the emulator."""
    if not args.remote:
        return None
    from bench.workloads._real import RealServer

    if args.remote == "real":
        return RealServer.login("http://127.0.0.1", access_log=args.access_log)
    return RealServer.with_cookies(args.remote.rstrip("/"), args.cookie, args.admin_cookie, access_log=args.access_log)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for m in WORKLOADS:
            print(f"{m.NUMBER}  {m.NAME:<16} {m.TITLE}" + (f"  [{m.BLOCKED}]" if hasattr(m, "BLOCKED") else ""))
        return 0
    chosen = [m for m in WORKLOADS if not args.only or m.NAME in args.only]
    if args.data_dir is not None:
        args.data_dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="satchel-bench-", dir=args.data_dir)).resolve()
    os.environ["SATCHEL_HOME"] = str(root / "home")  # nothing touches ~/.satchel

    def log(msg: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    remote = remote_server(args)
    doc = {
        "suite": "satchel bench (issue 5)",
        "server": "the emulator (satchel.testing.DerivaServer), a fresh one per measurement" if remote is None
        else f"a real ERMrest + Hatrac at {remote.url}, a fresh catalog per measurement, pushing as {remote.grant}",
        "format": 1,
        "started_at": utc_now(),
        "command": ["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)],
        "quick": args.quick,
        "repeat": args.repeat,
        "machine": machine_facts(root),
        "workloads": [],
    }
    failed = False
    try:
        for i, mod in enumerate(chosen):
            res = WorkloadResult(mod.NAME, mod.NUMBER, mod.TITLE, params=mod.sizes(args.quick))
            if hasattr(mod, "BLOCKED"):
                res.status = mod.BLOCKED
                res.targets = list(mod.TARGETS)
                doc["workloads"].append(res.to_json())
                continue
            data = root / mod.NAME
            data.mkdir()
            ctx = Context(data_dir=data, quick=args.quick, repeat=args.repeat, log=log, remote=remote,
                          salt=0 if remote is None else time.time_ns() % 1_000_000_007)
            start = time.perf_counter()
            try:
                if args.profile:
                    args.profile.mkdir(parents=True, exist_ok=True)
                    prof = cProfile.Profile()
                    res = prof.runcall(mod.run, ctx)
                    prof.dump_stats(str(args.profile / f"{mod.NAME}.prof"))
                else:
                    res = mod.run(ctx)
            except Exception as exc:  # report it, run the others
                failed = True
                res.status = f"error: {type(exc).__name__}: {exc}"
                res.info["traceback"] = traceback.format_exc()
                log(f"{mod.NAME} failed:\n{res.info['traceback']}")
            res.seconds = time.perf_counter() - start
            doc["workloads"].append(res.to_json())
            if not args.keep:
                shutil.rmtree(data, ignore_errors=True)
                if i + 1 < len(chosen):
                    settle(root, pause=0.0 if args.quick else 2.0)  # creation right after a big delete is slow
    finally:
        doc["finished_at"] = utc_now()
        doc["machine"]["loadavg_at_end"] = os.getloadavg()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            log(f"data kept in {root}")
    text = json.dumps(doc, indent=2)
    table = render_table(doc)
    if args.out == "-":
        print(text)
        print(table, file=sys.stderr)
    else:
        out = Path(args.out) if args.out else REPO / "bench" / "results" / (
            time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + ("-quick" if args.quick else "") + ".json"
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
        print(table)
        log(f"JSON written to {out}")
    return 1 if failed else 0

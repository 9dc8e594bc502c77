"""What the sync workloads (4–6) share: an emulator per measurement, clients in subprocesses, stores to push.

The emulator (``satchel.testing.DerivaServer``) runs in a thread of the
benchmark process, on loopback, with its state in the benchmark's data
directory; every client (satchel's push, the raw ``PUT``, deriva-py) runs in a
subprocess of its own (``bench.workloads._client``), so client and server each
have a core, and the client's peak RSS is its own. Each measurement gets a fresh
emulator, so object names never collide and ``server.stats`` counts that
measurement alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import REPO, Context, settle
from bench.workloads._common import new_execution, open_store

MiB = 1 << 20


@contextlib.contextmanager
def emulator(ctx: Context, name: str, **options: Any) -> Iterator[Any]:
    """A fresh ``DerivaServer`` with its state in a new directory, removed afterwards."""
    from satchel.testing.server import DerivaServer

    data = ctx.fresh_dir(name)
    server = DerivaServer(data, **options)
    server.start()
    try:
        yield server
    finally:
        server.close()
        shutil.rmtree(data, ignore_errors=True)


@dataclass
class Server:
    """The server of one measurement: a fresh emulator, or a fresh catalog on a real server (``--remote``)."""

    url: str
    catalog_id: str
    token: str
    credential: str  # "bearer" or "cookie": how the token is sent
    stats: Any  # .snapshot(): {(method, kind): (requests, request-body bytes)}
    emulator: Any = None  # the DerivaServer, when it is one
    real: Any = None  # the RealCatalog, when it is one
    _cpu0: float = 0.0

    def log(self) -> list[tuple[str, str, int]]:
        """(method, target, status) of the requests received so far."""
        if self.emulator is not None:
            return list(self.emulator.log)
        return [entry[:3] for entry in self.real.log.entries()]

    def cpu(self) -> dict[str, float]:
        """The server's CPU seconds since the measurement began, per part."""
        if self.emulator is not None:
            return {"emulator (benchmark process)": round(cpu_seconds() - self._cpu0, 2)}
        return self.real.cpu_delta()

    def object_size(self, path: str) -> int | None:
        """The current size of a Hatrac object, or None."""
        if self.emulator is not None:
            current = self.emulator.app.hatrac.current(path)
            return None if current is None else current["size"]
        from satchel.remote import Credential, Remote

        with Remote(self.url, self.catalog_id, credential=Credential.cookie(f"webauthn={self.token}")) as r:
            info = r.hatrac.head(path)
        return None if info is None else info.size

    @property
    def bodies_counted(self) -> bool:
        """Whether ``stats`` counts request-body bytes (the emulator does; Apache's log does not)."""
        return self.emulator is not None


def server_note(ctx: Context) -> str:
    if ctx.remote is None:
        return "client in a subprocess, emulator in the benchmark process: one core each, timed inside the client"
    return (f"client in a subprocess, timed inside it; server: {ctx.remote.url}, a fresh catalog per measurement; "
            "request counts from Apache's access log, server CPU from /proc per part (info: cpu_seconds)")


@contextlib.contextmanager
def deriva_server(ctx: Context, name: str, **emulator_options: Any) -> Iterator[Server]:
    """The server of one measurement: a fresh emulator, or with ``ctx.remote`` a fresh catalog there."""
    if ctx.remote is None:
        with emulator(ctx, name, **emulator_options) as server:
            yield Server(server.url, server.catalog_id, server.token, "bearer", server.stats, emulator=server,
                         _cpu0=cpu_seconds())
        return
    from bench.workloads._real import new_catalog

    catalog = new_catalog(ctx.remote)
    yield Server(catalog.url, catalog.catalog_id, ctx.remote.cookie, "cookie", catalog.log, real=catalog)


TOKEN_VARIABLE = "SATCHEL_BENCH_TOKEN"
CREDENTIAL_VARIABLE = "SATCHEL_BENCH_CREDENTIAL"  # bearer (the emulator) or cookie (a real server)
CATALOG_VARIABLE = "SATCHEL_BENCH_CATALOG"


@dataclass
class ClientRun:
    returncode: int
    out: dict[str, Any]
    max_rss_bytes: int  # the client's VmHWM
    stderr: str
    wait4_maxrss: int  # KiB → bytes; includes the parent's RSS at fork, see run_client


def run_client(*args: str, server: Server | None = None, token: str | None = None, env: dict[str, str] | None = None,
               check: bool = True, timeout: float = 1800) -> ClientRun:
    """Run ``python -m bench.workloads._client ARGS``: its JSON line, exit status and its own peak RSS.

    ``token`` (or ``server``'s, with its kind and catalog) reaches the client in
    ``SATCHEL_BENCH_TOKEN``, not on its command line (where ``ps`` shows it, and where a token
    starting with ``-`` would read as an option).

    The peak RSS is the ``VmHWM`` the client reports as it ends. (``ru_maxrss`` from ``wait4``
    is kept in ``wait4_maxrss``: on Linux it starts from the parent's RSS at the fork, because
    the exec'd child inherits the old address space's high-water mark, so it cannot be lower
    than the benchmark process's own size.)"""
    environ = dict(os.environ)
    environ.pop("SATCHEL_CRASH_AT", None)
    environ.update(env or {})
    if server is not None:
        token = server.token
        environ[CREDENTIAL_VARIABLE] = server.credential
        environ[CATALOG_VARIABLE] = server.catalog_id
    if token is not None:
        environ[TOKEN_VARIABLE] = token
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "bench.workloads._client", *args], cwd=REPO, env=environ,
                                stdout=out, stderr=err, text=True)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    doc = json.loads(lines[-1]) if lines else {}
    if check and (proc.returncode != 0 or not doc):
        raise RuntimeError(f"client {args[0]} failed ({proc.returncode}): {stderr[-2000:]}")
    return ClientRun(proc.returncode, doc, doc.get("vm_hwm_bytes") or 0, stderr, usage.ru_maxrss * 1024)


def cpu_seconds() -> float:
    """CPU seconds of the benchmark process: during a client run, that is the emulator's work."""
    t = os.times()
    return t.user + t.system


def stats_delta(before: dict, after: dict) -> dict[tuple[str, str], tuple[int, int]]:
    """Requests and bytes received per (method, kind) between two ``server.stats.snapshot()``s."""
    out = {}
    for key, (n, b) in after.items():
        n0, b0 = before.get(key, (0, 0))
        if n - n0 or b - b0:
            out[key] = (n - n0, b - b0)
    return out


def requests(delta: dict, prefix: str = "") -> int:
    return sum(n for (_, kind), (n, _) in delta.items() if kind.startswith(prefix))


def bytes_in(delta: dict, prefix: str = "", method: str | None = None) -> int:
    return sum(b for (m, kind), (_, b) in delta.items() if kind.startswith(prefix) and (method is None or m == method))


def delta_json(delta: dict) -> dict[str, list[int]]:
    return {f"{m} {kind}": [n, b] for (m, kind), (n, b) in sorted(delta.items())}


def capture_file(ctx: Context, src: Path, table: str) -> Path:
    """A new store holding ``src`` as one committed output (symlink mode: hashed and copied into the cache)."""
    store = ctx.fresh_dir("store")
    ml = open_store(store)
    try:
        exe = new_execution(ml)
        with exe:
            exe.asset_file_path(table, str(src))
        report = exe.commit_output_assets()
        assert report.total_uploaded == 1, report
    finally:
        ml.close()
    settle(store)
    return store


def stamp(path: Path, nonce: int) -> None:
    """Make the file's bytes new (its first 16 bytes from ``nonce``), in place: a fresh MD5, no rewrite."""
    import hashlib

    with open(path, "r+b") as f:
        f.write(hashlib.md5(str(nonce).encode()).digest())

"""Helpers for sync tests (imported by their modules and by conftest.py)."""

from __future__ import annotations

import hashlib
import random
import subprocess
import threading
import time
from collections import Counter

import httpx

from satchel import DerivaML, ExecutionConfiguration
from satchel.remote import Credential, Remote, RetryPolicy

KiB = 1024

#: one kind of fault each, injected by the fault proxy on the requests matching (method, path fragment)
FAULTS = {
    "lost-response": lambda proxy, m, p: proxy.lose_response(method=m, path_contains=p),
    "reset": lambda proxy, m, p: proxy.reset_after(10, method=m, path_contains=p),
    "503-burst": lambda proxy, m, p: proxy.fail(503, times=3, method=m, path_contains=p),
    "500": lambda proxy, m, p: proxy.fail(500, times=1, method=m, path_contains=p),
}

FAST_RETRY = RetryPolicy(attempts=6, base_delay=0.01, max_delay=0.05, max_retry_after=0.2, deadline=20,
                         rng=random.Random(11))
FAST_TIMEOUT = httpx.Timeout(connect=2.0, read=5.0, write=5.0, pool=5.0)


def make_remote(url: str, token: str) -> Remote:
    return Remote(url, "1", credential=Credential.bearer(token), retry=FAST_RETRY, timeout=FAST_TIMEOUT)


def record_run(ml: DerivaML, outputs: dict[str, tuple[str, bytes, list[str]]], *, inputs: list[str] = ()) -> tuple:
    """One execution producing ``outputs`` {file name: (table, bytes, types)}; returns (execution, {name: rid})."""
    if "Training" not in {t.name for t in ml.list_vocabulary_terms("Workflow_Type")}:
        ml.add_term("Workflow_Type", "Training", description="training")
    exe = ml.create_execution(ExecutionConfiguration(workflow=ml.create_workflow("train.py", "Training"), description="run"))
    with exe:
        for rid in inputs:
            exe.download_asset(rid, exe.working_dir / "in")
        for name, (table, data, types) in outputs.items():
            exe.asset_file_path(table, name, asset_types=types).write_bytes(data)
    report = exe.commit_output_assets()
    return exe, {a.file_name: a.asset_rid for a in report.assets}


def catalog_rows(remote: Remote, table: str, schema: str = "test-schema") -> list[dict]:
    return remote.catalog.get(schema, table, limit=None)


def random_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n) if n else b""


__all__ = ["FAULTS", "catalog_rows", "kill_at_work", "make_remote", "mirror_of", "push_at_once", "random_bytes", "record_run"]


def populate(ml: DerivaML, salt: int = 0) -> dict:
    """Two executions: outputs in two tables, one chunked file, tags, an input link, an edited description.

    ``salt`` makes the bytes new (a real server keeps every object an earlier run sent)."""
    ml.add_term("Asset_Type", "Weights", description="weights")
    outputs = {
        "big.bin": ("Model", random_bytes(200 * KiB + 123, 1 + salt), ["Weights"]),
        "small.bin": ("Model", random_bytes(3000, 2 + salt), ["Model_File"]),
        "a.png": ("Image", random_bytes(100, 3 + salt), []),
        "b.png": ("Image", random_bytes(0, 4 + salt), []),
    }
    _, rids = record_run(ml, outputs)
    metrics = b"accuracy 0.9" + (f" run {salt}".encode() if salt else b"")
    reader, _ = record_run(ml, {"eval.txt": ("Execution_Metadata", metrics, ["Metrics_File"])},
                           inputs=[rids["small.bin"]])
    ml.update_asset(rids["small.bin"], description="edited offline")
    return {name: (table, data) for name, (table, data, _) in outputs.items()}


def check_catalog(remote, outputs: dict) -> None:
    """Exactly the expected rows and objects, each once (object versions as Hatrac lists them)."""
    for table in ("Model", "Image"):
        rows = catalog_rows(remote, table)
        expected = {n: d for n, (t, d) in outputs.items() if t == table}
        assert sorted(r["Filename"] for r in rows) == sorted(expected), table
        for r in rows:
            data = expected[r["Filename"]]
            md5 = hashlib.md5(data).hexdigest()
            assert (r["Length"], r["MD5"]) == (len(data), md5)
            assert r["URL"] == f"/hatrac/{table}/{md5}.{r['Filename']}"
            versions = remote.hatrac.versions(r["URL"])
            assert len(versions) == 1, f"{r['URL']} has {len(versions)} versions"
    (meta,) = remote.catalog.get("deriva-ml", "Execution_Metadata")
    assert meta["Filename"] == "eval.txt"
    executions = remote.catalog.get("deriva-ml", "Execution")
    assert len(executions) == 2 and {e["Status"] for e in executions} == {"Uploaded"}
    assert len(remote.catalog.get("deriva-ml", "Workflow")) == 1
    model_tags = Counter((r["Model"], r["Asset_Type"]) for r in catalog_rows(remote, "Model_Asset_Type"))
    assert set(model_tags.values()) == {1}
    assert len(model_tags) == 5  # big: Weights, Output_File; small: Model_File, Output_File, Input_File
    links = Counter((r["Model"], r["Execution"]) for r in catalog_rows(remote, "Model_Execution"))
    assert set(links.values()) == {1} and len(links) == 3
    small = next(r for r in catalog_rows(remote, "Model") if r["Filename"] == "small.bin")
    assert small["Description"] == "edited offline"
    terms = remote.catalog.lookup("deriva-ml", "Asset_Type", "Name", ["Weights"])
    assert len(terms) == 1


def push_at_once(server, stores: list[DerivaML], **options) -> list:
    """Every store pushes in its own thread, all released at the same moment; their results, in order."""
    barrier = threading.Barrier(len(stores))
    results: list = [None] * len(stores)
    failures: list[BaseException] = []

    def push(i: int) -> None:
        try:
            with make_remote(server.url, server.token) as remote:
                barrier.wait(10)
                results[i] = stores[i].push(remote=remote, **options)
        except BaseException as exc:  # surfaced below
            failures.append(exc)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures
    return results


def kill_at_work(command: list[str], env: dict, server, rng: random.Random, *, times: int = 6,
                 requests: tuple[int, int] = (2, 14)) -> int:
    """Start ``command`` ``times`` times and SIGKILL it once the server has seen a random number of
    its requests (and up to a millisecond later). Returns how many kills found it still at work."""
    interrupted = 0
    for _ in range(times):
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        target = server.stats.requests() + rng.randint(*requests)
        deadline = time.monotonic() + 60
        while server.stats.requests() < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.001))
        interrupted += proc.poll() is None
        proc.kill()
        proc.communicate(timeout=30)
    return interrupted


def mirror_of(ml: DerivaML) -> dict:
    """What a pull leaves that a user can see: every asset with its tags and links (the prefetched bytes
    downloadable offline and verified), the Asset_Type terms, and what a push would send."""
    assets = {
        a.rid: (a.asset_table, a.filename, a.length, a.md5, a.url, a.description, sorted(a.asset_types),
                sorted((e.execution_rid, e.asset_role) for e in a.executions))
        for a in ml.find_assets()
    }
    for rid in assets:
        assert ml.lookup_asset(rid).download(ml.working_dir / "check" / rid).is_file()
    assert ml.verify().ok
    terms = sorted(t.name for t in ml.list_vocabulary_terms("Asset_Type"))
    return {"assets": assets, "terms": terms, "would_send": ml.status()["would_send"]}

"""Every fault kind against every idempotent client call.

A single fault is absorbed by retries; a persistent one ends in a RemoteError
that names the request and the reason, well within the timeouts.
"""

from __future__ import annotations

import os
import random
import time
import uuid

import httpx
import pytest

from satchel import errors
from satchel.remote import RetryPolicy, urls

S, T = "test-schema", "Image"

FAULTS = {
    "503": lambda p, n: p.fail(503, times=n),
    "500": lambda p, n: p.fail(500, times=n),
    "reset-response": lambda p, n: p.reset_after(60, times=n),
    "reset-request": lambda p, n: p.reset_after(10, times=n, direction="request"),
    "lost-response": lambda p, n: p.lose_response(times=n),
    "delay": lambda p, n: p.delay(0.6, times=n),
}
REASONS = {
    "503": "503", "500": "500", "reset-response": "no HTTP answer", "reset-request": "no HTTP answer",
    "lost-response": "no HTTP answer", "delay": "ReadTimeout",
}


def calls(remote, tmp_path):
    """Idempotent calls, each a fresh closure (some need fresh data per run)."""
    src = tmp_path / "obj.bin"
    if not src.exists():
        src.write_bytes(os.urandom(40_000))
    rid = remote.catalog.insert(S, T, [{"URL": f"/u/{uuid.uuid4()}", "Length": 1, "MD5": "m"}])[0]["RID"]
    doomed = remote.catalog.insert(S, T, [{"URL": f"/u/{uuid.uuid4()}", "Length": 1, "MD5": "m"}])[0]["RID"]
    job = remote.hatrac.create_job(f"/hatrac/Image/{uuid.uuid4()}", src, chunk_size=16_384)
    spare = remote.hatrac.create_job(f"/hatrac/Image/{uuid.uuid4()}", src, chunk_size=16_384)
    stored = remote.hatrac.put(f"/hatrac/Image/r-{uuid.uuid4()}", src)
    fresh = str(uuid.uuid4())
    return {
        "catalog.discover": lambda: remote.catalog.discover(),
        "catalog.model": lambda: remote.catalog.model(),
        "catalog.entity_rid": lambda: remote.catalog.entity_rid(rid),
        "catalog.iter_rows": lambda: list(remote.catalog.iter_rows(S, T, page_size=2)),
        "catalog.project": lambda: list(remote.catalog.project(S, T, ("URL",), urls.eq("RID", rid))),
        "catalog.count": lambda: remote.catalog.count(S, T),
        "catalog.delete": lambda: remote.catalog.delete(S, T, urls.eq("RID", doomed)),
        "hatrac.get_range": lambda: remote.hatrac.get_range(stored.split(":")[0], 0, 99),
        "hatrac.job_status": lambda: remote.hatrac.job_status(job),
        "hatrac.open_jobs": lambda: remote.hatrac.open_jobs(job.path, md5=job.md5, size=job.size),
        "hatrac.cancel": lambda: remote.hatrac.cancel(spare),
        "catalog.info": lambda: remote.catalog.info(),
        "catalog.get": lambda: remote.catalog.get(S, T, urls.eq("RID", rid)),
        "catalog.lookup": lambda: remote.catalog.lookup(S, T, "RID", [rid], columns=("RID",)),
        "catalog.insert-skip": lambda: remote.catalog.insert(
            S, T, [{"URL": f"/u/{fresh}", "Length": 2, "MD5": "m"}], on_conflict_skip=True),
        "catalog.update": lambda: remote.catalog.update(S, T, [{"RID": rid, "Description": "x"}]),
        "catalog.lease": lambda: remote.catalog.lease_rids([fresh]),
        "hatrac.head": lambda: remote.hatrac.head("/hatrac/Image/none"),
        "hatrac.put": lambda: remote.hatrac.upload(f"/hatrac/Image/{fresh}", src),
        "hatrac.chunk": lambda: remote.hatrac.put_chunk(job, src, 1),
        "hatrac.download": lambda: remote.hatrac.download(
            remote.hatrac.put(f"/hatrac/Image/d-{fresh}", src), tmp_path / f"d-{fresh}"),
    }


@pytest.mark.parametrize("fault", list(FAULTS))
def test_single_fault_is_absorbed(fault, deriva_server, fault_proxy, remote_factory, tmp_path):
    remote = remote_factory(fault_proxy.url, deriva_server.token,
                            timeout=httpx.Timeout(connect=1, read=0.3, write=1, pool=1))
    for name, call in calls(remote, tmp_path).items():
        fault_proxy.clear()
        FAULTS[fault](fault_proxy, 1)
        start = time.monotonic()
        call()
        assert time.monotonic() - start < 5, name
    fault_proxy.clear()


@pytest.mark.parametrize("fault", list(FAULTS))
def test_persistent_fault_says_why(fault, deriva_server, fault_proxy, remote_factory, tmp_path):
    remote = remote_factory(fault_proxy.url, deriva_server.token,
                            timeout=httpx.Timeout(connect=1, read=0.3, write=1, pool=1),
                            retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, deadline=5,
                                              rng=random.Random(3)))
    selected = calls(remote, tmp_path)
    if fault == "delay":  # each attempt waits out the read timeout: a few calls show it
        selected = {k: selected[k] for k in ("catalog.get", "catalog.count", "hatrac.head", "hatrac.job_status")}
    if fault == "reset-request":  # cuts a request body: the calls that send one
        selected = {k: selected[k] for k in ("catalog.insert-skip", "catalog.update", "catalog.lease", "hatrac.put",
                                             "hatrac.chunk")}
    for name, call in selected.items():
        fault_proxy.clear()
        FAULTS[fault](fault_proxy, 1000)
        start = time.monotonic()
        with pytest.raises(errors.RemoteError) as info:
            call()
        message = str(info.value)
        assert REASONS[fault] in message and "gave up after 3 attempts" in message, (name, message)
        assert info.value.method and info.value.url and "127.0.0.1" in info.value.url, name
        assert time.monotonic() - start < 5, name
    fault_proxy.clear()


def test_refused_connections_fail_fast_for_every_call(deriva_server, fault_proxy, remote_factory, tmp_path):
    remote = remote_factory(fault_proxy.url, deriva_server.token)
    selected = calls(remote, tmp_path)
    fault_proxy.refuse()
    for name, call in selected.items():
        start = time.monotonic()
        with pytest.raises(errors.TransportError, match="connection refused"):
            call()
        assert time.monotonic() - start < 3, name
    fault_proxy.refuse(False)
    for call in selected.values():
        call()

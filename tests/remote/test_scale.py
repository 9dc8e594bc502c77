"""Concurrency and constant memory: many clients at once, large bodies streamed both ways."""

from __future__ import annotations

import os
import random
import threading
import tracemalloc

from satchel.remote import RetryPolicy, urls

MiB = 1024 * 1024


def test_concurrent_clients(deriva_server, remote_factory, tmp_path):
    """Writes that overlap in one catalog abort each other (503, as on ERMrest): keyed inserts are retried."""
    failures = []

    def work(n):
        # eight writers abort each other's transactions (as on ERMrest): a client backs off as a real one
        # does, with jitter of its own and room to grow, not the fault tests' five quick tries
        patient = RetryPolicy(attempts=12, base_delay=0.02, max_delay=0.5, deadline=30, rng=random.Random(n))
        try:
            with remote_factory(deriva_server.url, deriva_server.token, retry=patient) as r:
                rows = [{"URL": f"/u/{n}/{i}", "Length": i, "MD5": f"{n:016x}{i:016x}"} for i in range(20)]
                r.catalog.insert("test-schema", "Image", rows, max_rows=5, on_conflict_skip=True)
                src = tmp_path / f"f{n}.bin"
                src.write_bytes(os.urandom(20_000 + n))
                r.hatrac.upload(f"/hatrac/Image/f{n}.bin", src)
                r.hatrac.upload(f"/hatrac/Image/c{n}.bin", src, chunked_threshold=1, chunk_size=4096)
        except Exception as exc:  # collected for the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not failures and not deriva_server.errors
    with remote_factory(deriva_server.url, deriva_server.token) as r:
        assert len(list(r.catalog.iter_rows("test-schema", "Image", urls.geq("Length", 0)))) == 160
        rids = [row["RID"] for row in r.catalog.get("test-schema", "Image", limit=None)]
        assert len(set(rids)) == 160


def test_large_bodies_stream_in_constant_memory(remote, tmp_path):
    src = tmp_path / "big.bin"
    with open(src, "wb") as f:
        for _ in range(48):
            f.write(os.urandom(MiB))
    tracemalloc.start()
    try:
        url = remote.hatrac.put("/hatrac/Image/big.bin", src)
        remote.hatrac.download(url, tmp_path / "back.bin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12 * MiB, f"peak traced memory {peak / MiB:.1f} MiB for a 48 MiB round trip"
    assert (tmp_path / "back.bin").stat().st_size == 48 * MiB

"""Fault injection through the proxy: idempotent calls succeed after retries or say why; none hangs."""

from __future__ import annotations

import os
import time
import uuid

import httpx
import pytest

from satchel import errors
from satchel.remote import urls

S, T = "test-schema", "Image"


def rows(n, start=0):
    return [{"URL": f"/hatrac/Image/{i:032x}", "Length": i, "MD5": f"{i:032x}"} for i in range(start, start + n)]


class Clock:
    def __enter__(self):
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.monotonic() - self.start


def test_refused_connections(proxied, fault_proxy):
    fault_proxy.refuse()
    with Clock() as c, pytest.raises(errors.TransportError, match="connection refused") as info:
        proxied.catalog.info()
    # nothing listens: one quick retry (a restarting server), then say so, not the whole backoff
    assert "gave up after 2 attempts" in str(info.value) and "satchel remote show" in str(info.value)
    assert c.elapsed < 1
    fault_proxy.refuse(False)
    assert proxied.catalog.info()["id"] == "1"


def test_5xx_bursts_are_retried(proxied, fault_proxy):
    fault_proxy.fail(503, times=3)
    assert proxied.catalog.get(S, T) == []
    fault_proxy.fail(500, times=1)
    fault_proxy.fail(502, times=1)
    fault_proxy.fail(504, times=1)
    assert proxied.catalog.info()["id"] == "1"
    fault_proxy.fail(503, times=50)
    with pytest.raises(errors.RemoteStatusError, match="Transaction aborted") as info:
        proxied.catalog.get(S, T)
    assert info.value.status == 503 and "gave up" in str(info.value)
    fault_proxy.clear()


def test_429_honours_retry_after(proxied, fault_proxy):
    fault_proxy.fail(429, retry_after=0.15)
    with Clock() as c:
        assert proxied.catalog.get(S, T) == []
    assert c.elapsed >= 0.15


def test_non_idempotent_calls_are_not_repeated(proxied, fault_proxy, deriva_server):
    fault_proxy.fail(503, method="POST")
    with pytest.raises(errors.RemoteStatusError):
        proxied.catalog.insert(S, T, rows(1))
    assert fault_proxy.faults_applied == 1 and deriva_server.stats.requests("POST", "ermrest.entity") == 0


def test_delay_past_the_read_timeout_is_retried(deriva_server, fault_proxy, remote_factory):
    with remote_factory(fault_proxy.url, deriva_server.token,
                        timeout=httpx.Timeout(connect=1, read=0.3, write=1, pool=1)) as r:
        fault_proxy.delay(1.0)
        with Clock() as c:
            assert r.catalog.info()["id"] == "1"
        assert 0.3 <= c.elapsed < 3
        fault_proxy.delay(1.0, times=10)
        with Clock() as c, pytest.raises(errors.TransportError, match="ReadTimeout"):
            r.catalog.info()
        assert c.elapsed < 5
        fault_proxy.clear()


def test_reset_mid_response_resumes_download(proxied, fault_proxy, deriva_server, tmp_path):
    src = tmp_path / "obj.bin"
    src.write_bytes(os.urandom(2_000_000))
    url = proxied.hatrac.put("/hatrac/Image/obj.bin", src)
    out = tmp_path / "out.bin"
    fault_proxy.reset_after(500_000, method="GET")  # RST: bytes in flight may be lost
    proxied.hatrac.download("/hatrac/Image/obj.bin", out)
    assert out.read_bytes() == src.read_bytes()
    fault_proxy.reset_after(500_000, method="GET", graceful=True)  # truncated body
    deriva_server.stats.reset()
    proxied.hatrac.download("/hatrac/Image/obj.bin", out)
    assert out.read_bytes() == src.read_bytes()
    assert deriva_server.log[-1][2] == 206  # resumed with Range from the same version
    assert deriva_server.log[-1][1] == url
    fault_proxy.reset_after(100, method="GET")
    assert len(proxied.catalog.get(S, T)) == 0
    assert url


def test_reset_mid_upload_is_retried(proxied, fault_proxy, tmp_path):
    src = tmp_path / "up.bin"
    src.write_bytes(os.urandom(300_000))
    fault_proxy.reset_after(100_000, direction="request", method="PUT")
    url = proxied.hatrac.upload("/hatrac/Image/up.bin", src)
    assert proxied.hatrac.head("/hatrac/Image/up.bin").url == url


def test_lost_responses_of_idempotent_writes(proxied, fault_proxy, deriva_server, tmp_path):
    # onconflict=skip insert: the retry finds the rows already there
    fault_proxy.lose_response(method="POST")
    proxied.catalog.insert(S, T, rows(3), on_conflict_skip=True)
    assert len(proxied.catalog.get(S, T)) == 3
    # leases: recovered by reading them back
    ids = [str(uuid.uuid4()) for _ in range(4)]
    fault_proxy.lose_response(method="POST", path_contains="ERMrest_RID_Lease")
    leased = proxied.catalog.lease_rids(ids)
    assert set(leased) == set(ids) and len(set(leased.values())) == 4
    # attributegroup update
    rid = proxied.catalog.get(S, T)[0]["RID"]
    fault_proxy.lose_response(method="PUT")
    assert proxied.catalog.update(S, T, [{"RID": rid, "Description": "x"}])[0]["Description"] == "x"
    # Hatrac PUT with If-None-Match: the retry's 412 is resolved by HEAD
    src = tmp_path / "lost.bin"
    src.write_bytes(os.urandom(10_000))
    fault_proxy.lose_response(method="PUT", path_contains="/hatrac/")
    url = proxied.hatrac.upload("/hatrac/Image/lost.bin", src)
    assert proxied.hatrac.head("/hatrac/Image/lost.bin").url == url
    # delete: the retry's 404 means done
    fault_proxy.lose_response(method="DELETE")
    proxied.catalog.delete(S, T, urls.eq("RID", rid))
    assert proxied.catalog.entity_rid(rid)["deleted_at"]


def test_lost_response_of_a_plain_insert_is_reported_not_repeated(proxied, fault_proxy, deriva_server):
    fault_proxy.lose_response(method="POST")
    with pytest.raises(errors.TransportError):
        proxied.catalog.insert(S, T, rows(1))
    assert deriva_server.stats.requests("POST", "ermrest.entity") == 1
    assert len(proxied.catalog.lookup(S, T, "URL", [rows(1)[0]["URL"]])) == 1  # applied: ask, don't resend


def test_lost_chunk_and_finalize_responses(proxied, fault_proxy, tmp_path):
    src = tmp_path / "chunks.bin"
    src.write_bytes(os.urandom(250_000))
    fault_proxy.lose_response(method="PUT", path_contains=";upload/")
    fault_proxy.lose_response(method="POST", path_contains=";upload/")
    url = proxied.hatrac.upload("/hatrac/Image/chunks.bin", src, chunked_threshold=1, chunk_size=100_000)
    info = proxied.hatrac.head("/hatrac/Image/chunks.bin")
    assert info.url == url and info.size == 250_000
    assert fault_proxy.pending() == 0

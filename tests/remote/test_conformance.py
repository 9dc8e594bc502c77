"""The remote clients against the emulator over loopback: the conformance suite."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from satchel import errors
from satchel.remote import urls
from satchel.remote.hatrac import UploadJob, file_md5

S, T = "test-schema", "Image"


def rows(n, start=0, **extra):
    return [{"URL": f"/hatrac/Image/{i:032x}.f", "Filename": "f", "Length": i, "MD5": f"{i:032x}", **extra}
            for i in range(start, start + n)]


def test_discovery_model_and_identity(remote):
    assert remote.catalog.discover()["features"]["rid_lease"]
    info = remote.catalog.info()
    assert info["id"] == "1" and info["snaptime"] == remote.catalog.snaptime()
    model = remote.catalog.model()
    assert {str(t) for t in model.asset_tables()} >= {"test-schema:Image", "test-schema:Model"}
    assert remote.whoami()["client"]["id"] == "writer"


def test_insert_batches_by_rows_and_bytes(remote, deriva_server):
    before = deriva_server.stats.requests("POST", "ermrest.entity")
    stored = remote.catalog.insert(S, T, rows(25), max_rows=10)
    assert len(stored) == 25 and deriva_server.stats.requests("POST", "ermrest.entity") - before == 3
    big = rows(6, start=100, Description="x" * 1000)
    before = deriva_server.stats.requests("POST", "ermrest.entity")
    remote.catalog.insert(S, T, big, max_bytes=2500)
    assert deriva_server.stats.requests("POST", "ermrest.entity") - before == 3


def test_insert_skip_is_idempotent_and_plain_insert_conflicts(remote):
    first = remote.catalog.insert(S, T, rows(3), on_conflict_skip=True)
    again = remote.catalog.insert(S, T, rows(4), on_conflict_skip=True)
    assert len(first) == 3 and [r["Length"] for r in again] == [3]
    with pytest.raises(errors.Conflict, match="duplicate key"):
        remote.catalog.insert(S, T, rows(1))


def test_paging_and_incremental_reads(remote):
    stored = remote.catalog.insert(S, T, rows(23))
    got = list(remote.catalog.iter_rows(S, T, page_size=5))
    assert [r["RID"] for r in got] == sorted(r["RID"] for r in stored)
    assert len(list(remote.catalog.iter_rows(S, T, urls.geq("Length", 20), page_size=2))) == 3
    rmt = stored[0]["RMT"]
    remote.catalog.update(S, T, [{"RID": stored[5]["RID"], "Description": "changed"}])
    changed = list(remote.catalog.changed_since(S, T, rmt, page_size=4))
    assert len(changed) == 23 and changed[-1]["RID"] == stored[5]["RID"]
    newest = changed[-1]["RMT"]
    assert [r["RID"] for r in remote.catalog.changed_since(S, T, newest)] == [stored[5]["RID"]]
    with pytest.raises(ValueError):
        list(remote.catalog.iter_rows(S, T, sort=("RMT",)))


def test_every_read_sends_a_limit(remote, deriva_server):
    remote.catalog.insert(S, T, rows(3))
    list(remote.catalog.iter_rows(S, T, page_size=2))
    remote.catalog.lookup(S, T, "Length", [0, 1])
    reads = [t for m, t, _ in deriva_server.log if m == "GET" and ("/entity/" in t or "/attribute/" in t)]
    assert reads and all("limit=" in t for t in reads)


def test_lookup_splits_long_any_lists(remote, deriva_server):
    stored = remote.catalog.insert(S, T, rows(400))
    before = deriva_server.stats.requests("GET", "ermrest.attribute")
    urls_ = [r["URL"] for r in stored]
    found = remote.catalog.lookup(S, T, "URL", urls_, columns=("RID", "URL", "MD5"))
    assert len(found) == 400 and set(found[0]) == {"RID", "URL", "MD5"}
    assert deriva_server.stats.requests("GET", "ermrest.attribute") - before >= 2
    assert all(len(t.partition("?")[0]) <= urls.MAX_PATH for _, t, _ in deriva_server.log)


def test_count_and_key_projection(remote, deriva_server):
    """What a pull's deletion sweep reads: one cnt(*), then keys only, paged on RID."""
    stored = remote.catalog.insert(S, T, rows(25))
    assert remote.catalog.count(S, T) == 25
    assert remote.catalog.count(S, T, urls.eq("Length", 3)) == 1
    before = deriva_server.stats.requests("GET", "ermrest.attribute")
    keys = list(remote.catalog.project(S, T, ("MD5", "Length"), page_size=10))
    assert deriva_server.stats.requests("GET", "ermrest.attribute") - before == 3
    assert [k["RID"] for k in keys] == sorted(r["RID"] for r in stored)
    assert set(keys[0]) == {"RID", "MD5", "Length"}
    remote.catalog.delete(S, T, urls.eq("RID", stored[0]["RID"]))
    assert remote.catalog.count(S, T) == 24 and stored[0]["RID"] not in remote.catalog.rids(S, T)


def test_update_by_rid_and_optimistic_lock(remote):
    (row,) = remote.catalog.insert(S, T, rows(1))
    assert remote.catalog.update(S, T, [{"RID": row["RID"], "Description": "a"}]) == \
        [{"RID": row["RID"], "Description": "a"}]
    stale = remote.catalog.update(S, T, [{"RID": row["RID"], "RMT": row["RMT"], "Description": "b"}],
                                  key=("RID", "RMT"))
    assert stale == []
    assert remote.catalog.update(S, T, [{"RID": "1-ZZZZ", "Description": "c"}]) == []


def test_delete_is_idempotent(remote):
    stored = remote.catalog.insert(S, T, rows(3))
    assert remote.catalog.delete(S, T, urls.eq("RID", stored[0]["RID"])) is True
    assert remote.catalog.delete(S, T, urls.eq("RID", stored[0]["RID"])) is False
    remote.catalog.delete_rids(S, T, [r["RID"] for r in stored])
    assert remote.catalog.get(S, T) == []
    assert remote.catalog.entity_rid(stored[0]["RID"])["deleted_at"]
    assert remote.catalog.entity_rid("1-ZZZZ") is None


def test_leases_are_recoverable_and_used_once(remote):
    ids = [str(uuid.uuid4()) for _ in range(5)]
    leased = remote.catalog.lease_rids(ids)
    assert remote.catalog.lease_rids(ids) == leased  # re-run: same RIDs
    assert remote.catalog.leases(ids[:2]) == {i: leased[i] for i in ids[:2]}
    batch = [dict(r, RID=leased[i]) for r, i in zip(rows(5), ids)]
    stored = remote.catalog.insert(S, T, batch, nondefaults=["RID"], on_conflict_skip=True)
    assert [r["RID"] for r in stored] == [leased[i] for i in ids]
    assert remote.catalog.leases(ids) == {}
    with pytest.raises(errors.PermissionDenied, match="non-leased"):
        remote.catalog.insert(S, T, batch[:1], nondefaults=["RID"], on_conflict_skip=True)


def test_hatrac_upload_is_idempotent(remote, deriva_server, tmp_path):
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(50_000))
    url = remote.hatrac.upload("/hatrac/Image/a.bin", src, filename="a b.bin")
    sent = deriva_server.stats.bytes_received("PUT")
    assert remote.hatrac.upload("/hatrac/Image/a.bin", src) == url
    assert deriva_server.stats.bytes_received("PUT") == sent  # no bytes sent again
    info = remote.hatrac.head("/hatrac/Image/a.bin")
    assert info.url == url and info.md5 == file_md5(src) and info.size == 50_000
    assert remote.hatrac.head("/hatrac/Image/none") is None


def test_put_if_none_match_recognises_our_own_content(remote, tmp_path):
    src = tmp_path / "b.bin"
    src.write_bytes(b"same bytes")
    url = remote.hatrac.put("/hatrac/Image/b.bin", src)
    assert remote.hatrac.put("/hatrac/Image/b.bin", src) == url  # 412 resolved by HEAD
    other = tmp_path / "c.bin"
    other.write_bytes(b"other bytes")
    with pytest.raises(errors.PreconditionFailed):
        remote.hatrac.put("/hatrac/Image/b.bin", other)


def test_download_verifies_before_exposing(remote, tmp_path):
    src = tmp_path / "d.bin"
    src.write_bytes(os.urandom(3_000_000))
    url = remote.hatrac.put("/hatrac/Image/d.bin", src)
    out = tmp_path / "out" / "d.bin"
    out.parent.mkdir()
    info = remote.hatrac.download(url, out)
    assert out.read_bytes() == src.read_bytes() and info.size == 3_000_000
    wrong = tmp_path / "out" / "wrong.bin"
    with pytest.raises(errors.ProtocolError, match="MD5"):
        remote.hatrac.download(url, wrong, md5="0" * 32)
    assert not wrong.exists() and sorted(p.name for p in out.parent.iterdir()) == ["d.bin"]
    assert remote.hatrac.get_range(url, 10, 19) == src.read_bytes()[10:20]


def test_chunked_upload_resumes_from_saved_state(remote, deriva_server, tmp_path):
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(1_000_003))
    job = remote.hatrac.create_job("/hatrac/Image/big.bin", src, chunk_size=100_000)
    remote.hatrac.put_chunk(job, src, 0)
    remote.hatrac.put_chunk(job, src, 10)  # the short final chunk
    saved = json.dumps(job.to_dict())
    # another process picks it up
    resumed = UploadJob.from_dict(json.loads(saved))
    assert resumed.missing() == list(range(1, 10))
    before = deriva_server.stats.bytes_received("PUT", "hatrac.chunk")
    progress = []
    url = remote.hatrac.upload("/hatrac/Image/big.bin", src, job=resumed, chunk_size=100_000,
                               on_progress=lambda j: progress.append(len(j.acknowledged)))
    assert deriva_server.stats.bytes_received("PUT", "hatrac.chunk") - before == 900_000
    assert url.endswith(":" + job.job_id) and progress[-1] == 11
    out = tmp_path / "back.bin"
    remote.hatrac.download("/hatrac/Image/big.bin", out)
    assert out.read_bytes() == src.read_bytes()
    assert remote.hatrac.job_status(resumed) is None
    assert remote.hatrac.finalize(resumed) == url  # finalize again: recognised, not an error


def test_chunked_upload_cancels_when_content_appears(remote, tmp_path):
    src = tmp_path / "e.bin"
    src.write_bytes(os.urandom(30_000))
    job = remote.hatrac.create_job("/hatrac/Image/e.bin", src, chunk_size=10_000)
    url = remote.hatrac.put("/hatrac/Image/e.bin", src)
    assert remote.hatrac.upload("/hatrac/Image/e.bin", src, job=job) == url
    assert remote.hatrac.job_status(job) is None


def test_two_uploads_of_the_same_bytes_finalized_at_once_leave_one_version(remote, deriva_server, tmp_path):
    """Finalize cannot be conditional: each upload keeps the oldest version of its bytes, and drops its own."""
    src = tmp_path / "twice.bin"
    src.write_bytes(os.urandom(30_000))
    path = "/hatrac/Image/twice.bin"
    jobs = [remote.hatrac.create_job(path, src, chunk_size=10_000) for _ in range(3)]
    for job in jobs:  # each looked (HEAD: nothing yet), sent its chunks, and finalizes
        remote.hatrac.upload_chunks(job, src)
    finalized = [remote.hatrac.finalize(job) for job in jobs]
    assert len(remote.hatrac.versions(path)) == 3
    kept = {remote.hatrac.keep_first(url, file_md5(src)) for url in reversed(finalized)}
    assert kept == {finalized[0]} and remote.hatrac.versions(path) == [finalized[0]]
    other = tmp_path / "other.bin"
    other.write_bytes(b"different bytes")
    newer = remote.hatrac.put(path, other, if_none_match=False)
    assert remote.hatrac.keep_first(newer, file_md5(other)) == newer, "other bytes: kept"


def test_text_objects_are_verified_despite_compression(remote, deriva_server, tmp_path):
    src = tmp_path / "notes.txt"
    src.write_text("hello " * 50)
    url = remote.hatrac.upload("/hatrac/Image/notes.txt", src, content_type="text/plain")
    assert remote.hatrac.upload("/hatrac/Image/notes.txt", src, content_type="text/plain") == url
    out = tmp_path / "back.txt"
    assert remote.hatrac.download(url, out).md5 == file_md5(src) and out.read_bytes() == src.read_bytes()


def test_snapshots_reveal_deletions(remote):
    stored = remote.catalog.insert(S, T, rows(5))
    snap = remote.catalog.snaptime()
    remote.catalog.delete_rids(S, T, [stored[1]["RID"], stored[3]["RID"]])
    remote.catalog.insert(S, T, rows(1, start=50))
    assert remote.catalog.deleted_since(S, T, snap) == {stored[1]["RID"], stored[3]["RID"]}
    old = remote.catalog.at(snap)
    assert len(old.get(S, T)) == 5 and "at=" in repr(old)
    assert len(remote.catalog.rids(S, T, page_size=2)) == 4
    with pytest.raises(errors.PermissionDenied):
        old.insert(S, T, rows(1, start=60))


def test_jobs_never_exceed_ten_thousand_chunks(remote, tmp_path):
    src = tmp_path / "sparse.bin"
    with open(src, "wb") as f:
        f.truncate(10_001 * 65_536)  # sparse: no real bytes on disk
    job = remote.hatrac.create_job("/hatrac/Image/sparse.bin", src, md5="0" * 32, chunk_size=65_536)
    assert job.chunk_count <= 10_000 and job.chunk_size % 65_536 == 0
    remote.hatrac.cancel(job)

"""The content-addressed cache: one-pass hashing, atomic writes, stat cache, link modes, verify."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import blake3
import pytest

from satchel.cache import Digest, ObjectCache, digest_bytes
from satchel.cache import objects as objects_mod
from satchel.errors import FileChangedError, IntegrityError, MissingSourceError, ObjectMissingError


@pytest.fixture
def cache(tmp_path: Path) -> ObjectCache:
    c = ObjectCache(tmp_path / "cache")
    yield c
    c.close()


@pytest.mark.parametrize("size", [0, 1, 4096, objects_mod.SMALL + 1, 3 * objects_mod.CHUNK + 17])
def test_ingest_records_blake3_md5_and_size_of_the_bytes(cache: ObjectCache, tmp_path: Path, size: int):
    data = os.urandom(size)
    src = tmp_path / "f.bin"
    src.write_bytes(data)
    got = cache.ingest(src)
    assert got.digest == Digest(blake3.blake3(data).hexdigest(), hashlib.md5(data).hexdigest(), size)
    obj = cache.path_of(got.digest)
    assert obj.read_bytes() == data
    assert stat.S_IMODE(obj.stat().st_mode) == 0o444, "cached objects are read-only"
    assert cache.index.lookup(os.stat(obj)) == got.digest, "the object's own stat entry: never hashed again"
    assert list(cache.tmp_dir.iterdir()) == []


def test_identical_bytes_are_stored_once(cache: ObjectCache, tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"same bytes")
    b.write_bytes(b"same bytes")
    first, second = cache.ingest_many([a, b])
    assert first.digest == second.digest
    assert first.copied and not second.copied
    assert cache.disk_usage() == (1, len(b"same bytes"))


def test_unchanged_file_is_never_hashed_twice(cache: ObjectCache, tmp_path: Path, count_byte_reads):
    src = tmp_path / "old.bin"
    src.write_bytes(os.urandom(10_000))
    past = src.stat().st_mtime_ns - 10_000_000_000
    os.utime(src, ns=(past, past))  # clearly older than the record: not racy
    cache.ingest(src)
    calls = count_byte_reads()
    again = cache.ingest(src)
    assert calls == [] and not again.copied
    assert cache.hash_file(src) == again.digest
    assert calls == []


def test_a_changed_file_is_hashed_again(cache: ObjectCache, tmp_path: Path):
    src = tmp_path / "f.bin"
    src.write_bytes(b"one")
    past = src.stat().st_mtime_ns - 10_000_000_000
    os.utime(src, ns=(past, past))
    d1 = cache.ingest(src).digest
    src.write_bytes(b"two")
    d2 = cache.ingest(src).digest
    assert d1 != d2 and d2 == digest_bytes(b"two")


def test_racy_stat_entries_are_not_trusted(cache: ObjectCache, tmp_path: Path, count_byte_reads):
    """A file modified within timestamp granularity after hashing could keep its mtime: re-hash it."""
    src = tmp_path / "f.bin"
    src.write_bytes(b"fresh")
    # a modification time not clearly older than the record: racy however long the ingest takes
    # (mtime == now was not enough on a loaded machine, where the ingest's fsync can take 20 ms)
    soon = src.stat().st_mtime_ns + 5_000_000_000
    os.utime(src, ns=(soon, soon))
    cache.ingest(src)
    calls = count_byte_reads()
    cache.hash_file(src)
    assert calls, "a racy entry must be re-hashed"


def test_missing_source_is_a_clear_error(cache: ObjectCache, tmp_path: Path):
    with pytest.raises(MissingSourceError, match="does not exist"):
        cache.ingest(tmp_path / "nope")


def test_file_changing_during_capture_is_an_error(cache: ObjectCache, tmp_path: Path, monkeypatch):
    src = tmp_path / "growing.bin"
    src.write_bytes(os.urandom(objects_mod.SMALL + 10))
    real = objects_mod._hash_fd

    def append_while_reading(fd, size_hint, out):
        digest = real(fd, size_hint, out)
        with open(src, "ab") as f:  # another writer appends during the capture
            f.write(b"more")
        return digest

    monkeypatch.setattr(objects_mod, "_hash_fd", append_while_reading)
    with pytest.raises(FileChangedError, match="changed while"):
        cache.ingest(src)
    assert cache.disk_usage() == (0, 0)
    assert list(cache.tmp_dir.iterdir()) == []


@pytest.mark.parametrize("mode", ["hardlink", "copy"])
def test_export_puts_verified_bytes_atomically(cache: ObjectCache, tmp_path: Path, mode: str):
    src = tmp_path / "f.bin"
    src.write_bytes(b"payload" * 1000)
    d = cache.ingest(src).digest
    dest = tmp_path / "out" / "f.bin"
    dest.parent.mkdir()
    used = cache.export(d, dest, link_modes=(mode,))
    assert used == mode
    assert dest.read_bytes() == b"payload" * 1000
    assert [p.name for p in dest.parent.iterdir()] == ["f.bin"], "no temp file left behind"
    assert (dest.stat().st_ino == cache.path_of(d).stat().st_ino) == (mode == "hardlink")


def test_default_modes_fall_back_when_reflink_is_unsupported(cache: ObjectCache, tmp_path: Path):
    src = tmp_path / "f.bin"
    src.write_bytes(b"x" * 100)
    d = cache.ingest(src).digest
    used = cache.export(d, tmp_path / "g.bin")
    assert used in ("reflink", "hardlink", "copy")
    assert (tmp_path / "g.bin").read_bytes() == b"x" * 100


def test_export_replaces_a_symlink_without_writing_through_it(cache: ObjectCache, tmp_path: Path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    dest = tmp_path / "dest.txt"
    dest.symlink_to(victim)
    src = tmp_path / "f.bin"
    src.write_bytes(b"new bytes")
    d = cache.ingest(src).digest
    cache.export(d, dest, link_modes=("copy",))
    assert victim.read_bytes() == b"precious"
    assert not dest.is_symlink() and dest.read_bytes() == b"new bytes"


def corrupt(path: Path, data: bytes) -> None:
    os.chmod(path, 0o644)
    path.write_bytes(data)
    past = path.stat().st_mtime_ns + 5_000_000_000
    os.utime(path, ns=(past, past))


@pytest.mark.parametrize("mode", ["hardlink", "copy"])
def test_corrupt_object_is_caught_on_export_and_quarantined(cache: ObjectCache, tmp_path: Path, mode: str):
    src = tmp_path / "f.bin"
    src.write_bytes(b"good bytes")
    d = cache.ingest(src).digest
    corrupt(cache.path_of(d), b"evil bytes")
    dest = tmp_path / "dest.bin"
    with pytest.raises(IntegrityError, match="corrupt"):
        cache.export(d, dest, link_modes=(mode,))
    assert not dest.exists()
    assert not cache.has(d)
    assert len(list(cache.quarantine_dir.iterdir())) == 1


def test_verify_rehashes_and_quarantines(cache: ObjectCache, tmp_path: Path):
    digests = []
    for i in range(5):
        p = tmp_path / f"f{i}"
        p.write_bytes(os.urandom(100 + i))
        digests.append(cache.ingest(p).digest)
    corrupt(cache.path_of(digests[2]), b"rot")
    report = cache.verify()
    assert report.checked == 5
    assert report.quarantined == [digests[2].blake3]
    assert not report.ok
    assert cache.verify().ok


def test_missing_object_is_a_clear_error(cache: ObjectCache, tmp_path: Path):
    d = digest_bytes(b"never stored")
    with pytest.raises(ObjectMissingError, match="not in the cache"):
        cache.export(d, tmp_path / "x")


def test_read_bytes_verifies(cache: ObjectCache, tmp_path: Path):
    src = tmp_path / "f"
    src.write_bytes(b"abc")
    d = cache.ingest(src).digest
    assert cache.read_bytes(d) == b"abc"
    corrupt(cache.path_of(d), b"abd")
    with pytest.raises(IntegrityError):
        cache.read_bytes(d)


def test_ingest_stream_checks_md5(cache: ObjectCache):
    d = cache.ingest_stream([b"ab", b"c"], expected_md5=hashlib.md5(b"abc").hexdigest())
    assert d == digest_bytes(b"abc")
    with pytest.raises(IntegrityError, match="MD5"):
        cache.ingest_stream([b"abc"], expected_md5="0" * 32)
    assert list(cache.tmp_dir.iterdir()) == []


def test_temp_debris_is_removed(cache: ObjectCache):
    debris = cache.tmp_dir / ".x.satchel-tmp-abc"
    debris.write_bytes(b"half")
    old = debris.stat().st_mtime - 7200
    os.utime(debris, (old, old))
    assert cache.remove_temp_debris() == 1
    assert not debris.exists()


def test_unknown_link_mode_is_rejected(tmp_path: Path):
    with pytest.raises(ValueError, match="link mode"):
        ObjectCache(tmp_path / "c", link_modes=("teleport",))


@pytest.mark.parametrize("size", [100, objects_mod.SMALL + 1])
def test_an_object_of_the_wrong_size_is_replaced_by_the_next_capture(cache: ObjectCache, tmp_path: Path, size: int):
    """A power cut before the sync a capture relied on can leave an object's name with part of its bytes."""
    data = os.urandom(size)
    digest = digest_bytes(data)
    torn = cache.path_of(digest)
    torn.write_bytes(data[: size // 2])
    src = tmp_path / "f.bin"
    src.write_bytes(data)
    got = cache.ingest(src)
    assert got.digest == digest and got.copied
    assert torn.read_bytes() == data


def test_a_disposable_file_becomes_the_object_and_any_other_is_copied(cache: ObjectCache, tmp_path: Path):
    staged, kept = tmp_path / "staged.bin", tmp_path / "kept.bin"
    staged.write_bytes(b"staged bytes")
    kept.write_bytes(b"kept bytes")
    ino = staged.stat().st_ino
    taken, copied = cache.ingest_many([staged, kept], disposable=[True, False])
    assert cache.path_of(taken.digest).stat().st_ino == ino
    assert stat.S_IMODE(staged.stat().st_mode) == 0o444
    assert cache.path_of(copied.digest).stat().st_ino != kept.stat().st_ino
    assert stat.S_IMODE(kept.stat().st_mode) != 0o444


@pytest.mark.parametrize("tail", [0, 123])
def test_a_large_copy_with_direct_io_holds_the_same_bytes(cache: ObjectCache, tmp_path: Path, monkeypatch, tail: int):
    """Copies of at least DIRECT_MIN bytes bypass the page cache; an unaligned tail is written as usual."""
    monkeypatch.setattr(objects_mod, "DIRECT_MIN", objects_mod.SMALL + 1)
    data = os.urandom(2 * objects_mod.STREAM_BLOCK + 3 * 4096 + tail)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    got = cache.ingest(src)
    assert got.digest == Digest(blake3.blake3(data).hexdigest(), hashlib.md5(data).hexdigest(), len(data))
    assert cache.path_of(got.digest).read_bytes() == data
    staged = tmp_path / "staged.bin"
    assert cache.stage_copy(src, str(staged)) == got.digest
    assert staged.read_bytes() == data

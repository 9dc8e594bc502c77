"""Digests: the identity of bytes in satchel.

A :class:`Digest` carries blake3 (the cache key), MD5 (what the catalog and
Hatrac speak) and the size. All three are computed together, in one pass over
the bytes, by :class:`Hasher`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import blake3 as _blake3

#: read size for streaming hashes and copies
CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Digest:
    """What satchel knows about a run of bytes: blake3 and MD5 (hex) and size."""

    blake3: str
    md5: str
    size: int

    def __post_init__(self) -> None:
        if len(self.blake3) != 64 or len(self.md5) != 32 or self.size < 0:
            raise ValueError(f"malformed digest {self!r}")

    @property
    def short(self) -> str:
        return self.blake3[:12]


class Hasher:
    """Feeds blake3 and MD5 together; ``update`` once per chunk read."""

    __slots__ = ("_b3", "_md5", "size")

    def __init__(self) -> None:
        self._b3 = _blake3.blake3()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        self._b3.update(data)
        self._md5.update(data)
        self.size += len(data)

    def digest(self) -> Digest:
        return Digest(self._b3.hexdigest(), self._md5.hexdigest(), self.size)


class PipelinedHasher:
    """Hasher for large inputs: MD5 runs on a second thread while the caller does blake3 and I/O.

    MD5 is the slow hash (about 0.7 GB/s) and blake3 the fast one; both release
    the GIL on large buffers, so overlapping them brings a one-pass capture close
    to the MD5 floor. ``update`` takes ownership of ``data`` until the next call.
    """

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._b3 = _blake3.blake3()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="satchel-md5")
        self._pending = None
        self.size = 0

    def update(self, data: bytes) -> None:
        if self._pending is not None:
            self._pending.result()
        self._pending = self._pool.submit(self._md5.update, data)
        self._b3.update(data)
        self.size += len(data)

    def digest(self) -> Digest:
        if self._pending is not None:
            self._pending.result()
        self._pool.shutdown(wait=True)
        return Digest(self._b3.hexdigest(), self._md5.hexdigest(), self.size)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def digest_bytes(data: bytes) -> Digest:
    h = Hasher()
    h.update(data)
    return h.digest()

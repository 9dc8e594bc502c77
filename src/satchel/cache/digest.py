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


def digest_bytes(data: bytes) -> Digest:
    h = Hasher()
    h.update(data)
    return h.digest()

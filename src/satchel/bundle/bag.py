"""BagIt bags (RFC 8493) in one zip or tar file, written and read as streams.

A bundle is a bag whose single top-level folder holds ``bagit.txt``,
``bag-info.txt``, ``manifest-sha256.txt`` and ``manifest-md5.txt`` (every
payload file), ``tagmanifest-sha256.txt`` (the tag files) and ``data/``: what
``bdbag --validate full`` and the ``bagit`` package check. Writing never holds
more than one read buffer of a payload file in memory; reading stages every
payload file into a directory while hashing it, so that nothing is trusted
before every digest has been compared (:func:`read_bag`).
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import blake3

from satchel.cache.digest import CHUNK
from satchel.cache.durable import fsync_dir, remove_quietly, temp_name
from satchel.errors import BundleError

BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
#: chunks at least this long are hashed on two cores: the slowest hash on a helper thread
PARALLEL = 256 << 10
#: the largest tag file we read into memory (a manifest of a million files is about 100 MB)
MAX_TAG_FILE = 512 << 20

Progress = Callable[[int], None]


_helper: ThreadPoolExecutor | None = None


class Hashes:
    """SHA-256 (the bag's manifest), blake3 (our objects' names) and, if asked, MD5, in one pass.

    Large chunks are hashed on two cores: the slowest hash (MD5 when asked,
    else SHA-256) on a helper thread while this one does the rest; hashlib and
    blake3 release the GIL for buffers this size.
    """

    def __init__(self, *, md5: bool):
        self.sha = hashlib.sha256()
        self.b3 = blake3.blake3()
        self.md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self.size = 0

    def update(self, data: bytes) -> None:
        global _helper
        self.size += len(data)
        slow, fast = (self.md5, (self.sha, self.b3)) if self.md5 is not None else (self.sha, (self.b3,))
        if len(data) < PARALLEL:
            slow.update(data)
            for h in fast:
                h.update(data)
            return
        if _helper is None:
            _helper = ThreadPoolExecutor(1, thread_name_prefix="satchel-hash")
        done = _helper.submit(slow.update, data)
        for h in fast:
            h.update(data)
        done.result()


@dataclass
class PayloadFile:
    """A payload file as read: where it was staged, and its digests."""

    path: Path
    size: int
    sha256: str
    md5: str
    blake3: str


def archive_format(path: Path) -> str:
    """``zip`` or ``tar`` from the name the user gave (``.zip``, ``.tar``; anything else is zip)."""
    name = path.name.lower()
    return "tar" if name.endswith(".tar") else "zip"


class BagWriter:
    """Writes one bag into ``path`` (zip or tar), atomically: a temp file renamed at :meth:`close`."""

    def __init__(self, path: Path, top: str):
        self.path = path
        self.top = top
        self.format = archive_format(path)
        self.tmp = temp_name(path.parent, path.name)
        self._file: IO[bytes] = open(self.tmp, "xb")
        self._zip: zipfile.ZipFile | None = None
        self._tar: tarfile.TarFile | None = None
        if self.format == "zip":
            self._zip = zipfile.ZipFile(self._file, "w", allowZip64=True)
        else:
            self._tar = tarfile.open(fileobj=self._file, mode="w", format=tarfile.GNU_FORMAT)
        self.manifest: list[tuple[str, str, str]] = []  # (relpath, sha256, md5)
        self.payload_bytes = 0

    def add_payload(self, relpath: str, source: IO[bytes], size: int, *, md5: str | None = None,
                    compress: bool = False, on_bytes: Progress | None = None) -> str:
        """Copy ``size`` bytes of ``source`` to ``data/<relpath>``; returns the blake3 of what went in.

        ``md5``: the bytes' MD5 when the caller knows it (an object whose blake3 it then checks), else computed.
        """
        hashes = Hashes(md5=md5 is None)
        name = f"{self.top}/data/{relpath}"
        reader = _HashingReader(source, size, hashes, on_bytes)
        self._add(name, reader, size, compress)
        if reader.seen != size:
            raise BundleError(f"{relpath}: expected {size} bytes, read {reader.seen}; the source changed while exporting")
        self.manifest.append((f"data/{relpath}", hashes.sha.hexdigest(),
                              md5 if hashes.md5 is None else hashes.md5.hexdigest()))
        self.payload_bytes += size
        return hashes.b3.hexdigest()

    def _add(self, name: str, reader: Any, size: int, compress: bool) -> None:
        if self._zip is not None:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            info.file_size = size
            with self._zip.open(info, "w", force_zip64=size > (1 << 31)) as out:
                while chunk := reader.read(CHUNK):
                    out.write(chunk)
        else:
            assert self._tar is not None
            info = tarfile.TarInfo(name)
            info.size = size
            info.mode = 0o644
            self._tar.addfile(info, reader)

    def _add_tag(self, relpath: str, data: bytes) -> str:
        self._add(f"{self.top}/{relpath}", io.BytesIO(data), len(data), True)
        return hashlib.sha256(data).hexdigest()

    def close(self, bag_info: dict[str, str]) -> None:
        """Write the tag files, then make the archive durable and give it its name."""
        tags: list[tuple[str, str]] = [("bagit.txt", self._add_tag("bagit.txt", BAGIT_TXT))]
        info = {**bag_info, "Payload-Oxum": f"{self.payload_bytes}.{len(self.manifest)}"}
        text = "".join(f"{k}: {_one_line(v)}\n" for k, v in info.items())
        tags.append(("bag-info.txt", self._add_tag("bag-info.txt", text.encode())))
        for algo, column in (("sha256", 1), ("md5", 2)):
            body = "".join(f"{entry[column]}  {_escape(entry[0])}\n" for entry in self.manifest)
            tags.append((f"manifest-{algo}.txt", self._add_tag(f"manifest-{algo}.txt", body.encode())))
        body = "".join(f"{digest}  {name}\n" for name, digest in tags)
        self._add_tag("tagmanifest-sha256.txt", body.encode())
        if self._zip is not None:
            self._zip.close()
        if self._tar is not None:
            self._tar.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.tmp, self.path)
        fsync_dir(self.path.parent)

    def abort(self) -> None:
        """Drop the unfinished archive: nothing is left under any name."""
        try:
            if self._zip is not None:
                self._zip.fp = None  # nothing more goes into the file, not even a central directory
            if self._tar is not None:
                self._tar.closed = True
            self._file.close()
        finally:
            remove_quietly(self.tmp)


class _HashingReader:
    """A file-like view of at most ``size`` bytes of ``source`` that feeds its hashes."""

    def __init__(self, source: IO[bytes], size: int, hashes: Hashes, on_bytes: Progress | None):
        self.source, self.left, self.hashes, self.on_bytes = source, size, hashes, on_bytes
        self.seen = 0

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        want = self.left if n is None or n < 0 else min(n, self.left)
        data = self.source.read(want)
        self.left -= len(data)
        self.seen += len(data)
        self.hashes.update(data)
        if self.on_bytes is not None and data:
            self.on_bytes(len(data))
        return data


def _one_line(value: str) -> str:
    return " ".join(str(value).split())


def _escape(path: str) -> str:
    """RFC 8493 §2.1.3: CR, LF and % in manifest paths are percent-encoded."""
    return path.replace("%", "%25").replace("\n", "%0A").replace("\r", "%0D")


def _unescape(path: str) -> str:
    return path.replace("%0A", "\n").replace("%0a", "\n").replace("%0D", "\r").replace("%0d", "\r").replace("%25", "%")


# --- reading ------------------------------------------------------------------------------------------------


@dataclass
class ReadBag:
    """A bag read and checked: its tag files, and its payload files staged under ``staging``."""

    top: str
    bag_info: dict[str, str]
    payload: dict[str, PayloadFile] = field(default_factory=dict)  # "data/..." -> staged file


def members(path: Path) -> Iterator[tuple[str, int, Callable[[], IO[bytes]]]]:
    """(name, size, opener) of each regular file in the archive, in archive order; other kinds refused."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    if info.is_dir():
                        continue
                    yield info.filename, info.file_size, lambda info=info: zf.open(info)
        except zipfile.BadZipFile as exc:
            raise BundleError(f"{path} is not a readable zip file ({exc}); it may be truncated: copy it again") from exc
        return
    try:
        with tarfile.open(path, mode="r:*") as tf:
            for member in tf:
                if member.isdir():
                    continue
                if not member.isfile():
                    raise BundleError(f"{path}: {member.name!r} is a link or device, not a file; a bundle holds files only")
                yield member.name, member.size, lambda member=member: tf.extractfile(member)  # type: ignore[return-value]
    except (tarfile.TarError, EOFError) as exc:
        raise BundleError(f"{path} is not a readable zip or tar file ({exc}); it may be truncated: copy it again") from exc


def read_bag(path: Path, staging: Path, *, on_first: Callable[[str, bytes], None] | None = None,
             on_bytes: Progress | None = None) -> ReadBag:
    """Read the bag at ``path``: stage each payload file in ``staging`` while hashing it, then check the
    manifests, the tag manifest and the Payload-Oxum. Raises :class:`BundleError` on any mismatch.

    ``on_first(relpath, data)`` sees the small payload files under ``data/satchel/`` as they arrive, so a
    caller can refuse a bundle (another catalog, a newer format) before reading its objects.
    """
    top: str | None = None
    tag_files: dict[str, bytes] = {}
    payload: dict[str, PayloadFile] = {}
    for name, size, opener in members(path):
        parts = PurePosixPath(name).parts
        if not parts or name.startswith("/") or ".." in parts or "\\" in name:
            raise BundleError(f"{path}: unsafe member name {name!r}; this is not a satchel bundle")
        if top is None:
            top = parts[0]
        if parts[0] != top or len(parts) < 2:
            raise BundleError(f"{path}: {name!r} is outside the bag's folder {top!r}; a bag has one top folder")
        rel = "/".join(parts[1:])
        if parts[1] != "data":
            if size > MAX_TAG_FILE:
                raise BundleError(f"{path}: tag file {rel} is {size} bytes; this is not a satchel bundle")
            with opener() as src:
                tag_files[rel] = src.read()
            continue
        if rel in payload:
            raise BundleError(f"{path}: {rel} appears twice")
        payload[rel] = _stage(opener, size, staging, rel, on_first, on_bytes)
    if top is None:
        raise BundleError(f"{path} is empty; copy the bundle again")
    bag_info = _check_tags(path, tag_files, payload)
    return ReadBag(top, bag_info, payload)


def _stage(opener: Callable[[], IO[bytes]], size: int, staging: Path, rel: str,
           on_first: Callable[[str, bytes], None] | None, on_bytes: Progress | None) -> PayloadFile:
    hashes = Hashes(md5=True)
    dest = staging / hashlib.sha256(rel.encode()).hexdigest()[:32]
    small = rel.startswith("data/satchel/") and size <= MAX_TAG_FILE
    head = bytearray()
    # read-only from the start: an object is taken into the cache as it is (docs/internals.md)
    with opener() as src, os.fdopen(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444),
                                    "wb") as out:
        while chunk := src.read(CHUNK):
            hashes.update(chunk)
            out.write(chunk)
            if small and len(head) < (1 << 20):
                head += chunk[: (1 << 20) - len(head)]
            if on_bytes is not None:
                on_bytes(len(chunk))
    if hashes.size != size:
        raise BundleError(f"{rel}: {hashes.size} bytes read where the archive says {size}; the bundle is truncated")
    if small and on_first is not None and rel.endswith(".json"):
        on_first(rel, bytes(head))
    assert hashes.md5 is not None
    return PayloadFile(dest, size, hashes.sha.hexdigest(), hashes.md5.hexdigest(), hashes.b3.hexdigest())


def _manifest(path: Path, name: str, data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleError(f"{path}: {name} is not UTF-8") from exc
    for line in text.splitlines():
        if not line.strip():
            continue
        digest, sep, rel = line.partition(" ")
        if not sep:
            raise BundleError(f"{path}: malformed line in {name}: {line[:80]!r}")
        out[_unescape(rel.lstrip(" *"))] = digest.lower()
    return out


def _check_tags(path: Path, tags: dict[str, bytes], payload: dict[str, PayloadFile]) -> dict[str, str]:
    if tags.get("bagit.txt", b"").replace(b"\r\n", b"\n") != BAGIT_TXT:
        raise BundleError(f"{path}: bagit.txt is missing or not BagIt 1.0; this is not a satchel bundle")
    for required in ("bag-info.txt", "manifest-sha256.txt", "tagmanifest-sha256.txt"):
        if required not in tags:
            raise BundleError(f"{path}: {required} is missing; the bundle is incomplete: copy it again")
    tagman = _manifest(path, "tagmanifest-sha256.txt", tags["tagmanifest-sha256.txt"])
    for rel, digest in tagman.items():
        if rel not in tags or hashlib.sha256(tags[rel]).hexdigest() != digest:
            raise BundleError(f"{path}: tag file {rel} does not match the tag manifest; the bundle was altered")
    for rel in ("bagit.txt", "bag-info.txt", "manifest-sha256.txt"):
        if rel not in tagman:
            raise BundleError(f"{path}: the tag manifest does not cover {rel}; the bundle was altered")
    for algo, attr in (("sha256", "sha256"), ("md5", "md5")):
        name = f"manifest-{algo}.txt"
        if name not in tags:
            continue
        manifest = _manifest(path, name, tags[name])
        if set(manifest) != set(payload):
            extra = sorted(set(payload) - set(manifest))[:3]
            missing = sorted(set(manifest) - set(payload))[:3]
            raise BundleError(f"{path}: payload and {name} disagree (not listed: {extra}, missing: {missing}); "
                              "the bundle is incomplete or altered: copy it again")
        for rel, digest in manifest.items():
            if getattr(payload[rel], attr) != digest:
                raise BundleError(f"{path}: {rel} does not match its {algo.upper()} in {name}; the bundle was "
                                  "altered or damaged in transit: copy it again")
    info: dict[str, str] = {}
    for line in tags["bag-info.txt"].decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition(":")
        if sep and not line[:1].isspace():
            info[key.strip()] = value.strip()
    oxum = info.get("Payload-Oxum")
    if oxum is not None and oxum != f"{sum(p.size for p in payload.values())}.{len(payload)}":
        raise BundleError(f"{path}: Payload-Oxum {oxum} does not match the payload; the bundle is incomplete")
    return info

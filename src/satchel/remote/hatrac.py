"""Hatrac object store client: HEAD, verified streaming GET, PUT, chunked upload jobs.

Downloads stream to a temp file beside the destination, are checked against
the expected MD5 (or the server's ``Content-MD5``) and only then renamed into
place; an interrupted download resumes with ``Range`` from the same version.
Uploads send a base64 ``Content-MD5``; chunked uploads keep their progress in
an :class:`UploadJob` the caller can persist, so another process can resume.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import quote

import httpx

from satchel import errors
from satchel.remote.boundary import safe_url
from satchel.remote.session import RemoteSession

MiB = 1024 * 1024
DEFAULT_CHUNK_SIZE = 25 * MiB
CHUNKED_THRESHOLD = 25 * MiB
BLOCK = MiB
MAX_CHUNKS = 10_000
IDENTITY = {"Accept-Encoding": "identity"}


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def md5_base64(value: str) -> str:
    """A hex or base64 MD5 as base64 (Hatrac's form); ValueError when neither."""
    value = value.strip()
    try:
        raw = bytes.fromhex(value) if len(value) == 32 else base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != 16:
        raise ValueError(f"not an MD5 digest: {value!r}")
    return base64.b64encode(raw).decode()


def file_md5(path: str | Path) -> str:
    """The base64 MD5 of a file, read in blocks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            h.update(block)
    return base64.b64encode(h.digest()).decode()


def disposition(filename: str) -> str:
    """A ``Content-Disposition`` value Hatrac accepts for ``filename``."""
    return "filename*=UTF-8''" + quote(filename, safe="-_.~")


def unversioned(path: str) -> str:
    """``/hatrac/ns/obj:version`` without ``:version``."""
    head, _, leaf = path.rpartition("/")
    return f"{head}/{leaf.split(':', 1)[0]}"


def _version_of(url: str) -> str | None:
    leaf = url.rsplit("/", 1)[-1]
    return leaf.split(":", 1)[1] if ":" in leaf else None


@dataclass(frozen=True)
class ObjectInfo:
    """What HEAD/GET said about an object version."""

    path: str  # unversioned
    url: str  # versioned (Content-Location)
    size: int | None
    md5: str | None  # base64, only if supplied at upload
    sha256: str | None
    content_type: str | None

    @property
    def version(self) -> str | None:
        return _version_of(self.url)

    @property
    def md5_hex(self) -> str | None:
        return base64.b64decode(self.md5).hex() if self.md5 else None

    @classmethod
    def from_response(cls, path: str, response: httpx.Response) -> "ObjectInfo":
        h = response.headers
        length = h.get("Content-Length")
        return cls(unversioned(path), h.get("Content-Location") or path, int(length) if length is not None else None,
                   h.get("Content-MD5"), h.get("Content-SHA256"), h.get("Content-Type"))


@dataclass
class UploadJob:
    """A chunked upload in progress; serialisable with :meth:`to_dict` so it can resume elsewhere.

    Hatrac keeps no record of received chunks: ``acknowledged`` is the only
    memory of which chunks the server answered 204 for.
    """

    path: str
    job_url: str
    size: int
    chunk_size: int
    md5: str  # base64
    acknowledged: set[int] = field(default_factory=set)

    @property
    def job_id(self) -> str:
        return self.job_url.rsplit("/", 1)[-1]

    @property
    def chunk_count(self) -> int:
        return -(-self.size // self.chunk_size)

    def span(self, index: int) -> tuple[int, int]:
        """(offset, length) of chunk ``index``; the last chunk is never longer than the rest of the file."""
        offset = index * self.chunk_size
        return offset, min(self.chunk_size, self.size - offset)

    def missing(self) -> list[int]:
        return [i for i in range(self.chunk_count) if i not in self.acknowledged]

    @property
    def complete(self) -> bool:
        return not self.missing()

    def to_dict(self) -> dict:
        return {"path": self.path, "job_url": self.job_url, "size": self.size, "chunk_size": self.chunk_size,
                "md5": self.md5, "acknowledged": sorted(self.acknowledged)}

    @classmethod
    def from_dict(cls, doc: dict) -> "UploadJob":
        return cls(doc["path"], doc["job_url"], int(doc["size"]), int(doc["chunk_size"]), doc["md5"],
                   set(doc.get("acknowledged") or ()))


def chunk_md5(job: UploadJob, source: str | Path, index: int) -> str:
    """The base64 MD5 of chunk ``index`` of ``source``, for its ``Content-MD5``."""
    offset, length = job.span(index)
    h = hashlib.md5()
    for block in _file_blocks(Path(source), offset, length):
        h.update(block)
    return base64.b64encode(h.digest()).decode()


def _file_blocks(path: Path, offset: int, length: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        f.seek(offset)
        remaining = length
        while remaining > 0:
            block = f.read(min(BLOCK, remaining))
            if not block:
                raise errors.ProtocolError(f"{path} shrank while being uploaded")
            remaining -= len(block)
            yield block


class HatracClient:
    """Hatrac on the server of ``session``; paths start with ``/hatrac/``."""

    def __init__(self, session: RemoteSession):
        self.session = session

    def __repr__(self) -> str:
        return f"HatracClient({self.session.url!r})"

    @staticmethod
    def _check(path: str) -> str:
        if not path.startswith("/hatrac/"):
            raise ValueError(f"Hatrac paths start with /hatrac/: {path!r}")
        return path

    # --- reading ----------------------------------------------------------------------

    def head(self, path: str) -> ObjectInfo | None:
        """The current version's metadata; None when the name is unknown or has no content."""
        self._check(path)
        try:
            response = self.session.call("HEAD", path, idempotent=True, headers=IDENTITY)
        except (errors.NotFound, errors.Conflict):
            return None
        return ObjectInfo.from_response(path, response)

    def get_range(self, path: str, start: int, end: int) -> bytes:
        """Bytes ``start..end`` (inclusive) of the object."""
        self._check(path)
        response = self.session.call("GET", path, idempotent=True, expect=(206, 200),
                                     headers={**IDENTITY, "Range": f"bytes={start}-{end}"})
        return response.content if response.status_code == 206 else response.content[start:end + 1]

    def download(self, path: str, dest: str | Path, *, md5: str | None = None,
                 on_bytes: Callable[[int], None] | None = None) -> ObjectInfo:
        """Stream ``path`` to ``dest``; the file appears only once its MD5 is verified.

        ``md5`` (hex or base64) is what the bytes must hash to; without it the
        server's ``Content-MD5`` is used, and an object with neither is not
        verified. An interrupted transfer resumes from the same version with
        ``Range``. Raises :class:`~satchel.errors.ProtocolError` on a mismatch. ``on_bytes(n)`` is told of
        each block written (a restarted transfer counts its bytes again: a progress figure, not a total).
        """
        self._check(path)
        dest = Path(dest)
        want = md5_base64(md5) if md5 else None
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        tmp = Path(tmp_name)
        state = {"url": path, "written": 0, "hash": hashlib.md5(), "info": None}
        try:
            with os.fdopen(fd, "wb") as out:

                def headers():
                    h = dict(IDENTITY)
                    if state["written"]:
                        h["Range"] = f"bytes={state['written']}-"
                    return h

                def consume(response: httpx.Response) -> None:
                    if response.status_code == 200:
                        out.seek(0)
                        out.truncate()
                        state["written"] = 0
                        state["hash"] = hashlib.md5()
                        state["info"] = ObjectInfo.from_response(path, response)
                        state["url"] = state["info"].url
                    else:
                        expected = f"bytes {state['written']}-"
                        if not response.headers.get("Content-Range", "").startswith(expected):
                            raise errors.ProtocolError(
                                f"GET {safe_url(response.url)} resumed at the wrong offset "
                                f"({response.headers.get('Content-Range')!r}, wanted {expected}...)",
                                method="GET", url=safe_url(response.url))
                    for block in response.iter_bytes():  # as received: a cut loses nothing
                        out.write(block)
                        state["hash"].update(block)
                        state["written"] += len(block)
                        if on_bytes is not None:
                            on_bytes(len(block))

                self.session.call("GET", lambda: state["url"], idempotent=True, expect=(200, 206),
                                  headers=headers, consume=consume)
                out.flush()
                os.fsync(out.fileno())
            info: ObjectInfo = state["info"]
            got = base64.b64encode(state["hash"].digest()).decode()
            expected = want or info.md5
            where = safe_url(self.session.url + path)
            if info.size is not None and state["written"] != info.size:
                raise errors.ProtocolError(f"GET {where} delivered {state['written']} bytes, "
                                           f"announced {info.size}", method="GET", url=where)
            if expected is not None and got != expected:
                raise errors.ProtocolError(
                    f"GET {where}: downloaded bytes have MD5 {got}, expected {expected}; "
                    "the file was not kept", method="GET", url=where)
            os.replace(tmp, dest)
            tmp = None
            return ObjectInfo(info.path, info.url, state["written"], expected, info.sha256, info.content_type)
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)

    # --- single PUT -----------------------------------------------------------------------

    def put(self, path: str, source: str | Path, *, md5: str | None = None, content_type: str | None = None,
            filename: str | None = None, parents: bool = True, if_none_match: bool = True) -> str:
        """Upload a file in one request; returns the versioned URL.

        With ``if_none_match`` (the default) the PUT only creates content on a
        name that has none; a 412 is resolved by HEAD: if the current version has
        our MD5 (e.g. our own earlier attempt whose answer was lost), its URL is
        returned, otherwise :class:`~satchel.errors.PreconditionFailed` is raised.
        """
        return self.create(path, source, md5=md5, content_type=content_type, filename=filename, parents=parents,
                           if_none_match=if_none_match)[0]

    def create(self, path: str, source: str | Path, *, md5: str | None = None, content_type: str | None = None,
               filename: str | None = None, parents: bool = True, if_none_match: bool = True) -> tuple[str, bool]:
        """:meth:`put`, telling also whether a version was made (False: our bytes were already there)."""
        self._check(path)
        source = Path(source)
        size = source.stat().st_size
        b64 = md5_base64(md5) if md5 else file_md5(source)
        headers = {"Content-MD5": b64, "Content-Length": str(size),
                   "Content-Type": content_type or "application/octet-stream"}
        if filename:
            headers["Content-Disposition"] = disposition(filename)
        if if_none_match:
            headers["If-None-Match"] = "*"
        target = path + ("?parents=true" if parents else "")
        try:
            response = self.session.call("PUT", target, idempotent=True, expect=(201,), headers=headers,
                                         content=lambda: _file_blocks(source, 0, size))
        except errors.PreconditionFailed:
            info = self.head(path)
            if info is not None and info.md5 == b64:
                return info.url, False
            raise
        return response.headers.get("Location") or response.text.strip(), True

    # --- chunked upload jobs -----------------------------------------------------------------

    def create_job(self, path: str, source: str | Path, *, md5: str | None = None,
                   chunk_size: int = DEFAULT_CHUNK_SIZE, content_type: str | None = None,
                   filename: str | None = None, parents: bool = True) -> UploadJob:
        """Open an upload job for ``source`` (always with ``content-md5``, never with conditions)."""
        self._check(path)
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        size = Path(source).stat().st_size
        if _ceil_div(size, chunk_size) > MAX_CHUNKS:  # S3-backed servers allow at most 10,000 parts
            chunk_size = _ceil_div(_ceil_div(size, MAX_CHUNKS), 64 * 1024) * 64 * 1024  # 64 KiB aligned
        b64 = md5_base64(md5) if md5 else file_md5(source)
        doc = {"chunk-length": chunk_size, "content-length": size, "content-md5": b64,
               "content-type": content_type or "application/octet-stream"}
        if filename:
            doc["content-disposition"] = disposition(filename)
        response = self.session.call("POST", f"{path};upload" + ("?parents=true" if parents else ""),
                                     idempotent=False, expect=(201,), json=doc)
        job_url = (response.headers.get("Location") or response.text.strip()).strip()
        if self.session.url and job_url.startswith(self.session.url):
            job_url = job_url[len(self.session.url):]
        return UploadJob(path, job_url, size, chunk_size, b64)

    def open_jobs(self, path: str, *, md5: str, size: int) -> list[UploadJob]:
        """Our open upload jobs for ``path`` with these bytes (``GET obj;upload``, owner only).

        Hatrac jobs never expire: one whose creation answer was lost, or whose
        creator died before recording it, is found here and used rather than left
        behind. Its acknowledged chunks are unknown, so every chunk goes again.
        """
        self._check(path)
        b64 = md5_base64(md5)
        try:
            urls = self.session.json("GET", f"{path};upload", idempotent=True)
        except (errors.NotFound, errors.PermissionDenied, errors.Conflict):
            return []
        found = []
        for url in urls if isinstance(urls, list) else []:
            if self.session.url and url.startswith(self.session.url):
                url = url[len(self.session.url):]
            status = self.job_status(UploadJob(path, url, size, 1, b64))
            if status is None or int(status.get("content-length", -1)) != size:
                continue
            their_md5 = status.get("content-md5")
            if their_md5 and md5_base64(their_md5) == b64:
                found.append(UploadJob(path, url, size, int(status["chunk-length"]), b64))
        return found

    def job_status(self, job: UploadJob) -> dict | None:
        """The server's view of the job, or None when it is gone (finalized or cancelled)."""
        try:
            return self.session.json("GET", job.job_url, idempotent=True)
        except errors.NotFound:
            return None

    def put_chunk(self, job: UploadJob, source: str | Path, index: int, *, md5: str | None = None) -> None:
        """Send chunk ``index`` (retried; re-sending the same bytes is harmless) and record the ack.

        ``md5`` is the chunk's base64 MD5 when the caller already has it
        (:func:`chunk_md5`, computed for the next chunk while this one is sent);
        the server checks it against the bytes it receives."""
        source = Path(source)
        if source.stat().st_size != job.size:
            raise errors.ProtocolError(f"{source} is {source.stat().st_size} bytes, the upload job expects "
                                       f"{job.size}; start a new job")
        offset, length = job.span(index)
        headers = {"Content-Length": str(length), "Content-Type": "application/octet-stream",
                   "Content-MD5": md5 or chunk_md5(job, source, index)}
        self.session.call("PUT", f"{job.job_url}/{index}", idempotent=True, expect=(204, 200, 201),
                          headers=headers, content=lambda: _file_blocks(source, offset, length))
        job.acknowledged.add(index)

    def upload_chunks(self, job: UploadJob, source: str | Path,
                      on_progress: Callable[[UploadJob], None] | None = None) -> UploadJob:
        """Send every chunk not yet acknowledged; ``on_progress`` sees the job after each ack."""
        for index in job.missing():
            self.put_chunk(job, source, index)
            if on_progress is not None:
                on_progress(job)
        return job

    def finalize(self, job: UploadJob) -> str:
        """Finish the job; returns the versioned URL (its version id is the job id).

        Finalize is not repeated blindly: after a lost answer (or a 404 for a job
        already finalized) the target is HEADed and our version recognised.
        """
        if not job.complete:
            raise ValueError(f"chunks {job.missing()[:5]} of the upload to {job.path} are not acknowledged")
        try:
            response = self.session.call("POST", job.job_url, idempotent=False, expect=(201,))
        except (errors.TransportError, errors.NotFound):
            info = self.head(job.path)
            if info is not None and (info.version == job.job_id or info.md5 == job.md5):
                return info.url
            raise
        return response.headers.get("Location") or response.text.strip()

    def versions(self, path: str) -> list[str]:
        """``GET obj;versions``: the versioned URLs of the object, newest first."""
        self._check(path)
        return list(self.session.json("GET", f"{path};versions", idempotent=True,
                                      headers={**IDENTITY, "Accept": "application/json"}))

    def keep_first(self, version_url: str, md5: str) -> str:
        """After finalizing ``version_url``: the oldest version with the same bytes, ours dropped if it is not.

        Finalize cannot be made conditional (``If-None-Match`` on it always gets 412), so two uploads
        of the same bytes that each looked before finalizing may both finalize. Each then keeps the
        oldest version holding those bytes and deletes its own if it is a later one: the object ends
        with one version of them, whatever the order.
        """
        path = unversioned(version_url)
        try:
            listed = self.versions(path)
        except errors.RemoteStatusError:
            return version_url  # no listing here: ours stands
        if version_url not in listed:
            return version_url
        b64 = md5_base64(md5)
        for older in reversed(listed[listed.index(version_url) + 1:]):  # oldest first
            info = self.head(older)
            if info is not None and info.md5 == b64:
                try:
                    self.session.call("DELETE", version_url, idempotent=True, expect=(204, 200))
                except errors.NotFound:
                    pass
                return info.url
        return version_url

    def cancel(self, job: UploadJob) -> None:
        """Abandon the job; a job already gone is fine."""
        try:
            self.session.call("DELETE", job.job_url, idempotent=True, expect=(204, 200))
        except errors.NotFound:
            pass

    # --- the idempotent upload ---------------------------------------------------------------

    def upload(self, path: str, source: str | Path, *, md5: str | None = None,
               content_type: str | None = None, filename: str | None = None,
               chunked_threshold: int = CHUNKED_THRESHOLD, chunk_size: int = DEFAULT_CHUNK_SIZE,
               job: UploadJob | None = None, on_progress: Callable[[UploadJob], None] | None = None) -> str:
        """Make ``path`` hold ``source``'s bytes, sending no bytes when it already does.

        1. HEAD: a current version with our MD5 is reused.
        2. Up to ``chunked_threshold`` bytes: one PUT with ``If-None-Match: *``.
        3. Larger: a chunked job (``job`` resumes one from a saved :class:`UploadJob`;
           ``on_progress`` receives the job to persist after creation and each chunk),
           a last HEAD before finalizing, then finalize.
        """
        self._check(path)
        source = Path(source)
        b64 = md5_base64(md5) if md5 else file_md5(source)
        current = self.head(path)
        if current is not None and current.md5 == b64:
            if job is not None:
                self.cancel(job)
            return current.url
        size = source.stat().st_size
        if size <= chunked_threshold and job is None:
            return self.put(path, source, md5=b64, content_type=content_type, filename=filename)
        if job is not None and (job.path != path or job.md5 != b64 or job.size != size
                                or self.job_status(job) is None):
            job = None  # a stale or finished job: start over
        if job is None:
            job = self.create_job(path, source, md5=b64, chunk_size=chunk_size, content_type=content_type,
                                  filename=filename)
            if on_progress is not None:
                on_progress(job)
        self.upload_chunks(job, source, on_progress)
        current = self.head(path)
        if current is not None and current.md5 == b64:
            self.cancel(job)
            return current.url
        return self.keep_first(self.finalize(job), b64)

"""Sending bytes: every asset's object reaches Hatrac, verified, before any row names it.

Per object: check the cached bytes against their digest. HEAD the MD5-keyed
name and send nothing when the current version already has our MD5; else a PUT
with ``If-None-Match: *`` (a 412: the name has content, and a HEAD tells whether
it is ours). A new object up to ``HEADLESS_PUT`` (64 KiB) skips the HEAD: the
pusher asks the catalog first, in a few requests for the whole push, whether
any row already names its URL (``ObjectToSend.may_exist``), and only those are
HEADed. Larger objects get that PUT, or, above the threshold, a chunked job whose URL and
acknowledged chunks are written to the journal after every chunk, so a killed
sync resumes where it stopped, in any process. The versioned URL Hatrac returns is recorded last: that record is
what allows the asset row to be inserted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from satchel import errors
from satchel._crashpoints import crash_point
from satchel.cache import Digest, ObjectCache
from satchel.journal import read_transaction, write_transaction
from satchel.journal.models import UploadJobRow
from satchel.remote.hatrac import HatracClient, UploadJob, chunk_md5, md5_base64
from satchel.store import now


#: confirmed objects recorded per journal transaction
RECORD_BATCH = 200
#: new objects up to this size (no catalog row names them) are PUT without a HEAD first; the rest are
#: HEADed and sent only when absent
HEADLESS_PUT = 64 * 1024


@dataclass(frozen=True)
class ObjectToSend:
    asset_id: int
    rid: str
    url: str  # unversioned /hatrac/... path
    filename: str
    digest: Digest
    may_exist: bool = True  # False: no catalog row names this URL, so a small object skips the HEAD


@dataclass(frozen=True)
class Sent:
    item: ObjectToSend
    object_url: str | None
    bytes_sent: int
    reused: bool
    error: str | None = None


class _Stopped(Exception):
    """A chunked upload stopped between chunks because the push was asked to stop."""


class ObjectSender:
    def __init__(
        self,
        engine,
        cache: ObjectCache,
        hatrac: HatracClient,
        *,
        chunked_threshold: int,
        chunk_size: int,
        transfers: int,
        on_bytes: Callable[[int], None] | None = None,
        stop: threading.Event | None = None,
    ):
        self.engine = engine
        self.cache = cache
        self.hatrac = hatrac
        self.chunked_threshold = chunked_threshold
        self.chunk_size = chunk_size
        self.transfers = max(1, transfers)
        self.on_bytes = on_bytes
        #: set when the user asks the push to stop: no new object or chunk is started once it is
        self.stop = stop or threading.Event()
        self._lock = threading.Lock()

    def send_all(self, items: list[ObjectToSend], on_done: Callable[[Sent], None]) -> None:
        """Send every object, ``transfers`` at a time; ``on_done`` runs in this thread for each.

        Confirmed objects are recorded from this thread in batches (one
        transaction per ``RECORD_BATCH``), not one fsynced transaction per object
        in each upload thread. An object confirmed but not yet recorded when a
        crash comes is found by the next push's HEAD: no bytes go twice.
        """
        if not items:
            return
        confirmed: list[Sent] = []
        with ThreadPoolExecutor(max_workers=self.transfers, thread_name_prefix="satchel-upload") as pool:
            futures = [pool.submit(self._send_one, item) for item in items]
            try:
                for fut in as_completed(futures):
                    sent = fut.result()
                    if sent.object_url is not None:
                        confirmed.append(sent)
                        if len(confirmed) >= RECORD_BATCH:
                            self._record(confirmed)
                            confirmed = []
                    on_done(sent)
            finally:
                self._record(confirmed)

    def _send_one(self, item: ObjectToSend) -> Sent:
        if self.stop.is_set():
            return Sent(item, None, 0, False, None)  # not started: left for the next push
        try:
            path = self.cache.verify_object(item.digest)
        except errors.CacheError as exc:
            return Sent(item, None, 0, False, f"the cached bytes cannot be sent: {exc}")
        try:
            b64 = md5_base64(item.digest.md5)
            headless = item.digest.size <= HEADLESS_PUT and not item.may_exist
            current = None if headless else self.hatrac.head(item.url)
            if current is not None and current.md5 == b64:
                url, sent, reused = current.url, 0, True
                self._count(item.digest.size)  # nothing to send: its share of the bar is done
            elif item.digest.size > self.chunked_threshold:
                url, sent = self._chunked(item, path, b64)
                reused = False
            else:
                # If-None-Match turns a PUT onto bytes already there (a new small object that another push
                # sent but recorded no row for) into a 412, resolved by HEAD: never a second version
                url, created = self.hatrac.create(item.url, path, md5=b64, filename=item.filename)
                sent, reused = item.digest.size, not created
                self._count(sent)
        except errors.AuthenticationError:
            raise
        except errors.RemoteStatusError as exc:
            if exc.status is not None and 400 <= exc.status < 500:
                return Sent(item, None, 0, False, str(exc))
            return Sent(item, None, 0, False, None)  # transient: left for the next sync
        except (errors.RemoteError, _Stopped):
            return Sent(item, None, 0, False, None)
        crash_point("objects.after_upload")
        return Sent(item, url, sent, reused)

    def _chunked(self, item: ObjectToSend, path: Path, b64: str) -> tuple[str, int]:
        job = self._load_job(item.url)
        if job is not None and (job.md5 != b64 or job.size != item.digest.size or self.hatrac.job_status(job) is None):
            job = None
        if job is None:  # a job of ours the journal never heard of (created, then the answer or we were lost)
            job = next(iter(self.hatrac.open_jobs(item.url, md5=b64, size=item.digest.size)), None)
        sent = 0
        for last_try in (False, True):
            if job is None:
                job = self.hatrac.create_job(item.url, path, md5=b64, chunk_size=self.chunk_size,
                                             filename=item.filename)
                crash_point("objects.after_job_created")
            self._save_job(item.url, job)
            try:
                sent += self._send_chunks(item, job, path)
                break
            except errors.NotFound:
                # the job is gone: a push of the same bytes elsewhere (same login, so it could take it over)
                # finished or cancelled it. Done if the object is there; else once more with a job of our own
                current = self.hatrac.head(item.url)
                if current is not None and current.md5 == b64:
                    return current.url, sent
                if last_try:
                    raise
                job = None
        current = self.hatrac.head(item.url)
        if current is not None and current.md5 == b64:  # someone else finished the same bytes meanwhile
            self.hatrac.cancel(job)
            return current.url, sent
        # another push may have finalized the same bytes since that HEAD: one version is kept
        return self.hatrac.keep_first(self.hatrac.finalize(job), b64), sent

    def _send_chunks(self, item: ObjectToSend, job: UploadJob, path: Path) -> int:
        """The chunks the job lacks, each recorded once acknowledged; the bytes sent."""
        sent = 0
        missing = job.missing()
        self._count(job.size - sum(job.span(i)[1] for i in missing))  # a resumed job: its acknowledged chunks
        # the next chunk's MD5 is computed while this one is sent (hashlib releases the GIL);
        # it reads the file a second time, from the page cache, rather than holding chunks in memory
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="satchel-chunk-md5") as hasher:
            upcoming = hasher.submit(chunk_md5, job, path, missing[0]) if missing else None
            for n, index in enumerate(missing):
                if self.stop.is_set():  # between chunks: every acknowledged one is recorded, the job resumes
                    raise _Stopped
                md5 = upcoming.result()
                if n + 1 < len(missing):
                    upcoming = hasher.submit(chunk_md5, job, path, missing[n + 1])
                self.hatrac.put_chunk(job, path, index, md5=md5)
                length = job.span(index)[1]
                sent += length
                self._count(length)
                self._save_job(item.url, job)
                crash_point("objects.after_chunk")
        return sent

    def _count(self, n: int) -> None:
        if self.on_bytes is not None:
            with self._lock:
                self.on_bytes(n)

    def _load_job(self, url: str) -> UploadJob | None:
        with read_transaction(self.engine) as conn:
            doc = conn.execute(select(UploadJobRow.job).where(UploadJobRow.url == url)).scalar()
        return UploadJob.from_dict(doc) if doc else None

    def _save_job(self, url: str, job: UploadJob) -> None:
        stmt = sqlite_insert(UploadJobRow.__table__).values(url=url, job=job.to_dict(), updated_at=now())
        with write_transaction(self.engine) as conn:
            conn.execute(stmt.on_conflict_do_update(index_elements=["url"], set_={"job": stmt.excluded.job,
                                                                                  "updated_at": stmt.excluded.updated_at}))

    def _record(self, confirmed: list[Sent]) -> None:
        """The confirmed versioned URLs: from now on the asset rows may be inserted."""
        if not confirmed:
            return
        with write_transaction(self.engine) as conn:
            raw = conn.connection.driver_connection
            raw.executemany("UPDATE assets SET object_url = ? WHERE id = ?",
                            [(s.object_url, s.item.asset_id) for s in confirmed])
            chunked = [s.item.url for s in confirmed if s.item.digest.size > self.chunked_threshold]
            if chunked:
                conn.execute(delete(UploadJobRow).where(UploadJobRow.url.in_(chunked)))

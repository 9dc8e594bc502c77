"""The content-addressed object cache.

Layout under the cache root (see docs/internals.md)::

    objects/ab/cdef...   one read-only file per blake3 digest (hex, 2-char fan-out)
    tmp/                 temp files while ingesting; leftovers are crash debris
    quarantine/          objects that failed verification, kept for inspection
    index.db             the stat cache (device, inode, size, mtime, ctime -> digests); rebuildable

Bytes enter by :meth:`ObjectCache.ingest` (hash and copy in one pass, temp,
fsync, rename) and leave by :meth:`ObjectCache.export` (verified first).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gc
import hashlib
import logging
import mmap
import os
import shutil
import signal
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blake3 import blake3 as _blake3

from satchel._crashpoints import crash_point
from satchel.cache.digest import CHUNK, Digest, Hasher
from satchel.cache.durable import fsync_dir, is_temp_name, remove_quietly, sync_filesystem, temp_name
from satchel.cache.linking import DEFAULT_LINK_MODES, check_modes, try_hardlink, try_reflink
from satchel.cache.statcache import CacheIndex
from satchel.cache.uselock import UseLock
from satchel.errors import CacheError, FileChangedError, IntegrityError, MissingSourceError, ObjectMissingError

log = logging.getLogger("satchel.cache")

#: files up to this size are read in one call
SMALL = 4 * CHUNK
#: files at least this large are captured in parallel
PARALLEL_MIN = 4 * CHUNK
#: block of the large-file lanes (see _stream)
STREAM_BLOCK = 4 * CHUNK
#: copies at least this large bypass the page cache (O_DIRECT), in multiples of this alignment
DIRECT_MIN = 64 * CHUNK
_DIRECT_ALIGN = 4096
# Linux only; elsewhere copies use the page cache and staged files are always copied
_O_DIRECT = getattr(os, "O_DIRECT", 0)
_F_SETLEASE = getattr(fcntl, "F_SETLEASE", None)
_F_SETSIG = getattr(fcntl, "F_SETSIG", 10)

Progress = Callable[[int, int], None]

_OPEN = os.O_RDONLY | os.O_CLOEXEC
_OPEN_NOFOLLOW = _OPEN | os.O_NOFOLLOW
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
#: link errors that mean "not here": another filesystem, no /proc, links refused or unsupported
_LINK_REFUSED = {errno.EXDEV, errno.EPERM, errno.EACCES, errno.ENOENT, errno.EMLINK, errno.EOPNOTSUPP, errno.ENOSYS}


def pause_gc() -> bool:
    """Turn the cyclic garbage collector off for a batch; True if the caller must turn it back on.

    A batch of thousands of files allocates a few objects per file, none of them
    in cycles. That is enough to set off full collections, which walk every
    object of the process (SQLAlchemy's alone are hundreds of thousands): about a
    tenth of a 10,000-file commit. Reference counting still frees everything.
    """
    if not gc.isenabled():
        return False
    gc.disable()
    return True


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """:func:`pause_gc` for the ``with`` block: the collector runs again after it, as it did before."""
    paused = pause_gc()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _no_writers(fd: int) -> bool:
    """Is the file open at ``fd`` (read-only) free of writers, in every process? A read lease says so.

    The kernel grants a read lease only while no one has the file open for
    writing or mapped shared-writable. It is released at once. Were a writer to
    open the file in between, the kernel would signal the lease holder: SIGURG,
    ignored by default, instead of SIGIO, whose default would end the process.
    Filesystems without leases answer no, and the file is copied.
    """
    if _F_SETLEASE is None:
        return False
    try:
        fcntl.fcntl(fd, _F_SETSIG, signal.SIGURG)
        fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_RDLCK)
    except OSError:
        return False
    fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_UNLCK)
    return True


@dataclass(frozen=True, slots=True)
class Captured:
    """One file taken into the cache: its digest, and whether bytes were copied."""

    source: Path | str
    digest: Digest
    copied: bool


@dataclass
class VerifyReport:
    checked: int = 0
    bytes_checked: int = 0
    quarantined: list[str] = field(default_factory=list)
    temp_removed: int = 0

    @property
    def ok(self) -> bool:
        return not self.quarantined


def _hash_fd(fd: int, size_hint: int, out: int | None) -> Digest:
    """Read ``fd`` to its end once, feeding both hashes and copying to ``out``.

    Large inputs go through ``_stream``: MD5 on a second thread, the write on a
    third, with direct I/O when the copy is big enough to be worth it.
    """
    if size_hint <= SMALL:
        h = Hasher()
        data = os.read(fd, size_hint + 1)
        while data:
            h.update(data)
            if out is not None:
                _write_all(out, data)
            data = os.read(fd, CHUNK)
        return h.digest()
    return _stream(fd, out, direct=out is not None and size_hint >= DIRECT_MIN)


def _stream(fd: int, out: int | None, *, direct: bool) -> Digest:
    """Hash (and copy) a large input in one pass, as three overlapping lanes.

    This thread reads each block and feeds blake3; one helper thread runs MD5,
    the slow hash, over the block; another writes it to ``out``. Both release
    the GIL, so the copy takes about as long as MD5 alone. Two page-aligned
    buffers take turns: a block is read only into the buffer whose hash and
    write have finished. With ``direct``, ``out`` is written with ``O_DIRECT``:
    the bytes go from the buffer to the disk without a copy into the page cache
    (most of a large copy's CPU), and the sync before the journal commit finds
    little left to flush. A filesystem that refuses direct I/O gets ordinary
    writes, as does the unaligned tail.
    """
    b3 = _blake3(max_threads=1)
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    bufs = [mmap.mmap(-1, STREAM_BLOCK), mmap.mmap(-1, STREAM_BLOCK)]  # anonymous maps are page-aligned
    views = [memoryview(b) for b in bufs]
    direct = direct and _set_direct(out, True)

    def write(chunk: memoryview) -> None:
        nonlocal direct
        if direct:
            head = len(chunk) - len(chunk) % _DIRECT_ALIGN
            try:
                _write_all(out, chunk[:head])
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                head = 0  # accepted at open, refused at write: nothing was written
            if head == len(chunk):
                return
            _set_direct(out, False)
            direct = False
            chunk = chunk[head:]
        _write_all(out, chunk)

    hashing = writing = None
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="satchel-stream")
    try:
        with os.fdopen(os.dup(fd), "rb", buffering=0) as f:
            k = 0
            while n := f.readinto(bufs[k]):
                chunk = views[k][:n]
                b3.update(chunk)
                size += n
                if hashing is not None:
                    hashing.result()
                hashing = pool.submit(md5.update, chunk)
                if out is not None:
                    if writing is not None:
                        writing.result()
                    writing = pool.submit(write, chunk)
                k ^= 1
        for lane in (hashing, writing):
            if lane is not None:
                lane.result()
    finally:
        pool.shutdown(wait=True)  # no lane may still use a buffer, even after an error
        if direct:
            _set_direct(out, False)
    return Digest(b3.hexdigest(), md5.hexdigest(), size)


def _set_direct(fd: int, on: bool) -> bool:
    """Turn ``O_DIRECT`` on or off for ``fd``; False if the filesystem does not allow it."""
    if not _O_DIRECT:
        return False
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | _O_DIRECT if on else flags & ~_O_DIRECT)
    except OSError:
        return False
    return True


def _read_all(fd: int, size_hint: int) -> bytes:
    """Read a small file whole (one call when the size is right; loops if it grew)."""
    data = os.read(fd, size_hint + 1)
    if len(data) <= size_hint:
        return data
    parts = [data]
    while chunk := os.read(fd, CHUNK):
        parts.append(chunk)
    return b"".join(parts)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


@dataclass(frozen=True)
class CachedObject:
    """One object of the cache as ``gc`` sees it."""

    blake3: str
    size: int
    last_used: float  # seconds since the epoch


class ObjectCache:
    """Read-only objects named by blake3 (the journal keeps each asset's MD5 and size alongside)."""

    def __init__(self, root: os.PathLike[str] | str, *, link_modes: Sequence[str] = DEFAULT_LINK_MODES,
                 read_only: bool = False):
        self.root = Path(root)
        self.read_only = read_only
        self.objects_dir = self.root / "objects"
        self.tmp_dir = self.root / "tmp"
        self.quarantine_dir = self.root / "quarantine"
        for d in () if read_only else (self.objects_dir, self.tmp_dir, self.quarantine_dir):
            d.mkdir(parents=True, exist_ok=True)
        if not read_only and not (self.objects_dir / "ff").is_dir():
            for i in range(256):  # the fan-out exists up front: no mkdir per ingest
                (self.objects_dir / f"{i:02x}").mkdir(exist_ok=True)
        self._objects_prefix = f"{self.objects_dir}/"
        self._objects_fd = os.open(self.objects_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._device = os.fstat(self._objects_fd).st_dev
        #: staged files may become objects by hardlink (through /proc/self/fd, see _take)
        self._can_link = os.path.isdir("/proc/self/fd")
        self.link_modes = check_modes(link_modes)
        self.index = CacheIndex(self.root / "index.db", read_only=read_only)
        self._background: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        #: held shared by whatever relies on objects staying, exclusive by gc (see uselock)
        self.use = UseLock(self.root / "gc.lock", read_only=read_only)

    def close(self) -> None:
        if self._background is not None:
            self._background.shutdown(wait=True)
            self._background = None
        self.index.close()
        self.use.close()
        if self._objects_fd >= 0:
            os.close(self._objects_fd)
            self._objects_fd = -1
            self._can_link = False

    # --- naming ---------------------------------------------------------------

    def path_of(self, digest: Digest | str) -> Path:
        return Path(self._object_name(digest))

    def _object_name(self, digest: Digest | str) -> str:
        b3 = digest.blake3 if isinstance(digest, Digest) else digest
        return f"{self._objects_prefix}{b3[:2]}/{b3[2:]}"

    def has(self, digest: Digest | str) -> bool:
        return os.path.exists(self._object_name(digest))

    # --- hashing user files ------------------------------------------------------

    def hash_file(self, path: Path, *, use_stat_cache: bool = True) -> Digest:
        """The digest of a file, from the stat cache when it is unchanged."""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            if use_stat_cache:
                known = self.index.lookup(st)
                if known is not None:
                    return known
            digest = _hash_fd(fd, st.st_size, None)
            after = os.fstat(fd)
        finally:
            os.close(fd)
        if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
            raise FileChangedError(f"{path} changed while it was being hashed; hash it again once it is complete")
        self.index.record([(st, digest, False)])
        return digest

    def file_matches(self, path: Path | str, digest: Digest, *, st: os.stat_result | None = None) -> bool:
        """Does ``path`` (not following a final symlink) hold exactly these bytes?

        ``st`` is its ``lstat`` when the caller has just taken it."""
        if st is None:
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                return False
        if not stat.S_ISREG(st.st_mode) or st.st_size != digest.size:
            return False
        known = self.index.lookup(st)
        if known is not None:
            return known == digest
        return self.hash_file(Path(path), use_stat_cache=False) == digest

    # --- ingest -------------------------------------------------------------------

    def ingest(self, source: os.PathLike[str] | str, *, durable: bool = True) -> Captured:
        """Capture one file into the cache; durable on return unless told not to be."""
        captured, entries = self._capture(Path(source))
        if durable:
            sync_filesystem(self.root)
        self.index.record(entries)
        return captured

    def ingest_many(
        self,
        sources: Sequence[Path | str],
        *,
        sizes: Sequence[int] | None = None,
        disposable: Sequence[bool] | None = None,
        workers: int | None = None,
        progress: Progress | None = None,
    ) -> list[Captured]:
        """Capture many files with one filesystem sync at the end; results in input order.

        ``capture_many`` then its sealing, at once; see there.
        """
        captured, seal = self.capture_many(
            sources, sizes=sizes, disposable=disposable, workers=workers, progress=progress
        )
        seal()
        return captured

    def capture_many(
        self,
        sources: Sequence[Path | str],
        *,
        sizes: Sequence[int] | None = None,
        disposable: Sequence[bool] | None = None,
        workers: int | None = None,
        progress: Progress | None = None,
    ) -> tuple[list[Captured], Callable[[], None]]:
        """Capture many files; returns the results in input order and the ``seal`` that makes them durable.

        ``seal()`` syncs the filesystem once (``syncfs``) and then records the
        stat entries and new objects in the index. Nothing may refer to the
        captured objects durably (a journal commit) before it has returned; the
        caller may prepare that commit meanwhile, on another thread.

        Small files are captured in this thread (for them, threads only add
        contention on the GIL); files of at least ``PARALLEL_MIN`` bytes are
        captured by a small pool, where hashing and I/O release the GIL.
        ``sizes``, when the caller has just stat'ed the sources, saves a stat each.
        ``disposable`` marks sources the caller deletes once the journal has
        recorded them (staged files): the cache may take such a file's inode as
        the new object, by hardlink, instead of copying it (see ``_take``), and
        records no stat entry for the name that is about to go.
        Raises the first failure after every capture has finished; objects
        already written stay (they are content-addressed, so harmless).
        """
        if not sources:
            return [], lambda: None
        n = len(sources)
        if sizes is None:
            sizes = []
            for src in sources:
                try:
                    sizes.append(os.stat(src).st_size)
                except FileNotFoundError:
                    sizes.append(0)  # _capture reports it
        flags = disposable if disposable is not None else [False] * n
        big = [i for i, size in enumerate(sizes) if size >= PARALLEL_MIN]
        results: list[Captured | None] = [None] * n
        entries: list[tuple[os.stat_result, Digest, bool]] = []
        error: BaseException | None = None
        done = 0

        def finish(i: int, outcome: tuple[Captured, list[Any]]) -> None:
            nonlocal done
            results[i] = outcome[0]
            if outcome[1]:
                entries.extend(outcome[1])
            done += 1
            if progress is not None:
                progress(done, n)

        pool = ThreadPoolExecutor(max_workers=workers or 4, thread_name_prefix="satchel-ingest") if big else None
        gc_paused = pause_gc()
        try:
            futures = {i: pool.submit(self._capture, sources[i], flags[i]) for i in big} if pool else {}
            capture = self._capture
            for i, src in enumerate(sources):
                if i in futures:
                    continue
                try:
                    finish(i, capture(src, flags[i]))
                except BaseException as exc:
                    error = error or exc
                    break
            for i, fut in futures.items():
                try:
                    finish(i, fut.result())
                except BaseException as exc:  # keep draining so no thread is left writing
                    error = error or exc
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
            if gc_paused:
                gc.enable()
        if error is not None:
            raise error
        captured = [r for r in results if r is not None]

        def seal() -> None:
            sync_filesystem(self.root)
            self.index.record(entries)

        return captured, seal

    def in_background(self, fn: Callable[[], None]) -> Future[None]:
        """Run ``fn`` (a ``capture_many`` seal) on the cache's one background thread.

        One long-lived thread, so its index connection is opened once, not per batch.
        """
        with self._lock:
            if self._background is None:
                self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="satchel-seal")
            return self._background.submit(fn)

    def _capture(
        self, source: Path | str, disposable: bool = False
    ) -> tuple[Captured, list[tuple[os.stat_result, Digest, bool]]]:
        """Hash one file and put its bytes in the cache (no fsync: callers batch it).

        Each byte is read once. A small file is read whole and hashed; a large
        one streams through the hashes, into a temp file unless it can be taken
        by hardlink. Bytes are written only if the cache lacks the object.
        Returns the stat-cache entries to record, so a batch records them in
        one transaction.
        """
        try:
            fd = os.open(source, _OPEN_NOFOLLOW if disposable else _OPEN)
        except FileNotFoundError:
            raise MissingSourceError(
                f"{source} does not exist; write it (or register another path) before committing"
            ) from None
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            # a staged name the user replaced by a symlink: its target is not ours to take
            return self._capture(source, False)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise CacheError(f"{source} is not a regular file; only files can be assets")
            takeable = disposable and st.st_nlink == 1 and st.st_dev == self._device and self._can_link
            small = st.st_size <= SMALL
            if not (disposable and small):  # a small staged file is hashed faster than looked up
                known = self.index.lookup(st)
                if known is not None and self._present(known):
                    return Captured(source, known, False), []
                if known is not None and takeable:
                    taken = self._take(fd, st, known, source)
                    if taken is not None:
                        return Captured(source, known, taken), [(st, known, True)] if taken else []
            if small:
                data = _read_all(fd, st.st_size)
                digest = Digest(_blake3(data).hexdigest(), hashlib.md5(data, usedforsecurity=False).hexdigest(), len(data))
                if takeable:  # checks the file is unchanged, links it, or finds the object already there
                    taken = self._take(fd, st, digest, source)
                    if taken is not None:
                        return Captured(source, digest, taken), [(st, digest, True)] if taken else []
                self._check_unchanged(source, fd, st, digest)
                own = [] if disposable else [(st, digest, False)]
                if self._present(digest):
                    return Captured(source, digest, False), own
                final = self._object_name(digest)
                tmp = temp_name(final.rpartition("/")[0])
                out = os.open(tmp, _CREATE, 0o444)
                try:
                    _write_all(out, data)
                finally:
                    os.close(out)
            else:
                if takeable:  # hash only: the file itself may become the object
                    digest = _hash_fd(fd, st.st_size, None)
                    taken = self._take(fd, st, digest, source)
                    if taken is not None:
                        return Captured(source, digest, taken), [(st, digest, True)] if taken else []
                    os.lseek(fd, 0, os.SEEK_SET)  # could not link after all: copy it
                tmp = temp_name(self.tmp_dir)
                out = os.open(tmp, _CREATE, 0o444)
                try:
                    digest = _hash_fd(fd, st.st_size, out)
                    self._check_unchanged(source, fd, st, digest)
                except BaseException:
                    os.close(out)
                    remove_quietly(tmp)
                    raise
                os.close(out)
                final = self._object_name(digest)
                own = [] if disposable else [(st, digest, False)]
        finally:
            os.close(fd)
        if self._present(digest):
            remove_quietly(tmp)
            return Captured(source, digest, False), own
        crash_point("capture.before_rename")
        os.replace(tmp, final)
        # the stat after the rename: it moved the ctime, which the stat cache compares too
        return Captured(source, digest, True), [*own, (os.stat(final), digest, True)]

    def _present(self, digest: Digest) -> bool:
        """Is the object in the cache? One stat; an object of the wrong size (torn by a power cut
        before the sync its capture relied on) does not count, and the next capture replaces it."""
        b3 = digest.blake3
        try:
            if self._objects_fd < 0:  # closed: by name
                return os.stat(self._object_name(digest)).st_size == digest.size
            return os.stat(f"{b3[:2]}/{b3[2:]}", dir_fd=self._objects_fd).st_size == digest.size
        except FileNotFoundError:
            return False

    def _take(self, fd: int, st: os.stat_result, digest: Digest, source: Path | str) -> bool | None:
        """Make the staged file open at ``fd`` the object itself: chmod 0444, then hardlink it in.

        No byte is read or written again. The caller deletes the staged name once
        the journal has recorded the capture, so the object keeps an inode of its
        own. Taken only if nothing can write to it through another name or an
        open descriptor: one link (checked by the caller), on the cache's
        filesystem, and no process holding it open for writing, which a read
        lease proves (the kernel refuses one while the file is open for write or
        mapped shared-writable). The mode goes to 0444 *before* the lease is
        asked for, so no new writer can open it between the check and the link;
        only root could, as with any object.
        Returns True once linked, False if a concurrent capture put the same
        bytes there first, None when the file must be copied instead.
        Also checks that the file did not change since ``st``, which ``digest`` describes.
        """
        try:
            os.fchmod(fd, 0o444)
        except PermissionError:  # not the owner: leave it alone and copy
            return None
        if not _no_writers(fd):  # a writer opened it earlier: give it back writable, and copy
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
            return None
        try:
            self._check_unchanged(source, fd, st, digest)
        except FileChangedError:  # still being written: give it back writable
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
            raise
        crash_point("capture.before_link")
        b3 = digest.blake3
        try:
            # linkat(AT_SYMLINK_FOLLOW) through /proc links the very inode that was hashed,
            # whatever the staged name points to by now
            os.link(f"/proc/self/fd/{fd}", f"{b3[:2]}/{b3[2:]}", src_dir_fd=self._objects_fd,
                    dst_dir_fd=self._objects_fd)
        except FileExistsError:
            if self._present(digest):  # a concurrent capture of the same bytes
                return False
            os.replace(self._replace_torn(fd, digest), self._object_name(digest))
        except OSError as exc:
            if exc.errno not in _LINK_REFUSED:
                raise
            self._can_link = False
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
            return None
        crash_point("capture.after_link")
        return True

    def _replace_torn(self, fd: int, digest: Digest) -> str:
        """A temp hardlink of ``fd`` in the object's fan-out, to rename over a torn object."""
        tmp = temp_name(self._object_name(digest).rpartition("/")[0])
        os.link(f"/proc/self/fd/{fd}", tmp, src_dir_fd=self._objects_fd)
        return tmp

    def stage_copy(self, source: os.PathLike[str] | str, dest: str) -> Digest:
        """Copy ``source`` to the new file ``dest`` (a reflink where the filesystem can), hashing it in the same pass.

        The copy keeps the source's modification time, as ``cp -p`` does, and its
        digest goes into the stat cache: a later capture of ``dest`` (the commit)
        knows its bytes without reading them while it is unchanged. A write to
        ``dest`` sets its mtime to the present, which no longer matches; and if
        the source itself was modified within the last moments, the entry is
        racy and not trusted (see ``statcache``), so the capture hashes again.
        """
        src = os.open(source, _OPEN)
        try:
            st_src = os.fstat(src)
            if not stat.S_ISREG(st_src.st_mode):
                raise CacheError(f"{source} is not a regular file; only files can be assets")
            if try_reflink(Path(source), Path(dest), st_src.st_dev):
                out = os.open(dest, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    digest = _hash_fd(out, st_src.st_size, None)
                finally:
                    os.close(out)
            else:
                out = os.open(dest, _CREATE, 0o644)
                try:
                    digest = _hash_fd(src, st_src.st_size, out)
                finally:
                    os.close(out)
        finally:
            os.close(src)
        os.utime(dest, ns=(st_src.st_atime_ns, st_src.st_mtime_ns))
        self.index.record([(os.stat(dest), digest, False)])
        return digest

    @staticmethod
    def _check_unchanged(source: Path | str, fd: int, st: os.stat_result, digest: Digest) -> None:
        after = os.fstat(fd)
        if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns) or digest.size != st.st_size:
            raise FileChangedError(
                f"{source} changed while satchel was capturing it; finish writing it, then commit again"
            )

    def adopt(self, path: Path, *, expected_md5: str | None = None) -> Digest:
        """Take a file satchel wrote itself (a verified download) into the cache by rename: no copy.

        The file is hashed once (blake3 and MD5) and must match ``expected_md5``;
        it must be on the cache's filesystem (download it into ``tmp_dir``).
        """
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            digest = _hash_fd(fd, os.fstat(fd).st_size, None)
            os.fsync(fd)
        finally:
            os.close(fd)
        if expected_md5 is not None and digest.md5 != expected_md5.lower():
            remove_quietly(path)
            raise IntegrityError(f"downloaded bytes have MD5 {digest.md5}, expected {expected_md5}; fetch again")
        os.chmod(path, 0o444)
        final = self._object_name(digest)
        if os.path.exists(final):
            remove_quietly(path)
        else:
            os.replace(path, final)
            fsync_dir(Path(final).parent)
        self.index.record([(os.stat(final), digest, True)])
        return digest

    def ingest_stream(self, chunks: Iterable[bytes], *, expected_md5: str | None = None) -> Digest:
        """Store bytes arriving as chunks (e.g. a download), durably."""
        tmp = temp_name(self.tmp_dir)
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        h = Hasher()
        try:
            for chunk in chunks:
                h.update(chunk)
                _write_all(out, chunk)
            digest = h.digest()
            if expected_md5 is not None and digest.md5 != expected_md5.lower():
                raise IntegrityError(f"received bytes have MD5 {digest.md5}, expected {expected_md5}; fetch again")
            os.fsync(out)
        except BaseException:
            os.close(out)
            remove_quietly(tmp)
            raise
        os.close(out)
        final = self.path_of(digest)
        os.replace(tmp, final)
        fsync_dir(final.parent)
        self.index.record([(os.stat(final), digest, True)])
        return digest

    # --- export ------------------------------------------------------------------

    def _object_stat(self, digest: Digest) -> tuple[Path, os.stat_result]:
        obj = self.path_of(digest)
        try:
            return obj, os.stat(obj)
        except FileNotFoundError:
            raise ObjectMissingError(f"object {digest.short} is not in the cache at {self.root}") from None

    def verify_object(self, digest: Digest) -> Path:
        """Check a cached object against its digest (stat cache first); quarantine on mismatch."""
        obj, st = self._object_stat(digest)
        if self.index.lookup(st) == digest:
            return obj
        actual = self.hash_file(obj, use_stat_cache=False)
        if actual != digest:
            self._quarantine(obj, digest.blake3)
            raise IntegrityError(
                f"cached object {digest.short} is corrupt (its bytes hash to {actual.short}); it was "
                f"moved to {self.quarantine_dir}; fetch the asset again while online"
            )
        return obj

    def read_bytes(self, digest: Digest) -> bytes:
        """The object's bytes, verified against the full digest before return."""
        obj, _ = self._object_stat(digest)
        data = obj.read_bytes()
        h = Hasher()
        h.update(data)
        if h.digest() != digest:
            self._quarantine(obj, digest.blake3)
            raise IntegrityError(f"cached object {digest.short} is corrupt; it was quarantined")
        return data

    def export(self, digest: Digest, dest: Path, *, link_modes: Sequence[str] | None = None, durable: bool = True) -> str:
        """Put verified bytes at ``dest`` atomically; returns the link mode used.

        ``dest`` is replaced by rename, never written through: if it is a
        symlink, the link is replaced and its target left untouched.
        """
        modes = check_modes(link_modes) if link_modes is not None else self.link_modes
        obj, st_obj = self._object_stat(digest)
        tmp = temp_name(dest.parent, dest.name)
        used = None
        try:
            for mode in modes:
                if mode == "reflink" and try_reflink(obj, tmp, st_obj.st_dev):
                    used = mode
                elif mode == "hardlink" and try_hardlink(obj, tmp, st_obj.st_dev):
                    used = mode
                elif mode == "copy":
                    self._copy_verified(obj, tmp, digest, durable=durable)
                    used = mode
                if used:
                    break
            if used is None:
                raise CacheError(f"none of the link modes {modes} could place {dest}; add 'copy' to the modes")
            if used != "copy":
                self.verify_object(digest)
            os.replace(tmp, dest)
        except BaseException:
            remove_quietly(tmp)
            raise
        if durable:
            fsync_dir(dest.parent)
        if used != "hardlink":
            self.index.record([(os.stat(dest), digest, True)])
        return used

    def _copy_verified(self, obj: Path, tmp: str, digest: Digest, *, durable: bool = True) -> None:
        src = os.open(obj, os.O_RDONLY | os.O_CLOEXEC)
        try:
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                actual = _hash_fd(src, digest.size, out)
                if actual != digest:
                    self._quarantine(obj, digest.blake3)
                    raise IntegrityError(
                        f"cached object {digest.short} is corrupt (its bytes hash to {actual.short}); "
                        f"it was quarantined; fetch the asset again while online"
                    )
                if durable:
                    os.fsync(out)
            finally:
                os.close(out)
        finally:
            os.close(src)

    # --- verify ---------------------------------------------------------------------

    def _quarantine(self, obj: Path, name: str) -> None:
        target = self.quarantine_dir / f"{name}.{time.time_ns()}"
        try:
            os.replace(obj, target)
        except FileNotFoundError:
            return
        log.warning("quarantined corrupt cache object %s to %s", name[:12], target)

    def iter_objects(self) -> Iterable[Path]:
        for sub in sorted(self.objects_dir.iterdir()):
            if sub.is_dir():
                yield from sorted(p for p in sub.iterdir() if not is_temp_name(p.name))

    def verify(self, *, progress: Progress | None = None) -> VerifyReport:
        """Re-hash every object; quarantine those whose bytes do not match their name."""
        report = VerifyReport()
        objects = list(self.iter_objects())
        for i, obj in enumerate(objects, 1):
            name = obj.parent.name + obj.name
            before = obj.stat()
            actual = self.hash_file(obj, use_stat_cache=False)
            with contextlib.suppress(OSError):  # a check is not a use: gc --keep-days goes by the access time
                os.utime(obj, ns=(before.st_atime_ns, before.st_mtime_ns))
            report.checked += 1
            report.bytes_checked += actual.size
            if actual.blake3 != name:
                self._quarantine(obj, name)
                report.quarantined.append(name)
            if progress is not None:
                progress(i, len(objects))
        report.temp_removed = self.remove_temp_debris()
        return report

    def remove_temp_debris(self, older_than_s: float = 3600.0) -> int:
        """Delete temp files a crashed ingest left behind (in tmp/ and in the fan-out)."""
        removed = 0
        cutoff = time.time() - older_than_s
        candidates = list(self.tmp_dir.iterdir())
        for sub in self.objects_dir.iterdir():
            if sub.is_dir():
                candidates.extend(p for p in sub.iterdir() if is_temp_name(p.name))
        for p in candidates:
            try:
                if p.stat().st_mtime < cutoff:
                    if p.is_dir() and not p.is_symlink():  # a bundle import's staging folder
                        shutil.rmtree(p)
                    else:
                        p.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    def object_stats(self) -> Iterator[CachedObject]:
        """Every object with its size and when it was last used (entered the cache, or was read out)."""
        for sub in sorted(os.scandir(self.objects_dir), key=lambda e: e.name):
            if not sub.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(sub.path):
                if is_temp_name(entry.name):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                yield CachedObject(sub.name + entry.name, st.st_size, max(st.st_atime, st.st_mtime))

    def remove(self, b3: str) -> int:
        """Delete one object (only ``gc`` does, holding :attr:`use` exclusive); returns the bytes freed."""
        name = self._object_name(b3)
        try:
            size = os.stat(name).st_size
            os.unlink(name)
        except FileNotFoundError:
            return 0
        return size

    def disk_usage(self) -> tuple[int, int]:
        """(object count, bytes) in the cache."""
        count = total = 0
        for obj in self.iter_objects():
            count += 1
            total += obj.stat().st_size
        return count, total

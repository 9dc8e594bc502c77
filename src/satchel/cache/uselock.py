"""Who may use the cache while ``satchel gc`` removes objects: a shared/exclusive lock across processes.

Anything that takes an object and then relies on it staying (a commit between
capturing its files and recording them in the journal, a download between
finding an object and copying it out, a bundle export or import) holds the
lock *shared*; ``gc`` holds it *exclusive* while it decides what to remove and
removes it. It is an ``flock`` on ``<cache>/gc.lock``: the kernel drops it when
its holder dies, however it dies, so a killed process never leaves it held.

One descriptor per cache, opened once; a count makes nested and concurrent
shared uses in one process take the kernel lock once (``flock`` locks belong to
the open file, so the first release would otherwise drop every holder's).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from satchel.errors import StoreBusyError


class UseLock:
    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self._read_only = read_only  # nothing can be removed from read-only media: no lock needed
        self._fd = -1
        self._pid = os.getpid()
        self._holders = 0
        self._mutex = threading.Lock()

    def _open(self) -> int:
        if self._fd >= 0 and self._pid != os.getpid():
            # a forked child shares the parent's open file, and its release would drop the parent's lock
            self._fd, self._holders = -1, 0
        if self._fd < 0:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._pid = os.getpid()
        return self._fd

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Keep ``gc`` from removing objects for the duration (waits while a gc runs)."""
        if self._read_only:
            yield
            return
        with self._mutex:
            fd = self._open()
            if self._holders == 0:
                fcntl.flock(fd, fcntl.LOCK_SH)
            self._holders += 1
        try:
            yield
        finally:
            with self._mutex:
                self._holders -= 1
                if self._holders == 0:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)

    @contextmanager
    def exclusive(self, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        """Hold the cache alone (a separate open file, so it waits for other processes' shared holders)."""
        if self._holders and self._pid == os.getpid():
            raise StoreBusyError(f"this process is using the cache at {self.path.parent} (a commit, download or "
                                 "bundle is under way in it): run gc after that call returns")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait()
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def close(self) -> None:
        with self._mutex:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
                self._holders = 0

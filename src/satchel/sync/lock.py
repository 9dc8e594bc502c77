"""One sync at a time per store: an advisory lock that dies with its process."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from satchel.errors import StoreBusyError


@contextmanager
def sync_lock(store_root: Path) -> Iterator[None]:
    """Hold ``<store>/sync.lock`` (flock) for the duration; fail at once if another sync holds it.

    The kernel drops the lock when the holder exits, however it exits, so a
    killed sync never leaves the store locked.
    """
    path = store_root / "sync.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            raise StoreBusyError(
                f"another sync of {store_root} is running (pid {holder}); wait for it to finish, "
                "executions can keep recording meanwhile"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)

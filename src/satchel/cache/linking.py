"""Getting bytes to a user's path: reflink, hardlink or copy.

``reflink`` shares blocks copy-on-write (btrfs, XFS, bcachefs): instant, and the
user's later edits never reach the cache. ``hardlink`` shares the inode: instant,
but the file is the read-only cache object itself, so it is opt-in (see
``DEFAULT_LINK_MODES``). ``copy`` always works.
Modes are tried in the configured order; a mode the filesystem refuses is
remembered per device and not tried again.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

LINK_MODES = ("reflink", "hardlink", "copy")
#: hardlink is opt-in: a hardlinked download *is* the cache object, and a write to it (which the
#: read-only mode does not stop for root) would destroy the only copy of an asset not yet synced
DEFAULT_LINK_MODES = ("reflink", "copy")

_FICLONE = 0x40049409
_NOT_SUPPORTED = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.EPERM, errno.EMLINK, errno.ENOSYS}

_refused: set[tuple[str, int]] = set()


def check_modes(modes: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    modes = tuple(modes)
    bad = [m for m in modes if m not in LINK_MODES]
    if bad or not modes:
        raise ValueError(
            f"unknown link mode(s) {bad or modes!r}; choose an order from {', '.join(LINK_MODES)}"
        )
    return modes


def try_reflink(src: Path, dst: Path, device: int) -> bool:
    """Clone ``src`` to the new file ``dst``; False if the filesystem cannot."""
    if ("reflink", device) in _refused:
        return False
    sfd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            fcntl.ioctl(dfd, _FICLONE, sfd)
            os.fsync(dfd)
            return True
        except OSError as exc:
            if exc.errno not in _NOT_SUPPORTED:
                raise
            _refused.add(("reflink", device))
            os.close(dfd)
            dfd = -1
            os.unlink(dst)
            return False
        finally:
            if dfd >= 0:
                os.close(dfd)
    finally:
        os.close(sfd)


def try_hardlink(src: Path, dst: Path, device: int) -> bool:
    if ("hardlink", device) in _refused:
        return False
    try:
        os.link(src, dst)
        return True
    except OSError as exc:
        if exc.errno not in _NOT_SUPPORTED:
            raise
        _refused.add(("hardlink", device))
        return False

"""Durable file primitives: temp file, fsync, atomic rename, directory fsync.

Everything that puts bytes where a user or the journal will trust them goes
through here, so the crash model is written down in one place
(docs/internals.md): a file is visible under its final name only once its
bytes are on disk, and the rename itself is made durable by an fsync of the
directory. Batches may defer the fsyncs to one :func:`sync_filesystem` call
before the journal commit that makes them reachable.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import secrets
from pathlib import Path

_libc = None


def _syncfs_fn():
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        _libc = ctypes.CDLL(name, use_errno=True) if name else False
    return getattr(_libc, "syncfs", None) if _libc else None


def sync_filesystem(path: Path) -> None:
    """Flush every dirty page of the filesystem holding ``path`` to disk.

    One ``syncfs(2)`` costs about as much as a handful of fsyncs and covers any
    number of files; it is how a batch keeps durability without an fsync per
    small file. Falls back to a global ``sync()`` where syncfs is missing.
    """
    fn = _syncfs_fn()
    if fn is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if fn(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(directory: Path | str, stem: str = "") -> str:
    """A fresh temp path in ``directory`` that no other writer will pick."""
    return f"{directory}/.{stem[:40]}.satchel-tmp-{secrets.token_hex(6)}"


def is_temp_name(name: str) -> bool:
    return ".satchel-tmp-" in name


def remove_quietly(path: Path | str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass

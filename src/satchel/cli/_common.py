"""What every command shares: finding and opening the store, errors to exit codes, output."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from satchel.errors import (
    BadArgumentError,
    CacheError,
    ExecutionError,
    Interrupted,
    NotFoundError,
    RemoteError,
    SatchelError,
    StoreError,
    SyncError,
    TransportError,
)

if TYPE_CHECKING:
    from satchel.api import DerivaML

#: exit codes by error class, most specific first (documented in docs/cli.md)
EXIT_CODES: list[tuple[type[SatchelError], int]] = [
    (Interrupted, 130),
    (BadArgumentError, 2),
    (NotFoundError, 3),
    (CacheError, 4),
    (StoreError, 5),
    (RemoteError, 6),
    (SyncError, 7),
    (ExecutionError, 8),
    (SatchelError, 1),
]


def exit_code_for(exc: SatchelError) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return 1


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print a SatchelError as one clear line on stderr and exit with its code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SatchelError as exc:
            if debugging():
                raise
            message = str(exc)
            if isinstance(exc, TransportError):
                message += "; nothing is lost: the work stays in the local store and the next push or pull goes on"
            click.echo(f"error: {message}", err=True)
            sys.exit(exit_code_for(exc))
        except KeyboardInterrupt:
            if debugging():
                raise
            click.echo("interrupted: what was recorded or sent before is kept (each step commits on its own); "
                       "run the command again to go on", err=True)
            sys.exit(130)
        except Exception as exc:  # the environment (disk, permissions, files): one line; anything else is a bug
            if debugging() or not environmental(exc):
                raise
            cause = getattr(exc, "orig", None) or exc
            click.echo(f"error: {type(cause).__name__}: {cause}; nothing recorded before was lost. "
                       "Set SATCHEL_DEBUG=1 to see where it happened", err=True)
            sys.exit(5)

    return wrapper


@contextlib.contextmanager
def stop_on_ctrl_c(echo: Callable[[str], None]) -> Iterator[threading.Event]:
    """The first Ctrl-C asks the sync to stop at its next safe point (an event it checks); the second stops
    at once (KeyboardInterrupt). The library itself never installs signal handlers."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        stop.set()
        echo("stopping at the next safe point (what the server confirmed is kept); Ctrl-C again to stop at once")

    signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def environmental(exc: BaseException) -> bool:
    """An error of the machine around satchel (a file, the disk, SQLite), not of satchel's own logic."""
    if isinstance(exc, (OSError, sqlite3.Error)):
        return True
    return type(exc).__module__.startswith("sqlalchemy") and isinstance(getattr(exc, "orig", None), sqlite3.Error)


def debugging() -> bool:
    """``SATCHEL_DEBUG=1``: let errors through with their Python traceback (for bug reports)."""
    return os.environ.get("SATCHEL_DEBUG", "") not in ("", "0")


def store_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--store, --host and --catalog: which store a command works on."""
    fn = click.option(
        "--catalog", "catalog_id", envvar="SATCHEL_CATALOG", help="Catalog id (with --host)."
    )(fn)
    fn = click.option("--host", "hostname", envvar="SATCHEL_HOST", help="DERIVA host name of the store.")(fn)
    fn = click.option(
        "--store",
        "store",
        envvar="SATCHEL_STORE",
        type=click.Path(file_okay=False, path_type=Path),
        help="Store directory (default: the only store under $SATCHEL_HOME, or --host/--catalog).",
    )(fn)
    return fn


def satchel_home() -> Path:
    home = os.environ.get("SATCHEL_HOME")
    return Path(home).expanduser() if home else Path.home() / ".satchel"


def find_stores() -> list[Path]:
    home = satchel_home()
    if not home.is_dir():
        return []
    return sorted(p.parent for p in home.glob("*/*/journal.db"))


def find_store(store: Path | None, hostname: str | None, catalog_id: str | None) -> Path | None:
    """The directory of the existing store a command names, or the only one there is, without opening it.

    None for ``--host``/``--catalog``: that store is found (or made) by opening it.
    """
    if store is not None:
        if not (store / "journal.db").exists():
            raise StoreError(f"{store} is not a satchel store (no journal.db); check the path")
        return store
    if hostname and catalog_id:
        return None
    stores = find_stores()
    if len(stores) == 1:
        return stores[0]
    if not stores:
        raise StoreError(
            f"no store under {satchel_home()}; record something first (or run `satchel demo`), "
            "or name one with --store PATH"
        )
    listing = ", ".join(str(s) for s in stores)
    raise StoreError(f"several stores exist ({listing}); choose one with --store PATH or --host/--catalog")


def open_store(store: Path | None, hostname: str | None, catalog_id: str | None, *, create: bool = False) -> DerivaML:
    """Open the store a command names, or the only one there is (``create``: make ``--store`` if it is new,
    for ``--host``/``--catalog``)."""
    if create and store is not None and hostname and catalog_id and not (store / "journal.db").exists():
        from satchel.api import DerivaML

        return DerivaML(hostname, catalog_id, working_dir=store)
    path = find_store(store, hostname, catalog_id)
    if path is None:
        from satchel.api import DerivaML

        return DerivaML(hostname, catalog_id)
    return _open(path)


def _open(path: Path) -> DerivaML:
    from satchel.api import DerivaML
    from satchel.store import Store

    probe = Store(path)
    host, catalog = probe.info.get("hostname", "unknown"), probe.info.get("catalog_id", "0")
    probe.close()
    return DerivaML(host, catalog, working_dir=path)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


#: sync result keys as a summary says them
STEP_WORDS = {
    "terms": "vocabulary terms", "workflows": "workflows", "executions": "executions", "objects": "objects",
    "assets": "asset rows", "tags": "tags", "tag_removals": "tag removals", "links": "execution links",
    "descriptions": "descriptions", "status": "statuses", "rid_pool": "RIDs leased for offline work",
    "bytes": "objects fetched", "adopted": "rows already pushed elsewhere, adopted", "conflicts": "conflicts",
    "deleted": "assets deleted on the server", "tags_removed": "tags removed on the server",
    "links_removed": "links removed on the server",
}


def counted(counts: dict[str, int]) -> str:
    """``{"assets": 3, "rid_pool": 100}`` as ``3 asset rows, 100 RIDs leased for offline work``."""
    return ", ".join(f"{n:,} {STEP_WORDS.get(k, k.replace('_', ' '))}" for k, n in counts.items() if n)


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"

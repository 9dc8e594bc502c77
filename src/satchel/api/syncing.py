"""Sync calls of ``DerivaML``: the remote it syncs to, push, pull, and what they would do.

The only calls of the API that reach the network, and only when asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from satchel.journal.resolve import asset_id, row_id
from satchel.api.workspace import Workspace
from satchel.journal import queries as q
from satchel.journal import read_transaction, write_transaction
from satchel.journal.models import AssetRow
from satchel.journal.synclog import SyncLogRecord, history


def check_remote_url(url: str) -> str:
    """``url`` as satchel stores it (``scheme://host[:port][/path]``), or a ``RemoteURLError`` saying what to give."""
    from urllib.parse import urlsplit

    from satchel.errors import RemoteURLError
    from satchel.remote.boundary import safe_url

    try:
        parts = urlsplit(str(url).strip())
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteURLError(f"{safe_url(url) if parts else repr(url)} is not a server URL; give it as "
                             "https://host (http://host:port for a local test server), e.g. https://www.example.org")
    if parts.username is not None or parts.password is not None:
        raise RemoteURLError(f"{safe_url(url)}: satchel does not keep a user name or password from a URL; give the "
                             "URL without them, and the credential as in docs/remote.md ('Credentials')")
    host = f"{parts.hostname}:{port}" if port else parts.hostname
    return f"{parts.scheme}://{host}{parts.path.rstrip('/')}"


def remote_of(info: dict[str, str], hostname: str | None) -> str:
    """The store's server: the one set (user info never shown), else ``https://<hostname>``."""
    from satchel.remote.boundary import safe_url

    stored = info.get("remote_url")
    return safe_url(stored).rstrip("/") if stored else f"https://{hostname or info.get('hostname')}"


class SyncCalls:
    workspace: Workspace
    hostname: str
    catalog_id: str

    # --- the remote ------------------------------------------------------------------------------

    @property
    def remote_url(self) -> str:
        """The server this store syncs to: set with ``set_remote``, else ``https://<hostname>`` (one rule for
        every command: ``satchel status``, ``remote show``, ``push``, ``pull``)."""
        with read_transaction(self.workspace.engine) as conn:
            return remote_of(q.store_info(conn), self.hostname)

    def set_remote(self, url: str) -> None:
        """Configure the server this store syncs to (``satchel remote set URL``); sends nothing."""
        checked = check_remote_url(url)
        with write_transaction(self.workspace.engine) as conn:
            q.set_store_info(conn, "remote_url", checked)

    def connect(self, **session_options: Any) -> Any:
        """A :class:`satchel.remote.Remote` for this store's server and catalog (no request is sent)."""
        from satchel.remote import Remote

        return Remote(self.remote_url, self.catalog_id, **session_options)

    def push(self, *, remote: Any = None, progress: Any = None, retry_failed: bool = False, **options: Any) -> Any:
        """Send all local work to the catalog and object store, exactly once. Returns a ``SyncResult``."""
        from satchel import sync

        own = remote is None
        remote = remote if remote is not None else self.connect()
        try:
            return sync.push(self, remote, progress=progress, retry_failed=retry_failed, **options)
        finally:
            if own:
                remote.close()

    def pull(
        self, *, remote: Any = None, progress: Any = None, assets: Sequence[str] = (), tables: Sequence[str] = (),
        executions: Sequence[str] = (), metadata: bool = True, transfers: int = 4, stop: Any = None,
    ) -> Any:
        """Mirror the catalog's metadata into the store; fetch the bytes of the assets, tables or
        executions named (verified by MD5 into the cache), so they work offline afterwards."""
        from satchel import sync

        own = remote is None
        remote = remote if remote is not None else self.connect()
        try:
            return sync.pull(self, remote, progress=progress, assets=list(assets), tables=list(tables),
                             executions=list(executions), metadata=metadata, transfers=transfers, stop=stop)
        finally:
            if own:
                remote.close()

    def sync(self, *, remote: Any = None, progress: Any = None, retry_failed: bool = False, **options: Any) -> Any:
        """Push local work, then pull the catalog's: one ``SyncResult`` for both."""
        own = remote is None
        remote = remote if remote is not None else self.connect()
        try:
            pushed = self.push(remote=remote, progress=progress, retry_failed=retry_failed, **options)
            pulled = self.pull(remote=remote, progress=progress)
            return pushed.merge(pulled)
        finally:
            if own:
                remote.close()

    def pull_plan(self, *, assets: Sequence[str] = (), tables: Sequence[str] = (),
                  executions: Sequence[str] = ()) -> dict[str, Any]:
        """What a pull would read and fetch, from the journal alone (``satchel pull --dry-run``)."""
        from satchel.sync.plan import pull_plan

        ids: list[int] | None = None
        with read_transaction(self.workspace.engine) as conn:
            if assets or tables or executions:
                ids = [asset_id(conn, r) for r in assets]
                for t in tables:
                    ids += conn.execute(select(AssetRow.id).where(AssetRow.asset_table == t)).scalars().all()
                for r in executions:
                    exe_id = row_id(conn, r, "execution", "pull the metadata first (satchel pull)")
                    ids += conn.execute(select(q.links_t.c.asset_id).where(q.links_t.c.execution_id == exe_id)).scalars().all()
            return pull_plan(conn, sorted(set(ids)) if ids is not None else None)

    def resolve(self, asset_rid: str, keep: str) -> int:
        """Settle a description conflict: ``keep='local'`` or ``'remote'``. Returns how many were settled."""
        from satchel.sync.puller import resolve_conflict

        return resolve_conflict(self, asset_rid, keep)

    def sync_history(self, limit: int | None = None, operation: str | None = None) -> list[SyncLogRecord]:
        """The pushes, pulls and bundle exports and imports of this store, newest first (``satchel log``).

        ``limit``: at most that many; ``operation``: ``push``, ``pull``, ``bundle-export`` or
        ``bundle-import`` only. An entry whose process ended before it finished (killed, crashed) has the
        outcome ``unfinished``; one still at work, ``running``.
        """
        return history(self.workspace.store, limit=limit, operation=operation)

    def sync_plan(self) -> Any:
        """What one push would send, from the journal alone (``--dry-run``)."""
        from satchel import sync

        return sync.plan(self)

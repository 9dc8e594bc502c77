"""The sync engine: plan, then apply. Push sends local work to the catalog, exactly once.

``plan(ml)`` reads the journal alone and says what a push would send (it is
what ``--dry-run`` prints); ``push(ml, remote)`` applies it, step by step,
under the store's sync lock, and returns a :class:`SyncResult`.
"""

from __future__ import annotations

from typing import Any

from satchel import errors
from satchel.journal import read_transaction
from satchel.journal.synclog import KEPT, Recording, clip
from satchel.remote import Remote
from satchel.remote.boundary import safe_url
from satchel.sync.lock import sync_lock
from satchel.sync.plan import PushPlan, make_plan
from satchel.sync.pusher import Pusher
from satchel.sync.result import PUSH_STEPS, Failure, ProgressEvent, SyncResult


def plan(ml: Any) -> PushPlan:
    with read_transaction(ml.store.engine) as conn:
        return make_plan(conn)


def _writable(ml: Any, what: str) -> None:
    if getattr(ml.store, "read_only", False):
        raise errors.StoreError(f"the store at {ml.store.root} is on read-only media: a {what} records what the "
                                "server says in it, so it cannot run there; copy the store to a writable disk")


def push(ml: Any, remote: Remote, *, retry_failed: bool = False, **options: Any) -> SyncResult:
    """Send everything local to ``remote``; items the server refuses are marked failed, the rest go on."""
    _writable(ml, "push")
    if remote.session.credential is None:
        raise errors.AuthenticationError(
            f"no credentials for {remote.session.url}: writing to a DERIVA catalog needs them. Log in with "
            "deriva-py (deriva-globus-auth-utils login --host HOST) so ~/.deriva/credential.json has a token, "
            "or set SATCHEL_TOKEN (bearer) or SATCHEL_COOKIE (webauthn)",
            url=remote.session.url,
        )
    with sync_lock(ml.store.root), Recording(ml.store, "push", catalog_url(remote), summarize) as recording:
        if retry_failed:
            reset_failed(ml)
        return recording.done(Pusher(ml, remote, **options).run())


def pull(ml: Any, remote: Remote, **options: Any) -> SyncResult:
    """Mirror the catalog's metadata (and, if asked, bytes) into the store."""
    from satchel.sync.puller import Puller

    _writable(ml, "pull")
    run_options = {k: options.pop(k) for k in ("metadata", "assets", "tables", "executions") if k in options}
    with sync_lock(ml.store.root), Recording(ml.store, "pull", catalog_url(remote), summarize) as recording:
        return recording.done(Puller(ml, remote, **options).run(**run_options))


def catalog_url(remote: Remote) -> str:
    """The catalog a sync talks to, as the sync history names it (no user info, no secrets)."""
    return f"{safe_url(remote.session.url).rstrip('/')}/ermrest/catalog/{remote.catalog.catalog_id}"


def _nonzero(counts: Any) -> dict[str, int]:
    return {k: v for k, v in counts.items() if v}


def summarize(result: SyncResult) -> dict[str, Any]:
    """What the sync history keeps of a result: the counts and bytes, how many items failed, the first
    failures and warnings as short lines (``satchel push --json`` gives them all)."""
    return {
        "done": _nonzero(result.done), "skipped": _nonzero(result.skipped), "pulled": _nonzero(result.pulled),
        "bytes_sent": result.bytes_sent, "bytes_received": result.bytes_received, "failed": len(result.failed),
        "failures": [clip(f"{f.step} {f.rid}: {f.reason}") for f in result.failed[:KEPT]],
        "warnings": [clip(w) for w in result.warnings[:KEPT]],
    }


def reset_failed(ml: Any) -> int:
    """Put failed items back in line (``--retry-failed``); returns how many."""
    from sqlalchemy import update

    from satchel.journal import write_transaction
    from satchel.journal.models import AssetLink, AssetRow, ExecutionRow, VocabularyTerm, WorkflowRow

    n = 0
    with write_transaction(ml.store.engine) as conn:
        for model in (VocabularyTerm, WorkflowRow, ExecutionRow, AssetRow, AssetLink):
            n += conn.execute(
                update(model).where(model.sync_state == "failed").values(sync_state="local", sync_error=None)
            ).rowcount
    return n


__all__ = ["PUSH_STEPS", "Failure", "ProgressEvent", "PushPlan", "SyncResult", "catalog_url", "plan", "pull", "push",
           "reset_failed", "summarize"]

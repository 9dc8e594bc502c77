"""The sync engine: plan, then apply. Push sends local work to the catalog, exactly once.

``plan(ml)`` reads the journal alone and says what a push would send (it is
what ``--dry-run`` prints); ``push(ml, remote)`` applies it, step by step,
under the store's sync lock, and returns a :class:`SyncResult`.
"""

from __future__ import annotations

from typing import Any

from satchel import errors
from satchel.journal import read_transaction
from satchel.remote import Remote
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
    with sync_lock(ml.store.root):
        if retry_failed:
            reset_failed(ml)
        return Pusher(ml, remote, **options).run()


def pull(ml: Any, remote: Remote, **options: Any) -> SyncResult:
    """Mirror the catalog's metadata (and, if asked, bytes) into the store."""
    from satchel.sync.puller import Puller

    _writable(ml, "pull")
    run_options = {k: options.pop(k) for k in ("metadata", "assets", "tables", "executions") if k in options}
    with sync_lock(ml.store.root):
        return Puller(ml, remote, **options).run(**run_options)


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


__all__ = ["PUSH_STEPS", "Failure", "ProgressEvent", "PushPlan", "SyncResult", "plan", "pull", "push", "reset_failed"]

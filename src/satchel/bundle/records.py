"""The journal records a bundle carries: which rows go, and their line format (docs/internals.md).

A bundle's ``data/satchel/records.jsonl`` holds one JSON object per line, each
with ``"t"`` naming its type, in the order an importer applies them: asset
tables, terms, workflows, executions, assets, links, leases. Each record is the
*state* of one row as the exporting store knows it, with ``state`` one of
``local`` (not yet on the server), ``synced`` (the server confirmed it, with
``remote_rid``) or ``remote`` (mirrored from the server). Importing merges
state (``satchel.bundle.merge``), so applying a record twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, or_, select

from satchel.journal import queries as q
from satchel.journal.models import (
    AssetLink,
    AssetRow,
    AssetTableDef,
    AssetTag,
    BundleRow,
    Change,
    ExecutionRow,
    StatusEvent,
    VocabularyTerm,
    WorkflowRow,
)

FORMAT = "satchel-bundle"
VERSION = 1
RECORD_TYPES = ("table", "term", "workflow", "execution", "asset", "link", "lease")
PENDING = ("local", "failed")


def _state(sync_state: str) -> str:
    return "local" if sync_state in PENDING else sync_state


# --- which rows ---------------------------------------------------------------------------------------------------


def pending_selection(conn: Connection, since: str | None = None) -> tuple[set[int], set[int], set[int]]:
    """(asset ids, execution ids, workflow ids) with work the server has not confirmed, made at or after ``since``."""
    assets = set(conn.execute(select(AssetRow.id).where(AssetRow.sync_state.in_(PENDING))).scalars())
    assets |= set(conn.execute(select(AssetTag.asset_id).where(AssetTag.sync_state == "local")).scalars())
    assets |= set(conn.execute(select(Change.entity_id).where(
        Change.state != "done", Change.kind.in_(("tag_remove", "description")))).scalars())
    executions = set(conn.execute(select(ExecutionRow.id).where(or_(
        ExecutionRow.sync_state.in_(PENDING),
        (ExecutionRow.origin == "local") & ((ExecutionRow.remote_status.is_(None)) |
                                            (ExecutionRow.remote_status != ExecutionRow.status)),
    ))).scalars())
    for asset_id, exe_id in conn.execute(select(AssetLink.asset_id, AssetLink.execution_id).where(
            AssetLink.sync_state.in_(PENDING))):
        assets.add(asset_id)
        executions.add(exe_id)
    if since is not None:
        assets = {a for a, at in conn.execute(select(AssetRow.id, AssetRow.created_at).where(
            AssetRow.id.in_(assets))) if at >= since} if assets else set()
        executions = {e for e, at in conn.execute(select(ExecutionRow.id, ExecutionRow.created_at).where(
            ExecutionRow.id.in_(executions))) if at >= since} if executions else set()
    workflows = {w for w, at in conn.execute(select(WorkflowRow.id, WorkflowRow.created_at).where(
        WorkflowRow.sync_state.in_(PENDING))) if since is None or at >= since}
    return assets, executions, workflows


def execution_selection(conn: Connection, execution_ids: Sequence[int]) -> tuple[set[int], set[int], set[int]]:
    """The chosen executions and every asset linked to them (inputs and outputs)."""
    assets: set[int] = set()
    for part in q.chunks(list(execution_ids)):
        assets |= set(conn.execute(select(AssetLink.asset_id).where(AssetLink.execution_id.in_(part))).scalars())
    return assets, set(execution_ids), set()


def confirmation_selection(conn: Connection) -> tuple[set[int], set[int], set[int]]:
    """Rows that came in bundles and that this store has pushed since: (asset ids, execution ids, workflow ids).
    Their state goes back to the store that sent them; rows not pushed yet stay out (nobody else's work)."""
    out: dict[str, set[int]] = {"asset": set(), "execution": set(), "workflow": set()}
    models = {"asset": AssetRow, "execution": ExecutionRow, "workflow": WorkflowRow}
    for kind, model in models.items():
        rids = list(conn.execute(select(BundleRow.rid).where(BundleRow.kind == kind)).scalars())
        for part in q.chunks(rids):
            out[kind] |= set(conn.execute(select(model.id).where(
                model.rid.in_(part), model.sync_state == "synced")).scalars())
    return out["asset"], out["execution"], out["workflow"]


# --- records --------------------------------------------------------------------------------------------------------


def records(conn: Connection, asset_ids: Iterable[int], execution_ids: Iterable[int],
            workflow_ids: Iterable[int] = (), *, batch: int = 2000) -> Iterator[dict[str, Any]]:
    """The records of the chosen rows and of what they need (workflows, terms, the other side of links).

    Only ids are held for the whole selection; asset rows, tags and links are read a batch at a time."""
    asset_ids = set(asset_ids)
    execution_ids = set(execution_ids)
    for part in q.chunks(sorted(asset_ids)):  # the executions on the other side of the chosen assets' links
        execution_ids |= set(conn.execute(select(AssetLink.execution_id).where(AssetLink.asset_id.in_(part))).scalars())
    for part in q.chunks(sorted(execution_ids)):  # and the assets of every execution that goes
        asset_ids |= set(conn.execute(select(AssetLink.asset_id).where(AssetLink.execution_id.in_(part))).scalars())
    executions = _rows(conn, ExecutionRow, execution_ids)
    workflows = _rows(conn, WorkflowRow, set(workflow_ids) | {e.workflow_id for e in executions if e.workflow_id})
    tables: set[str] = set()
    used: set[str] = {w.workflow_type for w in workflows if w.workflow_type}
    for part in q.chunks(sorted(asset_ids)):
        tables |= set(conn.execute(select(AssetRow.asset_table).where(AssetRow.id.in_(part)).distinct()).scalars())
        used |= set(conn.execute(select(AssetTag.term).where(AssetTag.asset_id.in_(part)).distinct()).scalars())
    yield from _table_records(conn, tables, model=False)
    yield from _term_records(conn, used)
    yield from _workflow_and_execution_records(conn, workflows, executions)
    yield from _asset_batches(conn, sorted(asset_ids), {e.id: e.rid for e in executions}, batch)


def mirror_records(conn: Connection, asset_ids: Iterable[int], execution_ids: Iterable[int],
                   workflow_ids: Iterable[int] = (), *, everything: bool = True,
                   batch: int = 2000) -> Iterator[dict[str, Any]]:
    """What an offline store needs: the model, every term, and the rows the catalog holds as this store
    mirrors them: all of them (``everything``), or the chosen ones. Rows the server does not have stay out."""
    on_server = ("synced", "remote")
    asset_ids, execution_ids, workflow_ids = set(asset_ids), set(execution_ids), set(workflow_ids)
    if everything:
        asset_ids |= set(conn.execute(select(AssetRow.id).where(AssetRow.sync_state.in_(on_server))).scalars())
        execution_ids |= set(conn.execute(select(ExecutionRow.id).where(ExecutionRow.sync_state.in_(on_server))).scalars())
        workflow_ids |= set(conn.execute(select(WorkflowRow.id).where(WorkflowRow.sync_state.in_(on_server))).scalars())
    else:  # the chosen assets' executions, so their links can go
        for part in q.chunks(sorted(asset_ids)):
            execution_ids |= set(conn.execute(select(AssetLink.execution_id).where(AssetLink.asset_id.in_(part))).scalars())
    executions = [e for e in _rows(conn, ExecutionRow, execution_ids) if e.sync_state in on_server]
    workflows = [w for w in _rows(conn, WorkflowRow, workflow_ids | {e.workflow_id for e in executions if e.workflow_id})
                 if w.sync_state in on_server]
    yield from _table_records(conn, set(), model=True)
    yield from _term_records(conn, None)
    yield from _workflow_and_execution_records(conn, workflows, executions)
    ids = [a for part in q.chunks(sorted(asset_ids)) for a in conn.execute(
        select(AssetRow.id).where(AssetRow.id.in_(part), AssetRow.sync_state.in_(on_server))).scalars()]
    yield from _asset_batches(conn, ids, {e.id: e.rid for e in executions}, batch)


def _asset_batches(conn: Connection, asset_ids: list[int], rid_of_execution: dict[int, str],
                   batch: int) -> Iterator[dict[str, Any]]:
    """Asset records a batch at a time, each batch followed by its assets' links to executions that go."""
    for part in q.chunks(asset_ids, batch):
        assets = _rows(conn, AssetRow, set(part))
        yield from _asset_records(conn, assets, _tags(conn, [a.id for a in assets]))
        links = conn.execute(select(AssetLink).where(AssetLink.asset_id.in_(list(part)))).all()
        yield from _link_records([link for link in links if link.execution_id in rid_of_execution],
                                 {a.id: a.rid for a in assets}, rid_of_execution)


def _table_records(conn: Connection, used: set[str], *, model: bool) -> Iterator[dict[str, Any]]:
    for row in conn.execute(select(AssetTableDef)).all():
        if (model and row.origin == "model") or (row.name in used and row.origin == "local"):
            yield {"t": "table", "name": row.name, "schema": row.schema_name, "origin": row.origin,
                   "columns": list(row.metadata_columns or [])}


def _term_records(conn: Connection, used: set[str] | None) -> Iterator[dict[str, Any]]:
    """Terms made here and not confirmed, and those ``used``; with ``used`` None, every term the catalog has."""
    for term in conn.execute(select(VocabularyTerm).order_by(VocabularyTerm.id)).all():
        if (term.sync_state not in PENDING) if used is None else (term.sync_state in PENDING or term.name in used):
            yield {"t": "term", "vocabulary": term.vocabulary, "name": term.name, "description": term.description,
                   "synonyms": list(term.synonyms or []), "rid": term.rid, "remote_rid": term.remote_rid,
                   "state": _state(term.sync_state)}


def _workflow_and_execution_records(conn: Connection, workflows: list[Any],
                                    executions: list[Any]) -> Iterator[dict[str, Any]]:
    rid_of_workflow = {w.id: w.rid for w in workflows}
    for w in workflows:
        yield {"t": "workflow", "rid": w.rid, "remote_rid": w.remote_rid, "state": _state(w.sync_state),
               "name": w.name, "url": w.url, "checksum": w.checksum, "version": w.version,
               "description": w.description, "workflow_type": w.workflow_type, "created_at": w.created_at}
    events = _events(conn, [e.id for e in executions])
    for e in executions:
        yield {"t": "execution", "rid": e.rid, "remote_rid": e.remote_rid, "state": _state(e.sync_state),
               "workflow": rid_of_workflow.get(e.workflow_id), "description": e.description, "status": e.status,
               "status_detail": e.status_detail, "remote_status": e.remote_status,
               "configuration": e.configuration or {}, "created_at": e.created_at, "start_time": e.start_time,
               "stop_time": e.stop_time, "execution_duration": e.execution_duration, "commit_time": e.commit_time,
               "origin": e.origin, "events": events.get(e.id, [])}


def _asset_records(conn: Connection, assets: list[Any], tags: dict[int, dict[str, str]]) -> Iterator[dict[str, Any]]:
    removals, edits = _pending_asset_changes(conn, [a.id for a in assets])
    for a in assets:
        yield {"t": "asset", "rid": a.rid, "remote_rid": a.remote_rid, "state": _state(a.sync_state),
               "table": a.asset_table, "filename": a.filename, "length": a.length, "md5": a.md5, "blake3": a.blake3,
               "url": a.url, "description": a.description, "remote_description": a.remote_description,
               "metadata": dict(a.asset_metadata or {}), "created_at": a.created_at, "object_url": a.object_url,
               "origin": a.origin, "tags": tags.get(a.id, {}), "removed_tags": removals.get(a.id, []),
               "description_edits": edits.get(a.id, [])}


def _link_records(links: list[Any], rid_of_asset: dict[int, str],
                  rid_of_execution: dict[int, str]) -> Iterator[dict[str, Any]]:
    for link in links:
        yield {"t": "link", "asset": rid_of_asset[link.asset_id], "execution": rid_of_execution[link.execution_id],
               "role": link.role, "state": _state(link.sync_state), "remote_rid": link.remote_rid}


def _rows(conn: Connection, model: Any, ids: set[int]) -> list[Any]:
    out: list[Any] = []
    for part in q.chunks(sorted(ids)):
        out += conn.execute(select(model).where(model.id.in_(part)).order_by(model.id)).all()
    return out


def _tags(conn: Connection, asset_ids: list[int]) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {}
    for part in q.chunks(asset_ids):
        for asset_id, term, state in conn.execute(
                select(AssetTag.asset_id, AssetTag.term, AssetTag.sync_state).where(AssetTag.asset_id.in_(part))):
            out.setdefault(asset_id, {})[term] = _state(state)
    return out


def _events(conn: Connection, execution_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for part in q.chunks(execution_ids):
        for ev in conn.execute(select(StatusEvent).where(StatusEvent.execution_id.in_(part)).order_by(StatusEvent.id)):
            out.setdefault(ev.execution_id, []).append(
                {"from": ev.from_status, "to": ev.to_status, "at": ev.at, "detail": ev.detail})
    return out


def _pending_asset_changes(conn: Connection, asset_ids: list[int]) -> tuple[dict[int, list[str]], dict[int, list[dict]]]:
    removals: dict[int, list[str]] = {}
    edits: dict[int, list[dict]] = {}
    for part in q.chunks(asset_ids):
        for asset_id, kind, detail in conn.execute(
                select(Change.entity_id, Change.kind, Change.detail).where(
                    Change.state != "done", Change.kind.in_(("tag_remove", "description")),
                    Change.entity_id.in_(part)).order_by(Change.seq)):
            if kind == "tag_remove":
                removals.setdefault(asset_id, []).append((detail or {}).get("term"))
            else:
                edits.setdefault(asset_id, []).append({"old": (detail or {}).get("old"), "new": (detail or {}).get("new")})
    return removals, edits

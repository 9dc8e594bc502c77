"""Pull: mirror the catalog's metadata into the journal, and fetch bytes for offline use.

Metadata is read incrementally: each table is read from the ``RMT`` watermark
of the last pull minus an overlap window (a write committed late can carry an
older ``RMT``; re-reading a few seconds costs little and upserts are
idempotent). Afterwards lookups, listings, searches and provenance answer
offline for remote assets too, and table names and tags are checked offline
against the catalog's model and vocabulary.

Set semantics for tags: remote additions are merged in; our own pending
removals win over older remote rows (push deletes them). A description changed
both here and on the server since the last sync becomes a conflict, resolved
with ``satchel resolve``: nothing is silently overwritten.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from satchel import errors
from satchel.cache import Digest
from satchel.cache.durable import temp_name
from satchel.journal import queries as q
from satchel.journal import read_transaction, write_transaction
from satchel.journal import resolve
from satchel.journal.models import (
    AssetLink,
    AssetRow,
    AssetTag,
    Change,
    ConflictRow,
    ExecutionRow,
    RidAlias,
    VocabularyTerm,
    WorkflowRow,
)
from satchel.remote import Remote
from satchel.remote.model import Table
from satchel.store import now
from satchel.sync.mapping import AssetTarget, CatalogMap, record_model
from satchel.sync.result import ProgressEvent, SyncResult
from satchel.sync.sweep import DELETED, forget_asset, sweep_deletions

log = logging.getLogger("satchel.sync")

#: vocabularies mirrored by every pull
VOCABULARIES = ("Asset_Type", "Asset_Role", "Workflow_Type", "Execution_Status")


class Puller:
    def __init__(self, ml: Any, remote: Remote, *, progress: Callable[[ProgressEvent], None] | None = None,
                 overlap_seconds: float = 30.0, transfers: int = 4, stop: threading.Event | None = None):
        self.ml = ml
        self.store = ml.store
        self.engine = ml.store.engine
        self.remote = remote
        self.catalog = remote.catalog
        self.progress = progress or (lambda event: None)
        self.overlap = timedelta(seconds=overlap_seconds)
        self.transfers = transfers
        #: set to stop at the next safe point: between tables, or before the next object is fetched
        self.stop = stop or threading.Event()
        self.result = SyncResult()
        self.map: CatalogMap | None = None

    # --- entry point ---------------------------------------------------------------------

    def run(self, *, metadata: bool = True, assets: Sequence[str] = (), tables: Sequence[str] = (),
            executions: Sequence[str] = ()) -> SyncResult:
        self._check_login()
        # the catalog's snaptime moves with every write to it: the same as after the last full pull means
        # nothing changed since, and no table needs reading (docs/sync.md)
        snaptime = (self.catalog.info() or {}).get("snaptime") if metadata else None
        with read_transaction(self.engine) as conn:
            unchanged = snaptime is not None and q.store_info(conn).get("pull:snaptime") == snaptime
        self.map = CatalogMap(self.catalog.model())
        record_model(self.engine, self.map)
        if metadata and unchanged:
            self.result.skipped["unchanged catalog"] += 1
        elif metadata:
            for vocab in VOCABULARIES:
                table = self.map.vocabulary(vocab)
                if table is not None:
                    self._pull_terms(vocab, table)
            self._pull_workflows()
            self._pull_executions()
            for target in self.map.asset_targets():
                self._check_stop()
                self._pull_assets(target)
                self._pull_tags(target)
                self._pull_links(target)
                sweep_deletions(self.engine, self.catalog, target, self.result)
            self.ml.workspace.forget_model()
            if snaptime is not None:  # everything up to the snaptime read before the first table is here now
                with write_transaction(self.engine) as conn:
                    q.set_store_info(conn, "pull:snaptime", snaptime)
        wanted = self._resolve_prefetch(assets, tables, executions)
        if wanted:
            self._check_stop()
            self._fetch_bytes(wanted)
            self._check_stop()
        return self.result

    def _check_login(self) -> None:
        """A credential the server does not take makes ERMrest answer as to anyone: say so, and pull on."""
        session = self.remote.session
        if session.credential is not None and session.whoami() is None:
            self.result.warnings.append(
                f"the server at {session.url} did not take the credential ({session.credential}): this pull reads "
                "only what anyone may read. Log in again, or fix SATCHEL_TOKEN / SATCHEL_COOKIE (docs/remote.md)")

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise errors.Interrupted("pull stopped when asked: every table read so far is recorded (its watermark "
                                     "moved); run `satchel pull` to go on", result=self.result)

    # --- incremental reads ----------------------------------------------------------------------

    def _pages(self, table: Table, size: int = 1000) -> Iterable[list[dict]]:
        """Pages of rows changed since the last pull of ``table`` (minus the overlap window).

        The watermark advances only when the caller comes back for more after
        the last page, i.e. after it has written every page: a crash re-reads.
        """
        key = f"pull:{table.schema}:{table.name}"
        with read_transaction(self.engine) as conn:
            mark = q.store_info(conn).get(key)
        since = (datetime.fromisoformat(mark) - self.overlap).isoformat() if mark else None
        newest = mark
        page: list[dict] = []
        for row in self.catalog.changed_since(table.schema, table.name, since):
            rmt = row.get("RMT")
            if rmt and (newest is None or datetime.fromisoformat(rmt) > datetime.fromisoformat(newest)):
                newest = rmt
            page.append(row)
            if len(page) >= size:
                yield page
                page = []
        if page:
            yield page
        if newest and newest != mark:
            with write_transaction(self.engine) as conn:
                q.set_store_info(conn, key, newest)

    # --- vocabularies, workflows, executions --------------------------------------------------------

    def _pull_terms(self, vocab: str, table: Table) -> None:
        for page in self._pages(table):
            with write_transaction(self.engine) as conn:
                local = q.terms(conn, vocab)
                for row in page:
                    name = row["Name"]
                    if name in local:
                        conn.execute(
                            update(VocabularyTerm).where(VocabularyTerm.id == local[name].id).values(
                                remote_rid=row["RID"], sync_state="synced" if local[name].origin == "local" else "remote",
                                description=row.get("Description") or local[name].description,
                            )
                        )
                    else:
                        conn.execute(insert(VocabularyTerm).values(
                            vocabulary=vocab, name=name, description=row.get("Description") or "",
                            synonyms=row.get("Synonyms") or [], remote_rid=row["RID"], origin="remote",
                            sync_state="remote",
                        ))
            self.result.pulled["terms"] += len(page)

    def _pull_workflows(self) -> None:
        assert self.map is not None
        table = self.map.ml_table("Workflow")
        for page in self._pages(table):
            with write_transaction(self.engine) as conn:
                known = dict(conn.execute(
                    select(WorkflowRow.remote_rid, WorkflowRow.id).where(WorkflowRow.remote_rid.in_([r["RID"] for r in page]))
                ).all())
                for row in page:
                    values = {"name": row.get("Name") or "", "url": row.get("URL"), "checksum": row.get("Checksum"),
                              "version": row.get("Version"), "description": row.get("Description") or ""}
                    if row["RID"] not in known:
                        conn.execute(insert(WorkflowRow).values(
                            rid=row["RID"], remote_rid=row["RID"], origin="remote", sync_state="remote",
                            created_at=row.get("RCT") or now(), **values,
                        ))
            self.result.pulled["workflows"] += len(page)

    def _pull_executions(self) -> None:
        assert self.map is not None
        table = self.map.ml_table("Execution")
        for page in self._pages(table):
            with write_transaction(self.engine) as conn:
                known = dict(conn.execute(
                    select(ExecutionRow.remote_rid, ExecutionRow.origin).where(
                        ExecutionRow.remote_rid.in_([r["RID"] for r in page]))
                ).all())
                workflows = dict(conn.execute(
                    select(WorkflowRow.remote_rid, WorkflowRow.id).where(
                        WorkflowRow.remote_rid.in_([r.get("Workflow") for r in page if r.get("Workflow")]))
                ).all())
                for row in page:
                    status = row.get("Status") or "Created"  # v1.24 wrote free text; kept as written
                    if row["RID"] in known:
                        if known[row["RID"]] == "remote":
                            conn.execute(update(ExecutionRow).where(ExecutionRow.remote_rid == row["RID"]).values(
                                status=status, status_detail=row.get("Status_Detail"), remote_status=status,
                                description=row.get("Description") or "",
                            ))
                        continue
                    conn.execute(insert(ExecutionRow).values(
                        rid=row["RID"], remote_rid=row["RID"], workflow_id=workflows.get(row.get("Workflow")),
                        description=row.get("Description") or "", status=status,
                        status_detail=row.get("Status_Detail"), configuration={}, created_at=row.get("RCT") or now(),
                        origin="remote", sync_state="remote", remote_status=status,
                    ))
            self.result.pulled["executions"] += len(page)

    # --- assets, tags, links -----------------------------------------------------------------------

    def _pull_assets(self, target: AssetTarget) -> None:
        meta_cols = [c.name for c in target.table.user_columns
                     if c.name not in ("URL", "Filename", "Length", "MD5", "Description")]
        for page in self._pages(target.table):
            at = now()
            with write_transaction(self.engine) as conn:
                by_rid = {r.remote_rid: r for r in conn.execute(
                    select(AssetRow).where(AssetRow.remote_rid.in_([p["RID"] for p in page]))).all()}
                # not yet in the catalog under our RID (none yet, or one reserved by a push that never
                # inserted): the catalog's row for the same URL is ours to adopt
                by_url = {r.url: r for r in conn.execute(
                    select(AssetRow).where(AssetRow.asset_table == target.name,
                                           AssetRow.remote_rid.is_(None) | (AssetRow.sync_state == "local"),
                                           AssetRow.url.in_([p["URL"] for p in page]))).all()}
                pending_desc = {row.entity_id for row in conn.execute(
                    select(Change.entity_id).where(Change.state == "pending", Change.kind == "description"))}
                for row in page:
                    metadata = {c: row.get(c) for c in meta_cols if row.get(c) is not None}
                    remote_desc = row.get("Description")
                    local = by_rid.get(row["RID"])
                    if local is None and row["URL"] in by_url:
                        # the same bytes under the same name, pushed by another machine first: adopt its row
                        local = by_url[row["URL"]]
                        conn.execute(update(AssetRow).where(AssetRow.id == local.id).values(
                            remote_rid=row["RID"], sync_state="synced", object_url=row["URL"],
                            remote_description=remote_desc,
                        ))
                        self.result.pulled["adopted"] += 1
                        continue
                    if local is None:
                        conn.execute(insert(AssetRow).values(
                            rid=row["RID"], remote_rid=row["RID"], asset_table=target.name,
                            filename=row.get("Filename") or "", length=int(row["Length"]), md5=row["MD5"],
                            url=row["URL"], description=remote_desc, asset_metadata=metadata,
                            created_at=row.get("RCT") or at, origin="remote", sync_state="remote",
                            remote_description=remote_desc, remote_rmt=row.get("RMT"), object_url=row["URL"],
                        ))
                        continue
                    self._merge_description(conn, local, remote_desc, local.id in pending_desc, at)
                    conn.execute(update(AssetRow).where(AssetRow.id == local.id).values(
                        remote_rmt=row.get("RMT"),
                        asset_metadata={**(local.asset_metadata or {}), **metadata} if local.origin == "remote"
                        else local.asset_metadata,
                    ))
            self.result.pulled["assets"] += len(page)
            self.progress(ProgressEvent("pull assets", int(self.result.pulled["assets"]), 0))

    def _merge_description(self, conn: Any, local: Any, remote_desc: str | None, pending: bool, at: str) -> None:
        if remote_desc == local.remote_description:
            return  # the remote did not change it since we last knew
        if pending and remote_desc != local.description:
            exists = conn.execute(select(ConflictRow.id).where(
                ConflictRow.asset_id == local.id, ConflictRow.resolved_at.is_(None))).first()
            if exists is None:
                conn.execute(insert(ConflictRow).values(
                    asset_id=local.id, field="Description", local_value=local.description,
                    remote_value=remote_desc, detected_at=at,
                ))
                self.result.pulled["conflicts"] += 1
            return
        conn.execute(update(AssetRow).where(AssetRow.id == local.id).values(
            description=remote_desc, remote_description=remote_desc))

    def _pull_tags(self, target: AssetTarget) -> None:
        a = target.assoc
        if a.asset_type is None:
            return
        for page in self._pages(a.asset_type):
            with write_transaction(self.engine) as conn:
                ids = dict(conn.execute(select(AssetRow.remote_rid, AssetRow.id).where(
                    AssetRow.remote_rid.in_([r[a.asset_type_column] for r in page]))).all())
                removed = {(c.entity_id, (c.detail or {}).get("term")) for c in conn.execute(
                    select(Change.entity_id, Change.detail).where(Change.state == "pending", Change.kind == "tag_remove"))}
                present = {(t.asset_id, t.term): t.sync_state for t in conn.execute(
                    select(AssetTag.asset_id, AssetTag.term, AssetTag.sync_state).where(
                        AssetTag.asset_id.in_(list(ids.values()))))}
                for row in page:
                    asset_id = ids.get(row[a.asset_type_column])
                    term = row[a.type_column]
                    if asset_id is None or (asset_id, term) in removed:
                        continue  # unknown asset, or removed here since (push deletes it)
                    if (asset_id, term) not in present:
                        conn.execute(insert(AssetTag).values(asset_id=asset_id, term=term, sync_state="synced"))
                    elif present[(asset_id, term)] == "local":
                        conn.execute(update(AssetTag).where(AssetTag.asset_id == asset_id, AssetTag.term == term)
                                     .values(sync_state="synced"))
            self.result.pulled["tags"] += len(page)

    def _pull_links(self, target: AssetTarget) -> None:
        a = target.assoc
        if a.execution is None:
            return
        for page in self._pages(a.execution):
            with write_transaction(self.engine) as conn:
                assets = dict(conn.execute(select(AssetRow.remote_rid, AssetRow.id).where(
                    AssetRow.remote_rid.in_([r[a.execution_asset_column] for r in page]))).all())
                exes = dict(conn.execute(select(ExecutionRow.remote_rid, ExecutionRow.id).where(
                    ExecutionRow.remote_rid.in_([r[a.execution_column] for r in page]))).all())
                present = {(link.asset_id, link.execution_id): link.sync_state for link in conn.execute(
                    select(AssetLink.asset_id, AssetLink.execution_id, AssetLink.sync_state).where(
                        AssetLink.asset_id.in_(list(assets.values()))))}
                for row in page:
                    key = (assets.get(row[a.execution_asset_column]), exes.get(row[a.execution_column]))
                    if None in key:
                        continue
                    role = row.get(a.role_column) if a.role_column else None
                    if key not in present:
                        conn.execute(insert(AssetLink).values(asset_id=key[0], execution_id=key[1],
                                                              role=role or "Output", remote_rid=row["RID"],
                                                              sync_state="synced"))
                    elif present[key] == "local":
                        conn.execute(update(AssetLink).where(AssetLink.asset_id == key[0],
                                                             AssetLink.execution_id == key[1])
                                     .values(sync_state="synced", remote_rid=row["RID"]))
            self.result.pulled["links"] += len(page)

    # --- bytes ---------------------------------------------------------------------------------------

    def _resolve_prefetch(self, assets: Sequence[str], tables: Sequence[str], executions: Sequence[str]) -> list[Any]:
        ids: set[int] = set()
        with read_transaction(self.engine) as conn:
            for rid in assets:
                try:
                    ids.add(resolve.asset_id(conn, rid))
                except errors.UnknownRIDError as exc:
                    if "no asset has RID" not in str(exc):
                        raise
                    raise errors.UnknownRIDError(
                        f"catalog {self.catalog.catalog_id} at {self.remote.session.url} had no asset with RID {rid} "
                        "when this store last read its asset tables; check the RID (`satchel ls` lists them)") from None
            for table in tables:
                found = conn.execute(select(AssetRow.id).where(AssetRow.asset_table == table)).scalars().all()
                if not found and table not in q.asset_tables(conn):
                    raise errors.UnknownAssetTableError(f"asset table {table!r} is not in the catalog or the store")
                ids.update(found)
            for rid in executions:
                found_exe = q.resolve_rid(conn, rid)
                if found_exe is None or found_exe[0] != "execution":
                    raise errors.UnknownRIDError(f"no execution has RID {rid}; pull the metadata first (satchel pull)")
                ids.update(conn.execute(select(AssetLink.asset_id).where(AssetLink.execution_id == found_exe[1])).scalars())
            if not ids:
                return []
            rows = []
            for part in q.chunks(sorted(ids)):
                rows += conn.execute(select(AssetRow).where(AssetRow.id.in_(part))).all()
        return rows

    def _fetch_bytes(self, rows: list[Any]) -> None:
        cache = self.store.cache
        todo = []
        with write_transaction(self.engine) as conn:
            for r in rows:
                if r.blake3 and cache.has(r.blake3):
                    self.result.skipped["bytes"] += 1
                    continue
                known = [d for d in q.digests_by_md5(conn, r.md5, r.length) if cache.has(d)]
                if known:  # same bytes already here under another asset: nothing to transfer
                    conn.execute(update(AssetRow).where(AssetRow.id == r.id).values(blake3=known[0].blake3))
                    self.result.skipped["bytes"] += 1
                    continue
                todo.append(r)
        total = sum(r.length for r in todo)
        done_bytes = 0
        lock = threading.Lock()

        def on_bytes(n: int) -> None:  # from the fetching threads, as blocks arrive
            nonlocal done_bytes
            with lock:
                done_bytes += n
                self.progress(ProgressEvent("bytes", min(done_bytes, total), total, "bytes"))

        def fetch(r: Any) -> tuple[Any, Digest | None, str | None]:
            if self.stop.is_set():
                return r, None, None  # not started: the next pull fetches it
            tmp = Path(temp_name(cache.tmp_dir, "download"))
            try:
                self.remote.hatrac.download(r.url, tmp, md5=r.md5, on_bytes=on_bytes)
                return r, cache.adopt(tmp, expected_md5=r.md5), None
            except errors.AuthenticationError:
                raise
            except errors.SatchelError as exc:
                tmp.unlink(missing_ok=True)
                return r, None, str(exc)

        with ThreadPoolExecutor(max_workers=max(1, self.transfers), thread_name_prefix="satchel-fetch") as pool:
            for fut in as_completed([pool.submit(fetch, r) for r in todo]):
                r, digest, error = fut.result()
                if digest is None:
                    if not self.stop.is_set():
                        self.result.fail("bytes", r.remote_rid or r.rid, error or "download failed")
                    continue
                with write_transaction(self.engine) as conn:
                    conn.execute(update(AssetRow).where(AssetRow.id == r.id).values(blake3=digest.blake3))
                self.result.done["bytes"] += 1
                self.result.bytes_received += r.length


def resolve_conflict(ml: Any, asset_rid: str, keep: str) -> int:
    """Settle the open conflicts of an asset: ``keep='local'`` (push ours) or ``'remote'`` (take theirs).

    For an asset the catalog deleted (a ``Deleted`` conflict), ``remote``
    accepts the deletion (the journal forgets the asset; its cached bytes stay)
    and ``local`` sends it again as a new row at the next push."""
    if keep not in ("local", "remote"):
        raise ValueError("keep must be 'local' or 'remote'")
    at = now()
    with write_transaction(ml.store.engine) as conn:
        asset_id = resolve.asset_id(conn, asset_rid)
        open_ = conn.execute(select(ConflictRow).where(
            ConflictRow.asset_id == asset_id, ConflictRow.resolved_at.is_(None))).all()
        if not open_:
            raise errors.NotFoundError(f"asset {asset_rid} has no open conflict; `satchel status` lists them")
        if any(c.field == DELETED for c in open_):
            _resolve_deleted(ml, conn, asset_rid, asset_id, keep)
            return len(open_)
        for c in open_:
            if keep == "local":  # our value goes out at the next push, knowingly replacing theirs
                conn.execute(update(AssetRow).where(AssetRow.id == asset_id).values(remote_description=c.remote_value))
            else:
                conn.execute(update(AssetRow).where(AssetRow.id == asset_id).values(
                    description=c.remote_value, remote_description=c.remote_value))
                conn.execute(update(Change).where(Change.state == "pending", Change.kind == "description",
                                                  Change.entity_id == asset_id).values(state="done"))
            conn.execute(update(ConflictRow).where(ConflictRow.id == c.id).values(resolved_at=at, resolution=keep))
    return len(open_)


def _resolve_deleted(ml: Any, conn: Any, asset_rid: str, asset_id: int, keep: str) -> None:
    if keep == "remote":
        forget_asset(conn, asset_id)
        return
    row = conn.execute(select(AssetRow.blake3, AssetRow.rid, AssetRow.remote_rid).where(AssetRow.id == asset_id)).one()
    if row.blake3 is None or not ml.store.cache.has(row.blake3):
        raise errors.ObjectMissingError(
            f"asset {asset_rid} was deleted from the catalog and its bytes are not in this store's cache, "
            "so it cannot be sent again; accept the deletion with `satchel resolve "
            f"{asset_rid} --keep remote`")
    # a new catalog row (new RID, bytes found again by MD5), with this asset's tags and links;
    # the RID the catalog had keeps naming the asset (every RID a user ever saw keeps resolving)
    if row.remote_rid and row.remote_rid != row.rid:
        conn.execute(sqlite_insert(RidAlias).values(alias=row.remote_rid, rid=row.rid, kind="asset",
                                                    reason="resent", created_at=now()).on_conflict_do_nothing())
    conn.execute(update(AssetRow).where(AssetRow.id == asset_id).values(
        remote_rid=None, sync_state="local", sync_error=None, object_url=None, remote_description=None,
        remote_rmt=None))
    conn.execute(update(AssetTag).where(AssetTag.asset_id == asset_id).values(sync_state="local"))
    conn.execute(update(AssetLink).where(AssetLink.asset_id == asset_id).values(sync_state="local", remote_rid=None))
    conn.execute(update(Change).where(Change.state == "pending", Change.kind == "description",
                                      Change.entity_id == asset_id).values(state="done"))
    conn.execute(update(ConflictRow).where(ConflictRow.asset_id == asset_id, ConflictRow.resolved_at.is_(None))
                 .values(resolved_at=now(), resolution="local"))

"""DerivaML: the offline-first facade users hold (deriva-ml's API, with no network needed)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, select, update

from satchel.asset import Asset, AssetExecution, AssetFilePath
from satchel.cache import DEFAULT_LINK_MODES, Digest
from satchel.cache.durable import sync_filesystem
from satchel.config import ExecutionConfiguration, Workflow
from satchel.errors import (
    DestinationError,
    ExecutionError,
    NotFoundError,
    ObjectMissingError,
    SatchelError,
    UnknownAssetTableError,
    UnknownRIDError,
    UnknownTermError,
)
from satchel.execution import Execution
from satchel.journal import queries as q
from satchel.journal import read_transaction, write_transaction
from satchel.journal.models import AssetRow, ExecutionRow, StatusEvent, WorkflowRow
from satchel.mlschema import DIRECTIONAL_TAGS, INPUT_FILE, ML_VOCABULARIES, not_a_vocabulary, not_an_asset_table
from satchel.status import Status
from satchel.store import Store, allocate_rids, default_store_dir, now

log = logging.getLogger("satchel")


@dataclass(frozen=True)
class VocabularyTerm:
    vocabulary: str
    name: str
    description: str
    synonyms: list[str] = field(default_factory=list)
    rid: str | None = None
    synced: bool = False


@dataclass(frozen=True)
class UpdateAssetResult:
    """What ``update_asset`` changed, in one transaction."""

    asset_rid: str
    added: list[str]
    removed: list[str]
    description_changed: bool


@dataclass
class Placed:
    """One asset put (or found already) at its destination by a download."""

    asset_id: int
    rid: str
    row: Any  # the download_rows row: table, filename, md5, description, metadata...
    digest: Digest
    dest: str
    skipped: bool = False


@dataclass(frozen=True)
class StoreReport:
    """What ``verify`` found: ``ok`` when nothing was corrupt and nothing unsynced lost its bytes."""

    objects_checked: int
    bytes_checked: int
    quarantined: list[str]
    temp_removed: int
    lost_assets: list[str]

    @property
    def ok(self) -> bool:
        return not self.quarantined and not self.lost_assets


def safe_filename(name: str, fallback: str) -> str:
    """A catalog ``Filename`` made safe to join to a directory: no separators, no ``..``, no NUL."""
    cleaned = name.replace("\0", "").replace("/", "_").replace("\\", "_").strip()
    if cleaned in ("", ".", ".."):
        cleaned = fallback
    if cleaned != name:
        log.warning("file name %r from the catalog is unsafe; writing it as %r", name, cleaned)
    return cleaned


class DerivaML:
    """An offline-first ``deriva_ml.DerivaML``: the same calls, answered from the local store.

    Constructing it never touches the network. The store lives at
    ``working_dir`` if given, else ``$SATCHEL_HOME/<hostname>/<catalog_id>``
    (``SATCHEL_HOME`` defaults to ``~/.satchel``).
    """

    def __init__(
        self,
        hostname: str,
        catalog_id: str | int,
        *,
        working_dir: os.PathLike[str] | str | None = None,
        cache_dir: os.PathLike[str] | str | None = None,
        clean_execution_dir: bool = True,
        link_modes: Sequence[str] = DEFAULT_LINK_MODES,
        **_ignored: Any,
    ) -> None:
        self.hostname = hostname
        self.catalog_id = str(catalog_id)
        root = Path(working_dir) if working_dir is not None else default_store_dir(hostname, self.catalog_id)
        self.store = Store(root, hostname=hostname, catalog_id=self.catalog_id, cache_dir=cache_dir, link_modes=tuple(link_modes))
        self.working_dir = self.store.root
        self.cache_dir = self.store.cache.root
        self.clean_execution_dir = clean_execution_dir
        self._tables: dict[str, Any] | None = None
        self._terms: dict[str, set[str]] = {}

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> DerivaML:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<DerivaML {self.hostname}/{self.catalog_id} store={self.store.root}>"

    # --- model and vocabulary --------------------------------------------------------------

    def list_asset_tables(self) -> list[str]:
        with read_transaction(self.store.engine) as conn:
            return sorted(q.asset_tables(conn))

    def _check_asset_table(self, name: str) -> bool:
        """Raise unless ``name`` can be an asset table; True when it is new to this store.

        A new name (no catalog model pulled yet) is accepted, as deriva-ml's
        ``create_asset`` would have made it, and checked at sync; the caller
        records it with :meth:`_record_asset_table` once the rest of its input
        is known to be good, so bad input changes nothing.
        """
        if self._tables is not None and name in self._tables:
            return False
        with read_transaction(self.store.engine) as conn:
            tables = q.asset_tables(conn)
            known_model = q.model_known(conn)
        self._tables = tables
        if name in tables:
            return False
        if not isinstance(name, str) or not name or "/" in name or ":" in name:
            raise UnknownAssetTableError(f"{name!r} cannot name an asset table; pass the table name, e.g. 'Image'")
        known = ", ".join(sorted(tables))
        if known_model:
            raise UnknownAssetTableError(
                f"asset table {name!r} is not in the catalog model; known asset tables: "
                f"{known}; check the spelling, or create the table on the server and pull"
            )
        reason = not_an_asset_table(name, tables)
        if reason:
            raise UnknownAssetTableError(
                f"{name!r} is {reason}, not an asset table; known asset tables: {known}; pass one of them, "
                "or create an asset table of your own on the server and pull"
            )
        return True

    def _record_asset_table(self, name: str) -> None:
        """Accept a new asset table name offline, with its ``Asset_Type`` term; checked against the catalog at sync."""
        with write_transaction(self.store.engine) as conn:
            q.add_local_asset_table(conn, name)
            q.add_term(conn, "Asset_Type", name, f"Assets of table {name}", [], now())
        self._tables = None
        self._terms.pop("Asset_Type", None)
        log.info("asset table %r is not known yet; it is accepted and will be checked against the catalog at sync", name)

    def _known_terms(self, vocabulary: str, *, refresh: bool = False) -> set[str]:
        if refresh or vocabulary not in self._terms:
            with read_transaction(self.store.engine) as conn:
                self._terms[vocabulary] = set(q.terms(conn, vocabulary))
        return self._terms[vocabulary]

    def _check_terms(self, vocabulary: str, names: Sequence[str]) -> None:
        unknown = [t for t in names if t not in self._known_terms(vocabulary)]
        if unknown:
            unknown = [t for t in unknown if t not in self._known_terms(vocabulary, refresh=True)]
        if unknown:
            known = ", ".join(sorted(self._known_terms(vocabulary)))
            raise UnknownTermError(
                f"{vocabulary} term(s) {', '.join(map(repr, unknown))} not in the vocabulary; known: {known or '(none)'}. "
                f"Add it offline with ml.add_term({vocabulary!r}, {unknown[0]!r}, description='...'), "
                "or pull the catalog's vocabulary while online (satchel pull)"
            )

    def _check_asset_types(self, asset_table: str, asset_types: Sequence[str] | str | None) -> list[str]:
        """The tags to give. The table's own name is always one: deriva-ml's ``create_asset`` makes that
        term with the table, and the push makes sure the catalog has it (a store that learnt the table
        from the model, by a push, may not hold the term until it pulls)."""
        if asset_types is None:
            types = [asset_table]
        elif isinstance(asset_types, str):
            types = [asset_types]
        else:
            types = list(asset_types)
        self._check_terms("Asset_Type", [t for t in types if t != asset_table])
        return types

    def add_term(
        self,
        table: str,
        term_name: str,
        description: str = "",
        synonyms: Sequence[str] | None = None,
        exists_ok: bool = True,
    ) -> VocabularyTerm:
        """Add a vocabulary term offline (e.g. a new ``Asset_Type``); it reaches the catalog at sync."""
        if not term_name or not isinstance(term_name, str):
            raise ValueError(f"a term needs a non-empty name, not {term_name!r}")
        with write_transaction(self.store.engine) as conn:
            reason = not_a_vocabulary(table, q.asset_tables(conn))
            if reason:
                raise NotFoundError(
                    f"{table!r} is {reason}, not a vocabulary; add terms to a vocabulary table such as "
                    f"{', '.join(sorted(ML_VOCABULARIES))} (or one of the catalog's own)"
                )
            _, created = q.add_term(conn, table, term_name, description, list(synonyms or []), now())
        if not created and not exists_ok:
            raise ExecutionError(f"{table} term {term_name!r} already exists; pass exists_ok=True to reuse it")
        self._terms.pop(table, None)
        return self.lookup_term(table, term_name)

    def lookup_term(self, table: str, term_name: str) -> VocabularyTerm:
        with read_transaction(self.store.engine) as conn:
            row = q.terms(conn, table).get(term_name)
        if row is None:
            self._check_terms(table, [term_name])  # raises with the known terms and the fix
            raise AssertionError("unreachable")
        return _term(row)

    def list_vocabulary_terms(self, table: str) -> list[VocabularyTerm]:
        with read_transaction(self.store.engine) as conn:
            return [_term(r) for r in q.terms(conn, table).values()]

    # --- workflows --------------------------------------------------------------------------

    def create_workflow(
        self, name: str, workflow_type: str | list[str], description: str = "", *, url: str | None = None,
        version: str | None = None, checksum: str | None = None,
    ) -> Workflow:
        """A Workflow value (not yet recorded; ``create_execution`` or ``add_workflow`` records it)."""
        wf = Workflow(name=name, workflow_type=workflow_type, description=description, url=url, version=version, checksum=checksum)
        self._check_terms("Workflow_Type", wf.workflow_types)
        return wf

    def add_workflow(self, workflow: Workflow) -> str:
        """Record a workflow, reusing one with the same checksum or URL; returns its RID."""
        self._check_terms("Workflow_Type", workflow.workflow_types)
        with write_transaction(self.store.engine) as conn:
            return self._add_workflow(conn, workflow)

    def _add_workflow(self, conn: Connection, wf: Workflow) -> str:
        if wf.rid:
            found = q.resolve_rid(conn, wf.rid)
            if found is None or found[0] != "workflow":
                raise UnknownRIDError(f"workflow {wf.rid} is not known here; pass a Workflow without rid to record a new one")
            return wf.rid
        existing = q.find_workflow(conn, checksum=wf.checksum, url=wf.url, name=wf.name, version=wf.version)
        if existing is not None:
            wf.rid = existing.remote_rid or existing.rid
            return wf.rid
        at = now()
        (rid,) = allocate_rids(conn, self.store.store_id, "workflow", 1)
        wf_id = conn.execute(
            insert(WorkflowRow)
            .values(
                rid=rid, name=wf.name, url=wf.url, checksum=wf.checksum, version=wf.version,
                description=wf.description, workflow_type=",".join(wf.workflow_types), created_at=at,
                origin="local", sync_state="local",
            )
            .returning(WorkflowRow.id)
        ).scalar_one()
        q.append_changes(conn, [{"kind": "workflow", "entity_kind": "workflow", "entity_id": wf_id}], at)
        wf.rid = rid
        return rid

    @staticmethod
    def _row_id(conn: Connection, rid: str, kind: str, fix: str) -> int:
        """The journal id of the ``kind`` row named by any of its RIDs, else a clear error."""
        found = q.resolve_rid(conn, rid)
        if found is None or found[0] != kind:
            raise UnknownRIDError(f"no {kind} has RID {rid} in this store; {fix}")
        return found[1]

    def lookup_workflow(self, rid: str) -> Workflow:
        with read_transaction(self.store.engine) as conn:
            row_id = self._row_id(conn, rid, "workflow", "pull the catalog while online")
            row = conn.execute(select(WorkflowRow).where(WorkflowRow.id == row_id)).one()
        return Workflow(
            name=row.name, workflow_type=(row.workflow_type or "").split(","), url=row.url, version=row.version,
            description=row.description, checksum=row.checksum, rid=row.remote_rid or row.rid,
        )

    # --- executions ----------------------------------------------------------------------------

    def create_execution(
        self,
        configuration: ExecutionConfiguration | None = None,
        *,
        datasets: Sequence[Any] | None = None,
        assets: Sequence[Any] | None = None,
        workflow: Workflow | str | None = None,
        description: str | None = None,
        dry_run: bool = False,
    ) -> Execution:
        """Create an execution, offline, with its RID known at once.

        Input assets of the configuration are placed in
        ``<working_dir>/downloaded-assets/<Table>/<RID>/<Filename>`` from the
        cache and linked as inputs; all of it is checked before anything is
        recorded.
        """
        if configuration is not None and any(x is not None for x in (datasets, assets, workflow, description)):
            raise TypeError("pass either an ExecutionConfiguration or keyword arguments, not both")
        if configuration is None:
            configuration = ExecutionConfiguration(
                datasets=list(datasets or []), assets=list(assets or []), workflow=workflow, description=description or ""
            )
        wf = configuration.workflow
        if isinstance(wf, Workflow):
            self._check_terms("Workflow_Type", wf.workflow_types)
        inputs = [self.lookup_asset(spec.rid) for spec in configuration.assets]
        digests = [self._digest_for(a) for a in inputs]  # raises before anything is written
        if dry_run:
            row = ExecutionRow(id=0, rid="0000", configuration=configuration.to_json())  # never stored
            return Execution(self, row, dry_run=True)
        at = now()
        with write_transaction(self.store.engine) as conn:
            wf_id = None
            if wf is not None:
                wf_rid = self._add_workflow(conn, wf if isinstance(wf, Workflow) else Workflow(name="", workflow_type=[], rid=wf))
                wf_id = q.resolve_rid(conn, wf_rid)[1]  # type: ignore[index]
            (rid,) = allocate_rids(conn, self.store.store_id, "execution", 1)
            exe_id = conn.execute(
                insert(ExecutionRow)
                .values(
                    rid=rid, workflow_id=wf_id, description=configuration.description, status=Status.Created.value,
                    configuration=configuration.to_json(), working_dir=str(self.store.execution_dir(rid)),
                    created_at=at, origin="local", sync_state="local",
                )
                .returning(ExecutionRow.id)
            ).scalar_one()
            conn.execute(insert(StatusEvent).values(execution_id=exe_id, from_status=None, to_status="Created", at=at))
            q.append_changes(conn, [{"kind": "execution", "entity_kind": "execution", "entity_id": exe_id}], at)
            if inputs:
                ids = [self._asset_id(conn, a.rid) for a in inputs]
                q.add_links(conn, [(i, exe_id, "Input") for i in ids], at)
                q.add_tags(conn, [(i, INPUT_FILE) for i in ids], at)
            row = conn.execute(select(ExecutionRow).where(ExecutionRow.id == exe_id)).one()
        exe = Execution(self, row)
        exe.working_dir.mkdir(parents=True, exist_ok=True)
        for asset, digest in zip(inputs, digests, strict=True):
            dest_dir = exe.working_dir / "downloaded-assets" / asset.asset_table / asset.rid
            dest_dir.mkdir(parents=True, exist_ok=True)
            dest = dest_dir / safe_filename(asset.filename, asset.rid)
            if not self.store.cache.file_matches(dest, digest):
                self.store.cache.export(digest, dest)
            exe.asset_paths.setdefault(asset.asset_table, []).append(
                AssetFilePath(dest, asset_table=asset.asset_table, file_name=str(dest),
                              asset_types=sorted({*asset.asset_types, INPUT_FILE}), asset_rid=asset.rid)
            )
        return exe

    def resume_execution(self, execution_rid: str) -> Execution:
        """Reopen an execution recorded in this store (by any of its RIDs)."""
        with read_transaction(self.store.engine) as conn:
            row_id = self._row_id(conn, execution_rid, "execution", "list them with `satchel ls --executions`")
            row = conn.execute(select(ExecutionRow).where(ExecutionRow.id == row_id)).one()
            pending = q.pending_registrations(conn, row.id)
        exe = Execution(self, row)
        for reg in pending:
            exe._handed_out[(reg.asset_table, reg.file_name)] = AssetFilePath(
                reg.staged_path, asset_table=reg.asset_table, file_name=reg.file_name,
                asset_types=reg.asset_types, asset_metadata=reg.asset_metadata, description=reg.description, execution=exe,
            )
        return exe

    restore_execution = resume_execution

    def execution_history(self, execution_rid: str) -> list[dict[str, Any]]:
        """Every status change of an execution, in order, with its time and detail."""
        with read_transaction(self.store.engine) as conn:
            row_id = self._row_id(conn, execution_rid, "execution", "list them with `satchel ls --executions`")
            rows = conn.execute(
                select(StatusEvent).where(StatusEvent.execution_id == row_id).order_by(StatusEvent.id)
            ).all()
        return [{"from": r.from_status, "to": r.to_status, "at": r.at, "detail": r.detail} for r in rows]

    def list_executions(self) -> list[dict[str, Any]]:
        with read_transaction(self.store.engine) as conn:
            rows = conn.execute(select(ExecutionRow).order_by(ExecutionRow.id)).all()
        return [
            {"RID": r.remote_rid or r.rid, "Status": r.status, "Description": r.description,
             "created_at": r.created_at, "synced": r.sync_state == "synced"}
            for r in rows
        ]

    # --- assets ----------------------------------------------------------------------------------

    def _asset_id(self, conn: Connection, rid: str) -> int:
        found = q.resolve_rid(conn, rid)
        if found is None:
            raise UnknownRIDError(
                f"no asset has RID {rid} in this store; while online, pull it with `satchel pull --asset {rid}`"
            )
        if found[0] != "asset":
            raise UnknownRIDError(f"RID {rid} is an {found[0]}, not an asset; pass an asset's RID")
        return found[1]

    def _assets(self, records: list[dict[str, Any]]) -> list[Asset]:
        return [
            Asset(
                rid=r["remote_rid"] or r["rid"], asset_table=r["asset_table"], filename=r["filename"],
                length=r["length"], md5=r["md5"], url=r["url"], description=r["description"],
                asset_types=sorted(r["tags"]), executions=[AssetExecution(e, role) for e, role in r["links"]],
                metadata=dict(r["asset_metadata"] or {}), synced=r["sync_state"] in ("synced", "remote"), _ml=self,
            )
            for r in records
        ]

    def lookup_asset(self, asset_rid: str) -> Asset:
        """The asset with this RID (its own, its server RID, or an alias), with tags and links."""
        with read_transaction(self.store.engine) as conn:
            asset_id = self._asset_id(conn, asset_rid)
            (asset,) = self._assets(q.asset_records(conn, AssetRow.id == asset_id))
        return asset

    def list_assets(self, asset_table: str) -> list[Asset]:
        """Every asset of one table, with tags (two bulk queries, not one per row)."""
        self._require_table(asset_table)
        with read_transaction(self.store.engine) as conn:
            return self._assets(q.asset_records(conn, AssetRow.asset_table == asset_table))

    def _require_table(self, asset_table: str) -> None:
        with read_transaction(self.store.engine) as conn:
            tables = q.asset_tables(conn)
        if asset_table not in tables:
            raise UnknownAssetTableError(
                f"asset table {asset_table!r} is not known; known asset tables: {', '.join(sorted(tables))}"
            )

    def find_assets(
        self, asset_table: str | None = None, asset_type: str | Sequence[str] | None = None, *, page_size: int = 1000
    ) -> Iterator[Asset]:
        """All assets, optionally of one table and carrying a tag (membership, not equality). A generator."""
        if asset_table is not None:
            self._require_table(asset_table)
        where = []
        if asset_table is not None:
            where.append(AssetRow.asset_table == asset_table)
        if asset_type is not None:
            types = [asset_type] if isinstance(asset_type, str) else list(asset_type)
            where.append(q.asset_ids_with_tag(types))
        from sqlalchemy import and_

        clause = and_(*where) if where else None
        after = 0
        while True:
            with read_transaction(self.store.engine) as conn:
                page = q.asset_records(conn, clause, limit=page_size, after_id=after)
            if not page:
                return
            after = page[-1]["id"]
            yield from self._assets(page)

    def list_asset_executions(self, asset_rid: str, asset_role: str | None = None) -> list[AssetExecution]:
        return self.lookup_asset(asset_rid).list_executions(asset_role)

    def list_execution_assets(self, execution_rid: str, asset_role: str | None = None) -> list[Asset]:
        """Every asset linked to an execution (optionally in one role), in two bulk queries."""
        with read_transaction(self.store.engine) as conn:
            row_id = self._row_id(conn, execution_rid, "execution", "list them with `satchel ls --executions`")
            links = select(q.links_t.c.asset_id).where(q.links_t.c.execution_id == row_id)
            if asset_role is not None:
                links = links.where(q.links_t.c.role == asset_role)
            return self._assets(q.asset_records(conn, AssetRow.id.in_(links)))

    def update_asset(
        self,
        asset_rid: str,
        asset_types: Sequence[str] | None = None,
        description: str | None = None,
        *,
        keep_directional: bool = True,
    ) -> UpdateAssetResult:
        """Set an asset's tags (set-style diff) and/or description, in one transaction.

        ``asset_types`` is the desired tag set: missing tags are added, others
        removed, each recorded as an individual add or remove for the sync
        engine to merge. ``Input_File``/``Output_File`` are kept unless
        ``keep_directional=False``. ``[]`` removes every (non-directional) tag.
        """
        if asset_types is None and description is None:
            raise ValueError("update_asset needs asset_types or description (or both)")
        if isinstance(asset_types, str):
            asset_types = [asset_types]
        if asset_types is not None:
            self._check_terms("Asset_Type", list(asset_types))
        at = now()
        with write_transaction(self.store.engine) as conn:
            asset_id = self._asset_id(conn, asset_rid)
            added: list[str] = []
            removed: list[str] = []
            if asset_types is not None:
                current = set(q.tags_by_asset(conn, [asset_id]).get(asset_id, []))
                desired = set(asset_types)
                if keep_directional:
                    desired |= current & DIRECTIONAL_TAGS
                added = sorted(desired - current)
                removed = sorted(current - desired)
                q.add_tags(conn, [(asset_id, t) for t in added], at)
                q.remove_tags(conn, [(asset_id, t) for t in removed], at)
            changed = False
            if description is not None:
                old = conn.execute(select(AssetRow.description).where(AssetRow.id == asset_id)).scalar()
                if old != description:
                    conn.execute(update(AssetRow).where(AssetRow.id == asset_id).values(description=description))
                    q.append_changes(
                        conn, [{"kind": "description", "entity_kind": "asset", "entity_id": asset_id,
                                "detail": {"old": old, "new": description}}], at,
                    )
                    changed = True
        return UpdateAssetResult(asset_rid, added, removed, changed)

    # --- bytes ---------------------------------------------------------------------------------------

    def _digest_for(self, asset: Asset, blake3: str | None = None) -> Digest:
        """The cached object holding this asset's bytes, or a clear error saying how to fetch it."""
        cache = self.store.cache
        if blake3 is None:
            with read_transaction(self.store.engine) as conn:
                blake3 = conn.execute(select(AssetRow.blake3).where(AssetRow.id == self._asset_id(conn, asset.rid))).scalar()
        if blake3 and cache.has(blake3):
            return Digest(blake3, asset.md5, asset.length)
        with read_transaction(self.store.engine) as conn:
            same_bytes = q.digests_by_md5(conn, asset.md5, asset.length)
        for d in same_bytes:  # the same bytes captured or fetched here for another asset
            if cache.has(d):
                return d
        raise ObjectMissingError(
            f"the bytes of asset {asset.rid} ({asset.filename}, {asset.length} bytes, MD5 {asset.md5}) are not in the "
            f"local cache; while online, fetch them with `satchel pull --asset {asset.rid}`"
        )

    def _place_assets(self, rids: list[str], dest_dir: Path) -> list[Placed]:
        """Put the bytes of these assets in ``dest_dir``, skipping files that already hold them.

        Every RID is resolved and every object found before any file is written.
        Reads only the columns a download needs, in bulk (this is the no-op
        re-download hot path).
        """
        with read_transaction(self.store.engine) as conn:
            plan = self._plan_placement(conn, rids, dest_dir)
        return self._apply_placement(plan, dest_dir)

    def _plan_placement(self, conn: Connection, rids: list[str], dest_dir: Path) -> list[Placed]:
        """Where each asset goes, and which destinations already hold its bytes (reads only)."""
        ids = q.resolve_asset_rids(conn, rids)
        unknown = [r for r in rids if r not in ids]
        if unknown:
            self._asset_id(conn, unknown[0])  # raises the precise error for the first one
        rows = q.download_rows(conn, sorted(set(ids.values())))
        plan = []
        names: dict[str, str] = {}
        base = str(dest_dir)
        cache = self.store.cache
        for rid in rids:
            row = rows[ids[rid]]
            shown = row.remote_rid or row.rid
            name = safe_filename(row.filename, shown)
            dest = f"{base}/{name}"
            if names.setdefault(dest, shown) != shown:
                raise ExecutionError(
                    f"assets {names[dest]} and {shown} both have the file name {name!r}; download them "
                    f"into separate directories (e.g. dest_dir / rid)"
                )
            digest = Digest(row.blake3, row.md5, row.length) if row.blake3 else None
            plan.append(Placed(row.id, shown, row, digest, dest))  # type: ignore[arg-type]
        # what is already in place: one lstat per file, the stat cache asked once for the batch
        stats: dict[str, os.stat_result] = {}
        for p in plan:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):  # the latter: reported by the write
                stats[p.dest] = os.lstat(p.dest)
        if len(plan) > 1:
            cache.index.prefetch(list(stats.values()))
        for p in plan:
            st = stats.get(p.dest)
            p.skipped = p.digest is not None and st is not None and cache.file_matches(p.dest, p.digest, st=st)
        return plan

    def _apply_placement(self, plan: list[Placed], dest_dir: Path) -> list[Placed]:
        """Write the files a plan still needs: all objects checked first, then one filesystem sync."""
        cache = self.store.cache
        for p in plan:  # every object a file still needs must be here before anything is written
            if not p.skipped and (p.digest is None or not cache.has(p.digest)):
                p.digest = self._digest_for(self.lookup_asset(p.rid))
        try:
            dest_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DestinationError(
                f"cannot use {dest_dir} as the download directory: {exc.strerror or exc}; "
                "pass a directory you can write to (a file of that name is in the way, or rights are missing)"
            ) from exc
        batch = len(plan) > 1  # one filesystem sync for the batch instead of an fsync per file
        exported = False
        for p in plan:
            if p.skipped:
                continue
            if os.path.lexists(p.dest):
                try:
                    other = cache.hash_file(Path(p.dest)).md5 if os.path.isfile(p.dest) and not os.path.islink(p.dest) else "(not a file)"
                except OSError:
                    other = "(unreadable)"
                log.warning(
                    "replacing %s (MD5 %s) with asset %s (MD5 %s): the file there held other bytes",
                    p.dest, other, p.rid, p.row.md5,
                )
            try:
                cache.export(p.digest, Path(p.dest), durable=not batch)
            except SatchelError:
                raise
            except OSError as exc:
                raise DestinationError(
                    f"cannot write asset {p.rid} to {p.dest}: {exc.strerror or exc}; "
                    "free space or rights in the download directory, or pass another one"
                ) from exc
            exported = True
        if batch and exported:
            sync_filesystem(dest_dir)
        return plan

    def _download_bytes(self, asset_rid: str, dest_dir: Path) -> Path:
        return Path(self._place_assets([asset_rid], dest_dir)[0].dest)

    # --- the remote ------------------------------------------------------------------------------

    @property
    def remote_url(self) -> str:
        """The server this store syncs to: set with ``set_remote``, else ``https://<hostname>``."""
        with read_transaction(self.store.engine) as conn:
            return q.store_info(conn).get("remote_url") or f"https://{self.hostname}"

    def set_remote(self, url: str) -> None:
        """Configure the server this store syncs to (once per store; ``satchel remote set URL``)."""
        from satchel.remote.session import RemoteSession

        RemoteSession(url, credential=None).close()  # validates the URL; sends nothing
        with write_transaction(self.store.engine) as conn:
            q.set_store_info(conn, "remote_url", url.rstrip("/"))

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
        executions: Sequence[str] = (), metadata: bool = True, transfers: int = 4,
    ) -> Any:
        """Mirror the catalog's metadata into the store; fetch the bytes of the assets, tables or
        executions named (verified by MD5 into the cache), so they work offline afterwards."""
        from satchel import sync

        own = remote is None
        remote = remote if remote is not None else self.connect()
        try:
            return sync.pull(self, remote, progress=progress, assets=list(assets), tables=list(tables),
                             executions=list(executions), metadata=metadata, transfers=transfers)
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
        with read_transaction(self.store.engine) as conn:
            if assets or tables or executions:
                ids = [self._asset_id(conn, r) for r in assets]
                for t in tables:
                    ids += conn.execute(select(AssetRow.id).where(AssetRow.asset_table == t)).scalars().all()
                for r in executions:
                    exe_id = self._row_id(conn, r, "execution", "pull the metadata first (satchel pull)")
                    ids += conn.execute(select(q.links_t.c.asset_id).where(q.links_t.c.execution_id == exe_id)).scalars().all()
            return pull_plan(conn, sorted(set(ids)) if ids is not None else None)

    def resolve(self, asset_rid: str, keep: str) -> int:
        """Settle a description conflict: ``keep='local'`` or ``'remote'``. Returns how many were settled."""
        from satchel.sync.puller import resolve_conflict

        return resolve_conflict(self, asset_rid, keep)

    def sync_plan(self) -> Any:
        """What one push would send, from the journal alone (``--dry-run``)."""
        from satchel import sync

        return sync.plan(self)

    # --- whole-store operations ----------------------------------------------------------------

    def verify(self, progress: Any = None) -> StoreReport:
        """Re-hash every cached object (quarantining corrupt ones) and list assets whose bytes are gone.

        Assets recorded here but not yet on the remote whose bytes are missing
        cannot be synced: they are reported as ``lost``.
        """
        report = self.store.cache.verify(progress=progress)
        lost: list[str] = []
        with read_transaction(self.store.engine) as conn:
            rows = conn.execute(
                select(AssetRow.rid, AssetRow.blake3).where(
                    AssetRow.origin == "local", AssetRow.sync_state.in_(("local", "failed"))
                )
            ).all()
        for rid, b3 in rows:
            if not b3 or not self.store.cache.has(b3):
                lost.append(rid)
        return StoreReport(
            objects_checked=report.checked, bytes_checked=report.bytes_checked,
            quarantined=report.quarantined, temp_removed=report.temp_removed, lost_assets=lost,
        )

    def status(self) -> dict[str, Any]:
        """What the remote does not have yet: counts and bytes, conflicts, failures and what one push would send.

        One read transaction, counted from indexes (``satchel.journal.report``).
        """
        from satchel.journal import report

        with read_transaction(self.store.engine) as conn:
            summary = report.status(conn.connection.driver_connection)
        summary["store"] = str(self.store.root)
        return summary


def _term(row: Any) -> VocabularyTerm:
    return VocabularyTerm(
        vocabulary=row.vocabulary, name=row.name, description=row.description, synonyms=list(row.synonyms or []),
        rid=row.remote_rid, synced=row.sync_state in ("synced", "remote"),
    )


__all__ = ["DerivaML", "StoreReport", "UpdateAssetResult", "VocabularyTerm", "safe_filename"]

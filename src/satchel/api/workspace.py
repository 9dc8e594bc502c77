"""What the API's modules share: the store, what it knows of the catalog's model, and its assets.

A :class:`Workspace` is made by :class:`~satchel.api.facade.DerivaML` and handed
to every execution and asset it returns. It checks tables and terms against the
model known offline (pulled, or the ML schema's own), turns any RID a user saw
into a journal row, and builds the ``Asset`` records users get back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select, update

from satchel.api import placement
from satchel.journal import resolve as rids
from satchel.api.records import Asset, AssetExecution, UpdateAssetResult
from satchel.errors import ObjectMissingError, UnknownAssetTableError, UnknownTermError
from satchel.journal import queries as q
from satchel.journal import read_transaction, retention, write_transaction
from satchel.journal.models import AssetRow
from satchel.mlschema import DIRECTIONAL_TAGS, not_an_asset_table
from satchel.store import Store, now, provisional_rids

log = logging.getLogger("satchel")


class Workspace:
    """One store and the model knowledge and asset records built on it."""

    def __init__(self, store: Store, *, clean_execution_dir: bool = True, default_schema: str | None = None):
        self.store = store
        self.engine = store.engine
        self.clean_execution_dir = clean_execution_dir
        self.default_schema = default_schema
        self._tables: dict[str, Any] | None = None
        self._terms: dict[str, set[str]] = {}

    def forget_model(self) -> None:
        """Drop what was read of tables and terms (a pull changed them)."""
        self._tables = None
        self._terms.clear()

    # --- tables ------------------------------------------------------------------------------

    def asset_tables(self) -> dict[str, Any]:
        if self._tables is None:
            with read_transaction(self.engine) as conn:
                self._tables = q.asset_tables(conn)
        return self._tables

    def schema_of(self, table: str) -> str:
        """The schema an asset table lives in, as deriva-ml names tables (``"schema/Table"``)."""
        found = self.asset_tables().get(table)
        schema = getattr(found, "schema_name", None)
        return schema or self.default_schema or "domain"

    def check_asset_table(self, name: str) -> bool:
        """Raise unless ``name`` can be an asset table; True when it is new to this store.

        A new name (no catalog model pulled yet) is accepted, as deriva-ml's
        ``create_asset`` would have made it, and checked at sync; the caller
        records it with :meth:`record_asset_table` once the rest of its input
        is known to be good, so bad input changes nothing.
        """
        if self._tables is not None and name in self._tables:
            return False
        self._tables = None
        tables = self.asset_tables()
        if name in tables:
            return False
        self.check_table_name(name, "pass one of them, or create an asset table of your own on the server and pull",
                              model_known_fix="check the spelling, or create the table on the server and pull")
        return True

    def check_table_name(self, name: str, fix: str, *, model_known_fix: str | None = None) -> None:
        """Raise unless ``name`` can name a new asset table; ``fix`` ends the error. With ``model_known_fix``,
        a name the pulled catalog model lacks is refused too (with that fix)."""
        if not isinstance(name, str) or not name or "/" in name or ":" in name or "\0" in name:
            raise UnknownAssetTableError(f"{name!r} cannot name an asset table; pass the table name, e.g. 'Image'")
        tables = self.asset_tables()
        known = ", ".join(sorted(tables))
        if model_known_fix is not None:
            with read_transaction(self.engine) as conn:
                known_model = q.model_known(conn)
            if known_model:
                raise UnknownAssetTableError(
                    f"asset table {name!r} is not in the catalog model; known asset tables: {known}; {model_known_fix}"
                )
        reason = not_an_asset_table(name, tables)
        if reason:
            raise UnknownAssetTableError(f"{name!r} is {reason}, not an asset table; known asset tables: {known}; {fix}")

    def record_asset_table(self, name: str, schema: str | None = None, columns: Sequence[str] = ()) -> None:
        """Accept a new asset table name offline, with its ``Asset_Type`` term; checked against the catalog at sync."""
        with write_transaction(self.engine) as conn:
            q.add_local_asset_table(conn, name, schema, columns)
            self.add_term(conn, "Asset_Type", name, f"Assets of table {name}", [])
        self.forget_model()
        log.info("asset table %r is not known yet; it is accepted and will be checked against the catalog at sync", name)

    def require_table(self, asset_table: str) -> None:
        if asset_table not in self.asset_tables():
            self._tables = None
            if asset_table not in self.asset_tables():
                raise UnknownAssetTableError(
                    f"asset table {asset_table!r} is not known; known asset tables: "
                    f"{', '.join(sorted(self.asset_tables()))}"
                )

    # --- terms -------------------------------------------------------------------------------

    def add_term(self, conn: Connection, vocabulary: str, name: str, description: str,
                 synonyms: list[str]) -> bool:
        """Record a local term inside ``conn``, with a provisional RID; False when it was there already."""
        if name in q.terms(conn, vocabulary):
            return False
        (rid,) = provisional_rids(conn, self.store.store_id, 1)
        q.add_term(conn, vocabulary, name, description, synonyms, now(), rid=rid)
        return True

    def known_terms(self, vocabulary: str, *, refresh: bool = False) -> set[str]:
        if refresh or vocabulary not in self._terms:
            with read_transaction(self.engine) as conn:
                self._terms[vocabulary] = set(q.terms(conn, vocabulary))
        return self._terms[vocabulary]

    def check_terms(self, vocabulary: str, names: Sequence[str]) -> None:
        unknown = [t for t in names if t not in self.known_terms(vocabulary)]
        if unknown:
            unknown = [t for t in unknown if t not in self.known_terms(vocabulary, refresh=True)]
        if unknown:
            known = ", ".join(sorted(self.known_terms(vocabulary)))
            raise UnknownTermError(
                f"{vocabulary} term(s) {', '.join(map(repr, unknown))} not in the vocabulary; known: {known or '(none)'}. "
                f"Add it offline with ml.add_term({vocabulary!r}, {unknown[0]!r}, description='...'), "
                "or pull the catalog's vocabulary while online (satchel pull)"
            )

    def check_asset_types(self, asset_table: str, asset_types: Sequence[str] | str | None) -> list[str]:
        """The tags to give. The table's own name is always one: deriva-ml's ``create_asset`` makes that
        term with the table, and the push makes sure the catalog has it (a store that learnt the table
        from the model, by a push, may not hold the term until it pulls)."""
        if asset_types is None:
            types = [asset_table]
        elif isinstance(asset_types, str):
            types = [asset_types]
        else:
            types = list(asset_types)
        self.check_terms("Asset_Type", [t for t in types if t != asset_table])
        return types

    # --- asset records -----------------------------------------------------------------------

    def assets(self, records: list[dict[str, Any]]) -> list[Asset]:
        return [
            Asset(
                rid=r["remote_rid"] or r["rid"], asset_table=r["asset_table"], filename=r["filename"],
                length=r["length"], md5=r["md5"], url=r["url"], description=r["description"],
                asset_types=sorted(r["tags"]), executions=[AssetExecution(e, role) for e, role in r["links"]],
                metadata=dict(r["asset_metadata"] or {}), synced=r["sync_state"] in ("synced", "remote"), workspace=self,
            )
            for r in records
        ]

    def execution_assets(self, conn: Connection, execution_id: int, asset_role: str | None = None) -> list[Asset]:
        """Every asset linked to an execution (optionally in one role: ``Input`` or ``Output``), in two bulk queries."""
        links = select(q.links_t.c.asset_id).where(q.links_t.c.execution_id == execution_id)
        if asset_role is not None:
            links = links.where(q.links_t.c.role == asset_role)
        return self.assets(q.asset_records(conn, AssetRow.id.in_(links)))

    def lookup_asset(self, asset_rid: str) -> Asset:
        with read_transaction(self.engine) as conn:
            asset_id = rids.asset_id(conn, asset_rid)
            (asset,) = self.assets(q.asset_records(conn, AssetRow.id == asset_id))
        return asset

    def update_asset(
        self, asset_rid: str, asset_types: Sequence[str] | None = None, description: str | None = None, *,
        keep_directional: bool = True, add: Sequence[str] = (), remove: Sequence[str] = (),
    ) -> UpdateAssetResult:
        """Tags (a desired set, or ``add``/``remove``) and description of an asset, in one transaction."""
        if isinstance(asset_types, str):
            asset_types = [asset_types]
        wanted = [*(asset_types or []), *add]
        if wanted:
            self.check_terms("Asset_Type", wanted)
        at = now()
        with write_transaction(self.engine) as conn:
            asset_id = rids.asset_id(conn, asset_rid)
            current = set(q.tags_by_asset(conn, [asset_id]).get(asset_id, []))
            desired = set(current)
            if asset_types is not None:
                desired = set(asset_types) | (current & DIRECTIONAL_TAGS if keep_directional else set())
            desired = (desired | set(add)) - set(remove)
            added, removed = sorted(desired - current), sorted(current - desired)
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

    # --- bytes -------------------------------------------------------------------------------

    def download(self, asset_rid: str, dest_dir: Path) -> Path:
        """Put an asset's verified bytes at ``dest_dir/<Filename>``; records nothing."""
        return self.place([asset_rid], dest_dir)[0]

    def place(self, asset_rids: Sequence[str], dest_dir: Path) -> list[Path]:
        """Put assets' verified bytes in ``dest_dir`` (files already holding them are left alone); records nothing.
        Every RID and object is checked before any file is written."""
        return [Path(p.dest) for p in placement.place(self.store, list(asset_rids), Path(dest_dir))]

    def has_bytes(self, asset_rid: str) -> bool:
        """Whether the cache holds the asset's bytes (``UnknownRIDError`` if no asset has that RID)."""
        a = self.lookup_asset(asset_rid)
        try:
            placement.digest_for(self.store, a.rid, a.md5, a.length, a.filename)
        except ObjectMissingError:
            return False
        return True

    def pin_downloaded(self, asset_rids: Sequence[str]) -> None:
        """Pin downloaded assets' bytes in the cache (``use_cache=True``), writing only when one is new."""
        with read_transaction(self.engine) as conn:
            ids = [rids.asset_id(conn, r) for r in asset_rids]
            if not set(ids) - retention.pinned(conn, ids):
                return
        with write_transaction(self.engine) as conn:
            retention.pin(conn, ids, "download", now())

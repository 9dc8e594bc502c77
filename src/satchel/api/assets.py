"""Asset calls of ``DerivaML``: look up, list, find, and change tags and descriptions (offline, synced later)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import and_

from satchel.api.records import Asset, AssetExecution, UpdateAssetResult
from satchel.errors import SatchelError
from satchel.journal.resolve import row_id
from satchel.api.workspace import Workspace
from satchel.journal import queries as q
from satchel.journal import read_transaction
from satchel.journal.models import AssetRow


def column_name(column: Any) -> str:
    """The name of a column definition: deriva-ml's ``ColumnDefinition`` (``.name``), a dict, or a name."""
    name = column if isinstance(column, str) else column.get("name") if isinstance(column, dict) \
        else getattr(column, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{column!r} is not a column definition; pass ColumnDefinition(name=...), "
                         "{'name': ...} or a column name")
    return name


class AssetCalls:
    workspace: Workspace

    def list_asset_tables(self) -> list[str]:
        return sorted(self.workspace.asset_tables())

    def create_asset_table(
        self, asset_name: str, additional_columns: Sequence[Any] = (), comment: str | None = None,
        schema: str | None = None, use_hatrac: bool = True, update_navbar: bool = True,
    ) -> str:
        """Record a new asset table in this store, offline, even once the catalog's model is known; returns its name.

        satchel does not change the catalog's model: the table must exist in the
        catalog (made there with deriva-ml or the server's tools) when its
        assets are pushed, and the push fails them, naming the table, until it
        does. Until then assets can be recorded into it here. ``additional_columns``
        (``ColumnDefinition`` objects, dicts with ``name``, or names) are the
        metadata columns it will have.
        """
        ws = self.workspace
        if asset_name in ws.asset_tables():
            raise SatchelError(f"Table {asset_name} already exists; use it, or pick another name")
        ws.check_table_name(asset_name, "pick another name")
        columns = [column_name(c) for c in additional_columns]
        ws.record_asset_table(asset_name, schema or ws.default_schema, columns)
        return asset_name

    def create_asset(
        self, asset_name: str, column_defs: Sequence[Any] | None = None, fkey_defs: Any = None,
        referenced_tables: Any = None, comment: str = "", schema: str | None = None, update_navbar: bool = True,
    ) -> str:
        """deriva-ml's older ``create_asset``: :meth:`create_asset_table` (which records the table's ``Asset_Type`` term too)."""
        return self.create_asset_table(asset_name, column_defs or (), comment, schema)

    def lookup_asset(self, asset_rid: str) -> Asset:
        """The asset with this RID (its own, its server RID, or an alias), with tags and links."""
        return self.workspace.lookup_asset(asset_rid)

    def list_assets(self, asset_table: str) -> list[Asset]:
        """Every asset of one table, with tags (two bulk queries, not one per row)."""
        self.workspace.require_table(str(asset_table))
        with read_transaction(self.workspace.engine) as conn:
            return self.workspace.assets(q.asset_records(conn, AssetRow.asset_table == str(asset_table)))

    def find_assets(
        self, asset_table: str | None = None, asset_type: str | Sequence[str] | None = None, *, page_size: int = 1000
    ) -> Iterator[Asset]:
        """All assets, optionally of one table and carrying a tag (membership, not equality). A generator."""
        where = []
        if asset_table is not None:
            self.workspace.require_table(str(asset_table))
            where.append(AssetRow.asset_table == str(asset_table))
        if asset_type is not None:
            types = [str(asset_type)] if isinstance(asset_type, str) else [str(t) for t in asset_type]
            where.append(q.asset_ids_with_tag(types))
        clause = and_(*where) if where else None
        after = 0
        while True:
            with read_transaction(self.workspace.engine) as conn:
                page = q.asset_records(conn, clause, limit=page_size, after_id=after)
            if not page:
                return
            after = page[-1]["id"]
            yield from self.workspace.assets(page)

    def list_asset_executions(self, asset_rid: str, asset_role: str | None = None) -> list[AssetExecution]:
        return self.lookup_asset(asset_rid).list_executions(asset_role)

    def list_execution_assets(self, execution_rid: str, asset_role: str | None = None) -> list[Asset]:
        """Every asset linked to an execution (optionally in one role), in two bulk queries."""
        with read_transaction(self.workspace.engine) as conn:
            found = row_id(conn, execution_rid, "execution", "list them with `satchel ls --executions`")
            return self.workspace.execution_assets(conn, found, asset_role)

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
        return self.workspace.update_asset(asset_rid, asset_types, description, keep_directional=keep_directional)

"""Where journal rows go in a real catalog: tables and columns found in its model, not assumed.

Catalogs differ: deriva-ml 1.24 has ``Execution.Duration``, main has
``Execution_Duration``/``Upload_Duration`` and an ``Execution_Status``
vocabulary; domain schemas are named per project. Association tables are found
by foreign keys, as the protocol reference says, never by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from satchel.mlschema import ML_SCHEMA
from satchel.remote.model import AssetAssociations, CatalogModel, Table


@dataclass(frozen=True)
class AssetTarget:
    """One asset table of the catalog and its two association tables."""

    table: Table
    assoc: AssetAssociations

    @property
    def schema(self) -> str:
        return self.table.schema

    @property
    def name(self) -> str:
        return self.table.name


class CatalogMap:
    """Lookups into one catalog model, with errors that say what is missing and what to do."""

    def __init__(self, model: CatalogModel):
        self.model = model
        self._assets: dict[str, AssetTarget | str] = {}

    def ml_table(self, name: str) -> Table:
        """A table of the ML schema (``deriva-ml``), else the one table of that name anywhere."""
        try:
            return self.model.table(ML_SCHEMA, name)
        except KeyError:
            return self.model.table(None, name)

    def vocabulary(self, name: str) -> Table | None:
        try:
            t = self.ml_table(name)
        except KeyError:
            return None
        return t if t.is_vocabulary else None

    def asset(self, name: str) -> AssetTarget | str:
        """The catalog's asset table named ``name``, or the reason there is none.

        Names repeat across schemas (every deriva-ml catalog has ``deriva-ml:File``
        and ``WWW:File``): the table deriva-ml can use, one with both association
        tables, is chosen; among several such, the ML schema's.
        """
        if name not in self._assets:
            self._assets[name] = self._find_asset(name)
        return self._assets[name]

    def _find_asset(self, name: str) -> AssetTarget | str:
        candidates = [t for t in self.model.tables() if t.name == name]
        assets = [t for t in candidates if t.is_asset]
        if not assets:
            if candidates:
                return f"table {candidates[0]} is not an asset table in the catalog"
            known = ", ".join(sorted({t.name for t in self.model.asset_tables()}))
            return (f"asset table {name!r} is not in the catalog; known asset tables: {known}; "
                    "create it on the server (ml.create_asset) and sync again")
        targets = [AssetTarget(t, self.model.associations(t)) for t in assets]
        usable = [t for t in targets if t.assoc.asset_type is not None and t.assoc.execution is not None]
        if len(usable) > 1:
            usable = [t for t in usable if t.schema == ML_SCHEMA] or usable
        if len(usable) == 1:
            return usable[0]
        if len(usable) > 1:
            where = ", ".join(str(t.table) for t in usable)
            return f"asset table name {name!r} is ambiguous in the catalog ({where})"
        t = targets[0]
        missing = "_Asset_Type" if t.assoc.asset_type is None else "_Execution"
        return (f"asset table {t.table} has no {missing} association table; "
                "create it (deriva-ml's create_asset does) and sync again")

    def asset_targets(self) -> list[AssetTarget]:
        """Every asset table satchel can push to and pull from, one per name."""
        out = []
        for name in sorted({t.name for t in self.model.asset_tables()}):
            target = self.asset(name)
            if not isinstance(target, str):
                out.append(target)
        return out


def record_model(engine: Any, catalog_map: CatalogMap) -> None:
    """Remember the catalog's asset tables: from now on, table names are checked offline against them."""
    from sqlalchemy import select, update

    from satchel.journal import queries as q
    from satchel.journal import write_transaction
    from satchel.journal.models import AssetTableDef
    from satchel.store import now

    standard = ("URL", "Filename", "Length", "MD5", "Description")
    with write_transaction(engine) as conn:
        for t in (target.table for target in catalog_map.asset_targets()):
            cols = [c.name for c in t.user_columns if c.name not in standard]
            if conn.execute(select(AssetTableDef.name).where(AssetTableDef.name == t.name)).scalar() is None:
                conn.execute(AssetTableDef.__table__.insert().values(
                    name=t.name, schema_name=t.schema, origin="model", metadata_columns=cols))
            else:
                conn.execute(update(AssetTableDef).where(AssetTableDef.name == t.name).values(
                    schema_name=t.schema, origin="model", metadata_columns=cols))
        q.set_store_info(conn, "model_pulled_at", now())

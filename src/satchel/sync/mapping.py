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
        """The catalog's asset table named ``name``, or the reason there is none."""
        if name not in self._assets:
            candidates = [t for t in self.model.tables() if t.name == name]
            assets = [t for t in candidates if t.is_asset]
            if len(assets) == 1:
                assoc = self.model.associations(assets[0])
                if assoc.asset_type is None or assoc.execution is None:
                    self._assets[name] = (
                        f"asset table {assets[0]} has no "
                        f"{'_Asset_Type' if assoc.asset_type is None else '_Execution'} association table; "
                        "create it (deriva-ml's create_asset does) and sync again"
                    )
                else:
                    self._assets[name] = AssetTarget(assets[0], assoc)
            elif len(assets) > 1:
                where = ", ".join(str(t) for t in assets)
                self._assets[name] = f"asset table name {name!r} is ambiguous in the catalog ({where})"
            elif candidates:
                self._assets[name] = f"table {candidates[0]} is not an asset table in the catalog"
            else:
                known = ", ".join(sorted(t.name for t in self.model.asset_tables()))
                self._assets[name] = (
                    f"asset table {name!r} is not in the catalog; known asset tables: {known}; "
                    "create it on the server (ml.create_asset) and sync again"
                )
        return self._assets[name]


def record_model(engine: Any, model: CatalogModel) -> None:
    """Remember the catalog's asset tables: from now on, table names are checked offline against them."""
    from sqlalchemy import select, update

    from satchel.journal import queries as q
    from satchel.journal import write_transaction
    from satchel.journal.models import AssetTableDef
    from satchel.store import now

    standard = ("URL", "Filename", "Length", "MD5", "Description")
    with write_transaction(engine) as conn:
        for t in model.asset_tables():
            cols = [c.name for c in t.user_columns if c.name not in standard]
            if conn.execute(select(AssetTableDef.name).where(AssetTableDef.name == t.name)).scalar() is None:
                conn.execute(AssetTableDef.__table__.insert().values(
                    name=t.name, schema_name=t.schema, origin="model", metadata_columns=cols))
            else:
                conn.execute(update(AssetTableDef).where(AssetTableDef.name == t.name).values(
                    schema_name=t.schema, origin="model", metadata_columns=cols))
        q.set_store_info(conn, "model_pulled_at", now())

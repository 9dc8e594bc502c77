"""A small, read-only view of an ERMrest catalog model (``/schema``).

Recognises the tables satchel cares about by structure, not by name:

- an *asset table* has ``URL``, ``Filename``, ``Length`` and ``MD5``, with
  ``URL``, ``Length`` and ``MD5`` NOT NULL and ``URL`` carrying the
  ``tag:isrd.isi.edu,2017:asset`` annotation;
- a *vocabulary* has ``ID``, ``URI``, ``Name``, ``Description`` and ``Synonyms``;
- an asset's associations are found by foreign keys: ``<A>_Asset_Type``-like
  tables point to ``A.RID`` and to a vocabulary's ``Name``;
  ``<A>_Execution``-like tables point to ``A.RID`` and to ``Execution.RID``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

ASSET_ANNOTATION = "tag:isrd.isi.edu,2017:asset"
SYSTEM_COLUMNS = ("RID", "RCT", "RMT", "RCB", "RMB")
ASSET_COLUMNS = ("URL", "Filename", "Length", "MD5")
VOCABULARY_COLUMNS = ("ID", "URI", "Name", "Description", "Synonyms")


@dataclass(frozen=True)
class Column:
    name: str
    typename: str
    nullok: bool
    default: Any = None
    annotations: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Key:
    columns: tuple[str, ...]
    name: tuple[str, str] | None = None


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    ref_schema: str
    ref_table: str
    ref_columns: tuple[str, ...]
    name: tuple[str, str] | None = None
    on_delete: str = "NO ACTION"


@dataclass
class Table:
    schema: str
    name: str
    columns: dict[str, Column]
    keys: list[Key]
    foreign_keys: list[ForeignKey]
    annotations: dict = field(default_factory=dict)

    @property
    def qualified(self) -> tuple[str, str]:
        return (self.schema, self.name)

    def __str__(self) -> str:
        return f"{self.schema}:{self.name}"

    @property
    def is_asset(self) -> bool:
        cols = self.columns
        if not all(c in cols for c in ASSET_COLUMNS):
            return False
        if any(cols[c].nullok for c in ("URL", "Length", "MD5")):
            return False
        return ASSET_ANNOTATION in cols["URL"].annotations

    @property
    def is_vocabulary(self) -> bool:
        return all(c in self.columns for c in VOCABULARY_COLUMNS)

    @property
    def user_columns(self) -> list[Column]:
        return [c for n, c in self.columns.items() if n not in SYSTEM_COLUMNS]

    def fkeys_to(self, schema: str, table: str, column: str | None = None) -> list[ForeignKey]:
        return [fk for fk in self.foreign_keys
                if (fk.ref_schema, fk.ref_table) == (schema, table)
                and (column is None or fk.ref_columns == (column,))]


@dataclass(frozen=True)
class AssetAssociations:
    """The association tables of one asset table, found by foreign keys."""

    asset: Table
    asset_type: Table | None  # columns: asset_column, type_column
    asset_type_column: str | None
    type_column: str | None
    execution: Table | None  # columns: asset_column, execution_column, role_column
    execution_asset_column: str | None
    execution_column: str | None
    role_column: str | None


@dataclass
class CatalogModel:
    schemas: dict[str, dict[str, Table]]
    snaptime: str | None = None

    @classmethod
    def from_json(cls, doc: dict) -> "CatalogModel":
        schemas: dict[str, dict[str, Table]] = {}
        for sname, sdoc in (doc.get("schemas") or {}).items():
            tables = {}
            for tname, tdoc in (sdoc.get("tables") or {}).items():
                tables[tname] = _table(sname, tname, tdoc)
            schemas[sname] = tables
        return cls(schemas, doc.get("snaptime"))

    def tables(self) -> Iterator[Table]:
        for tables in self.schemas.values():
            yield from tables.values()

    def table(self, schema: str | None, name: str) -> Table:
        """A table by name; ``schema`` may be None when the name is unambiguous."""
        if schema is not None:
            try:
                return self.schemas[schema][name]
            except KeyError:
                raise KeyError(f"table {schema}:{name} is not in the catalog model") from None
        found = [t for t in self.tables() if t.name == name]
        if len(found) != 1:
            where = ", ".join(str(t) for t in found) or "none"
            raise KeyError(f"table name {name!r} is {'ambiguous' if found else 'unknown'} (matches: {where})")
        return found[0]

    def asset_tables(self) -> list[Table]:
        return [t for t in self.tables() if t.is_asset]

    def vocabularies(self) -> list[Table]:
        return [t for t in self.tables() if t.is_vocabulary]

    def associations(self, asset: Table) -> AssetAssociations:
        """The ``_Asset_Type`` and ``_Execution`` tables of ``asset``, found by FK."""
        found_type = found_exec = None
        for t in self.tables():
            to_asset = t.fkeys_to(asset.schema, asset.name, "RID")
            if len(to_asset) != 1 or t is asset:
                continue
            asset_col = to_asset[0].columns[0]
            others = [fk for fk in t.foreign_keys if fk is not to_asset[0]
                      and fk.ref_table != "ERMrest_Client"]
            vocab_fks = [fk for fk in others if fk.ref_columns == ("Name",)
                         and self._is_vocab(fk.ref_schema, fk.ref_table)]
            exec_fks = [fk for fk in others if fk.ref_table == "Execution" and fk.ref_columns == ("RID",)]
            if exec_fks and found_exec is None:
                role = next((fk.columns[0] for fk in vocab_fks if fk.ref_table == "Asset_Role"), None)
                found_exec = (t, asset_col, exec_fks[0].columns[0], role)
            elif len(others) == 1 and vocab_fks and vocab_fks[0].ref_table == "Asset_Type" and found_type is None:
                found_type = (t, asset_col, vocab_fks[0].columns[0])
        return AssetAssociations(
            asset,
            found_type[0] if found_type else None,
            found_type[1] if found_type else None,
            found_type[2] if found_type else None,
            found_exec[0] if found_exec else None,
            found_exec[1] if found_exec else None,
            found_exec[2] if found_exec else None,
            found_exec[3] if found_exec else None,
        )

    def _is_vocab(self, schema: str, table: str) -> bool:
        t = self.schemas.get(schema, {}).get(table)
        return bool(t and t.is_vocabulary)


def _table(sname: str, tname: str, tdoc: dict) -> Table:
    cols = {}
    for c in tdoc.get("column_definitions") or []:
        cols[c["name"]] = Column(c["name"], (c.get("type") or {}).get("typename", "text"),
                                 bool(c.get("nullok", True)), c.get("default"), c.get("annotations") or {})
    keys = [Key(tuple(k["unique_columns"]), _name(k)) for k in tdoc.get("keys") or []]
    fks = []
    for fk in tdoc.get("foreign_keys") or []:
        ref = fk["referenced_columns"]
        fks.append(ForeignKey(
            tuple(c["column_name"] for c in fk["foreign_key_columns"]),
            ref[0]["schema_name"], ref[0]["table_name"], tuple(c["column_name"] for c in ref),
            _name(fk), fk.get("on_delete", "NO ACTION")))
    return Table(sname, tname, cols, keys, fks, tdoc.get("annotations") or {})


def _name(doc: dict) -> tuple[str, str] | None:
    names = doc.get("names") or []
    return tuple(names[0]) if names else None  # type: ignore[return-value]

"""The emulator's view of one catalog model: lookups, validation, rendering."""

from __future__ import annotations

import copy
from typing import Any, Callable

from satchel.testing.catalog_def import SYSTEM_COLUMNS, column_type, system_columns
from satchel.testing.httpd import HTTPError


class TableInfo:
    """Indexes over one table document (columns by name, keys, FKs)."""

    def __init__(self, doc: dict):
        self.doc = doc
        self.schema = doc["schema_name"]
        self.name = doc["table_name"]
        self.columns = {c["name"]: c for c in doc["column_definitions"]}
        self.keys: list[tuple[tuple[str, ...], str]] = [
            (tuple(k["unique_columns"]), _constraint_name(k, f"{self.name}_{'_'.join(k['unique_columns'])}_key"))
            for k in doc["keys"]
        ]
        self.fkeys = doc["foreign_keys"]

    @property
    def label(self) -> str:
        return f":{self.schema}:{self.name}"

    def column(self, name: str) -> dict:
        try:
            return self.columns[name]
        except KeyError:
            raise HTTPError(
                409, f"Request conflicts with state of server. Detail: Requested column {name} "
                f"does not exist in table {self.name}.") from None


def _constraint_name(doc: dict, default: str) -> str:
    names = doc.get("names") or []
    return names[0][1] if names else default


def fkey_parts(fk: dict) -> tuple[list[str], str, str, list[str], str]:
    cols = [c["column_name"] for c in fk["foreign_key_columns"]]
    ref = fk["referenced_columns"]
    return cols, ref[0]["schema_name"], ref[0]["table_name"], [c["column_name"] for c in ref], \
        _constraint_name(fk, f"{fk['foreign_key_columns'][0]['table_name']}_{'_'.join(cols)}_fkey")


class Model:
    """All schemas of a catalog, with model-element RIDs from ``next_rid``."""

    def __init__(self, schemas: dict[str, dict], next_rid: Callable[[], str]):
        self.schemas = schemas
        self.next_rid = next_rid
        self._tables: dict[tuple[str, str], TableInfo] = {}
        for sdoc in schemas.values():
            self._stamp(sdoc)
        self.reindex()

    def _stamp(self, doc: Any) -> None:
        """Give every model element without one a RID."""
        if isinstance(doc, dict):
            if ("schema_name" in doc and "tables" in doc) or "table_name" in doc and "column_definitions" in doc \
                    or ("name" in doc and "type" in doc) or "unique_columns" in doc or "foreign_key_columns" in doc:
                doc.setdefault("RID", self.next_rid())
            for k, v in doc.items():
                if k in ("annotations", "acls", "acl_bindings", "type", "referenced_columns",
                         "foreign_key_columns"):
                    continue
                self._stamp(v)
        elif isinstance(doc, list):
            for item in doc:
                self._stamp(item)

    def reindex(self) -> None:
        self._tables = {
            (s, t): TableInfo(tdoc) for s, sdoc in self.schemas.items() for t, tdoc in sdoc["tables"].items()
        }

    def tables(self) -> list[TableInfo]:
        return list(self._tables.values())

    def table(self, schema: str | None, name: str) -> TableInfo:
        if schema is None:
            found = [t for (s, n), t in self._tables.items() if n == name]
            if len(found) == 1:
                return found[0]
            if not found:
                raise HTTPError(409, f"Request conflicts with state of server. Detail: Table {name} does not exist.")
            raise HTTPError(409, f"Request conflicts with state of server. Detail: Table name {name} is ambiguous.")
        if schema not in self.schemas:
            raise HTTPError(409, f"Request conflicts with state of server. Detail: Schema {schema} does not exist.")
        try:
            return self._tables[(schema, name)]
        except KeyError:
            raise HTTPError(
                409, f"Request conflicts with state of server. Detail: Table {name} does not exist in schema {schema}."
            ) from None

    # --- model changes -------------------------------------------------------

    def add_schema(self, name: str, doc: dict | None = None) -> dict:
        if name in self.schemas:
            raise HTTPError(409, f"Request conflicts with state of server. Detail: Schema {name} already exists.")
        sdoc = {"schema_name": name, "comment": (doc or {}).get("comment"),
                "annotations": (doc or {}).get("annotations") or {}, "acls": {}, "tables": {}}
        self._stamp(sdoc)
        self.schemas[name] = sdoc
        for tdoc in ((doc or {}).get("tables") or {}).values():
            self.add_table(name, tdoc)
        return sdoc

    def add_table(self, schema: str, doc: dict) -> dict:
        if schema not in self.schemas:
            raise HTTPError(404, f"Resource not found. Detail: schema {schema}")
        name = doc.get("table_name")
        if not name:
            raise HTTPError(400, "Request malformed. Detail: table_name is required.")
        if name in self.schemas[schema]["tables"]:
            raise HTTPError(409, f"Request conflicts with state of server. Detail: Table {name} already exists "
                                 f"in schema {schema}.")
        tdoc = normalise_table(schema, doc)
        self._stamp(tdoc)
        self.schemas[schema]["tables"][name] = tdoc
        self.reindex()
        # validate FKs after indexing, undoing on failure
        try:
            for fk in tdoc["foreign_keys"]:
                _, rs, rt, rcols, _ = fkey_parts(fk)
                ref = self.table(rs, rt)
                for c in rcols:
                    ref.column(c)
        except HTTPError:
            del self.schemas[schema]["tables"][name]
            self.reindex()
            raise
        return tdoc


def normalise_table(schema: str, doc: dict) -> dict:
    """Fill a client's table document the way ERMrest stores it; 400 without system columns."""
    name = doc["table_name"]
    given = {c["name"]: c for c in doc.get("column_definitions") or []}
    for sc in SYSTEM_COLUMNS:
        if sc not in given:
            raise HTTPError(400, f"Request malformed. Detail: Table :{schema}:{name} lacks required system "
                                 f"column {sc}.")
    system = {c["name"]: c for c in system_columns()}
    cols = []
    for c in doc["column_definitions"]:
        if c["name"] in system:
            full = copy.deepcopy(system[c["name"]])
            full["annotations"] = c.get("annotations") or {}
        else:
            tdoc = c.get("type") or {"typename": "text"}
            full = {
                "name": c["name"],
                "type": column_type(tdoc["typename"]) if set(tdoc) == {"typename"} else tdoc,
                "nullok": c.get("nullok", True),
                "default": c.get("default"),
                "comment": c.get("comment"),
                "annotations": c.get("annotations") or {},
                "acls": c.get("acls") or {},
                "acl_bindings": c.get("acl_bindings") or {},
            }
        cols.append(full)
    keys = []
    for k in doc.get("keys") or []:
        keys.append({
            "names": k.get("names") or [[schema, f"{name}_{'_'.join(k['unique_columns'])}_key"]],
            "unique_columns": list(k["unique_columns"]),
            "comment": k.get("comment"), "annotations": k.get("annotations") or {},
        })
    if not any(k["unique_columns"] == ["RID"] for k in keys):
        raise HTTPError(400, f"Request malformed. Detail: Table :{schema}:{name} lacks a key on RID.")
    fkeys = []
    for fk in doc.get("foreign_keys") or []:
        cols_ = [dict(c, schema_name=schema, table_name=name) for c in fk["foreign_key_columns"]]
        fkeys.append({
            "names": fk.get("names") or [[schema, f"{name}_{'_'.join(c['column_name'] for c in cols_)}_fkey"]],
            "foreign_key_columns": cols_,
            "referenced_columns": fk["referenced_columns"],
            "on_delete": fk.get("on_delete") or "NO ACTION",
            "on_update": fk.get("on_update") or "NO ACTION",
            "comment": fk.get("comment"), "annotations": fk.get("annotations") or {},
            "acls": fk.get("acls") or {}, "acl_bindings": fk.get("acl_bindings") or {},
        })
    return {
        "schema_name": schema, "table_name": name, "kind": doc.get("kind") or "table",
        "comment": doc.get("comment"), "annotations": doc.get("annotations") or {},
        "acls": doc.get("acls") or {}, "acl_bindings": doc.get("acl_bindings") or {},
        "column_definitions": cols, "keys": keys, "foreign_keys": fkeys,
    }


def render_table(tdoc: dict, rights: dict) -> dict:
    out = copy.deepcopy(tdoc)
    out["rights"] = dict(rights)
    col_rights = {k: v for k, v in rights.items() if k != "owner"}
    for c in out["column_definitions"]:
        r = dict(col_rights)
        if c["name"] in ("RMT", "RMB"):
            r["insert"] = False
        if c["name"] in ("RID", "RMT", "RCB", "RMB"):
            r["update"] = False
        c["rights"] = r
    for fk in out["foreign_keys"]:
        fk["rights"] = {"insert": rights.get("insert", False), "update": rights.get("update", False)}
    return out


def render_schema(sdoc: dict, rights: dict) -> dict:
    out = {k: copy.deepcopy(v) for k, v in sdoc.items() if k != "tables"}
    out["rights"] = {"owner": rights.get("owner", False), "create": rights.get("owner", False)}
    out["tables"] = {n: render_table(t, rights) for n, t in sdoc["tables"].items()}
    return out

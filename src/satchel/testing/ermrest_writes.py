"""ERMrest writes in the emulator: insert, attributegroup and entity PUT, delete.

A mixin of :class:`satchel.testing.ermrest.Ermrest`; every write runs in one
:class:`~satchel.testing.ermrest_catalog.Txn` through ``self.mutate``.
"""

from __future__ import annotations

import csv
import io
import json
import zlib
from typing import Any

from satchel.testing import rid as ridmod
from satchel.testing import values as V
from satchel.testing.catalog_def import SYSTEM_COLUMNS
from satchel.testing.ermrest_catalog import (
    Catalog, Txn, conflict, echo_with_duplicates, forbidden, model_violation, render_rows,
)
from satchel.testing.ermrest_data import TableData, hashable, select
from satchel.testing.ermrest_model import TableInfo, fkey_parts
from satchel.testing.ermrest_url import DataPath, bad_url, decode_atom, parse_projection
from satchel.testing.httpd import HTTPError, Request, Response

LEASE = ("public", "ERMrest_RID_Lease")
INDEX_LIMIT = 2704
INDEX_PREFS = "tag:isrd.isi.edu,2018:indexing-preferences"


class Writes:
    """The write half of the ERMrest service."""

    def _post_entity(self, req: Request, cat: Catalog, info: TableInfo, td: TableData) -> Response:
        if (info.schema, info.name) == LEASE and not self.features.get("rid_lease", True):
            raise HTTPError(409, "Request conflicts with state of server. Detail: Table ERMrest_RID_Lease does not "
                                 "exist in schema public.")
        self._require(req, cat, info, "insert")
        onconflict = req.arg("onconflict") or "abort"
        if onconflict not in ("skip", "abort"):
            raise HTTPError(400, f'Request malformed. Detail: Unknown action name in query parameter '
                                 f'onconflict="{onconflict}". Expected "skip" or "abort".')
        defaults = _name_list(req.arg("defaults"))
        nondefaults = _name_list(req.arg("nondefaults"))
        for c in defaults | nondefaults:
            info.column(c)
        owner = cat.is_owner(req.client)
        for c in nondefaults:
            if c in ("RMT", "RMB") or (c in ("RCT", "RCB") and not owner):
                raise forbidden(f"insert access on {info.label}:{c}")
        content_type = (req.header("Content-Type") or "application/json").split(";")[0].strip()
        if content_type == "text/csv":
            items = _csv_items(req, info)
        elif content_type in ("application/json", "application/x-json-stream", ""):
            items = _json_items(req, content_type)
        else:
            raise HTTPError(415, f"Unsupported media type. Detail: {content_type}")

        def run(txn: Txn):
            return self._insert_rows(txn, cat, info, td, items, client=req.client, defaults=defaults,
                                     nondefaults=nondefaults, skip=onconflict == "skip", owner=owner)

        inserted = self.mutate(cat, run)
        return Response(200, echo_with_duplicates(info, inserted),
                        [("Content-Type", "application/json"), ("Vary", "accept,cookie")])

    def _insert_rows(self, txn: Txn, cat: Catalog, info: TableInfo, td: TableData, items: list,
                     *, client, defaults: set, nondefaults: set, skip: bool, owner: bool = True) -> list[dict]:
        me = client["id"] if client else None
        built = []
        for item in items:
            if not isinstance(item, dict):
                raise HTTPError(400, "Request malformed. Detail: Bad JSON array input. "
                                     "ERROR: input rows must be JSON objects")
            row: dict[str, Any] = {}
            if "RID" in nondefaults:
                given = item.get("RID")
                if given is not None and not isinstance(given, str):
                    given = json.dumps(given)
                row["RID"] = given
            else:
                row["RID"] = cat.next_rid()
            row["RCT"] = _coerce(info, "RCT", item["RCT"]) if "RCT" in nondefaults and "RCT" in item else txn.now
            row["RMT"] = txn.now
            row["RCB"] = item.get("RCB") if "RCB" in nondefaults and "RCB" in item else me
            row["RMB"] = me
            for cname, cdoc in info.columns.items():
                if cname in SYSTEM_COLUMNS:
                    continue
                if cname in defaults:
                    row[cname] = _default(cdoc)
                elif cname in item:
                    row[cname] = _coerce(info, cname, item[cname])
                else:
                    row[cname] = None
            built.append(row)
        for row in built:
            if row["RID"] is None:
                raise model_violation(f'null value in column "RID" of relation "{info.name}" '
                                      "violates not-null constraint")
            try:
                ridmod.decode(row["RID"])
            except ValueError as exc:
                raise model_violation(f"{exc} CONTEXT: PL/pgSQL function _ermrest.urlb32_decode(text,boolean)") \
                    from None
            for cname, cdoc in info.columns.items():
                value = row.get(cname)
                if isinstance(cdoc.get("default"), str) and isinstance(value, str) and "{RID}" in value \
                        and cname in defaults:
                    row[cname] = value.replace("{RID}", row["RID"])
                if row.get(cname) is None and not cdoc.get("nullok", True):
                    raise model_violation(f'null value in column "{cname}" of relation "{info.name}" '
                                          "violates not-null constraint")
                _check_index_size(info, cname, cdoc, row.get(cname))
        for cols, _ in info.keys:
            seen = set()
            for row in built:
                k = TableData.key_of(cols, row)
                if k is None:
                    continue
                if k in seen:
                    raise HTTPError(400, "Request malformed. Detail: Multiple input rows share the same "
                                         "unique key information.")
                seen.add(k)
        if "RID" in nondefaults:
            if not owner:
                _, leases = cat.table(*LEASE)
                for row in built:
                    lease = leases.rows.get(row["RID"])
                    if lease is None or lease.get("RCB") != me:
                        raise forbidden(f"insert access on column \"RID\" with non-leased value '{row['RID']}'")
                for row in built:
                    txn.delete(leases, row["RID"])
            for row in built:
                cat.rid_seq = max(cat.rid_seq, ridmod.decode(row["RID"]))
        inserted = []
        for row in built:
            clash = None
            for cols, cname in info.keys:
                k = TableData.key_of(cols, row)
                if k is not None and td.lookup(cols, k) is not None:
                    clash = (cols, cname, k)
                    break
            if clash:
                if skip:
                    continue
                cols, cname, k = clash
                raise model_violation(
                    f'duplicate key value violates unique constraint "{cname}" DETAIL: Key '
                    f'({", ".join(cols)})=({", ".join(str(V.render(v)) for v in k)}) already exists.')
            txn.insert(td, row)
            inserted.append(row)
        self._check_fkeys(cat, info, inserted)
        return inserted

    def _check_fkeys(self, cat: Catalog, info: TableInfo, rows: list[dict]) -> None:
        for fk in info.fkeys:
            cols, rs, rt, rcols, name = fkey_parts(fk)
            if (rs, rt) == ("public", "ERMrest_Client"):
                continue
            _, ref = cat.table(rs, rt)
            for row in rows:
                vals = tuple(hashable(row.get(c)) for c in cols)
                if any(v is None for v in vals):
                    continue
                if ref.lookup(tuple(rcols), vals) is None:
                    raise model_violation(
                        f'insert or update on table "{info.name}" violates foreign key constraint "{name}" '
                        f'DETAIL: Key ({", ".join(cols)})=({", ".join(str(v) for v in vals)}) is not present '
                        f'in table "{rt}".')

    # --- updates ------------------------------------------------------------------

    def _put_attributegroup(self, req, cat: Catalog, info: TableInfo, td: TableData, path: DataPath) -> Response:
        self._require(req, cat, info, "update")
        if path.filters:
            raise HTTPError(400, "Request malformed. Detail: attributegroup PUT does not take filters.")
        keys_raw, sep, targets_raw = path.tail.partition(";")
        if not sep:
            raise HTTPError(400, "Request malformed. Detail: attributegroup PUT needs key;target columns.")
        keys = parse_projection(keys_raw).items
        targets = parse_projection(targets_raw).items
        for _, col in keys + targets:
            info.column(col)
        for _, col in targets:
            if col in SYSTEM_COLUMNS:
                raise forbidden(f"update access on {info.label}:{col}")
        items = _json_items(req, "application/json")
        key_names = [alias or col for alias, col in keys]
        seen = set()
        for item in items:
            if not isinstance(item, dict):
                raise HTTPError(400, "Request malformed. Detail: input rows must be JSON objects")
            for n in key_names:
                if item.get(n) is None:
                    raise model_violation(f'null value in column "{n}" violates not-null constraint')
            k = json.dumps([item.get(n) for n in key_names])
            if k in seen:
                raise HTTPError(400, "Request malformed. Detail: Multiple input rows share the same unique "
                                     "key information.")
            seen.add(k)
        visible = self._visible(cat, info, req.client)
        me = req.client["id"]

        def run(txn: Txn):
            echoed, changed = [], []
            for item in items:
                try:
                    wanted = [(col, _coerce(info, col, item[alias or col])) for alias, col in keys]
                except HTTPError:
                    continue  # a malformed key value matches nothing
                matches = [r for r in _candidates(td, wanted) if all(
                    hashable(r.get(c)) == hashable(v) for c, v in wanted) and (visible is None or visible(r))]
                for row in matches:
                    new = dict(row)
                    for alias, col in targets:
                        new[col] = _coerce(info, col, item.get(alias or col))
                        cdoc = info.columns[col]
                        if new[col] is None and not cdoc.get("nullok", True):
                            raise model_violation(f'null value in column "{col}" of relation "{info.name}" '
                                                  "violates not-null constraint")
                        _check_index_size(info, col, cdoc, new[col])
                    new["RMT"], new["RMB"] = txn.now, me
                    for cols, cname in info.keys:
                        k = TableData.key_of(cols, new)
                        other = td.lookup(cols, k) if k is not None else None
                        if other is not None and other != row["RID"]:
                            raise model_violation(f'duplicate key value violates unique constraint "{cname}"')
                    txn.replace(td, new)
                    changed.append(new)
                    echoed.append({(alias or col): item.get(alias or col) for alias, col in keys + targets})
            self._check_fkeys(cat, info, changed)
            return echoed

        return Response.json(200, self.mutate(cat, run), [("Vary", "accept,cookie")])

    def _put_entity(self, req, cat: Catalog, info: TableInfo, td: TableData) -> Response:
        self._require(req, cat, info, "update")
        self._require(req, cat, info, "insert")
        client_keys = [cols for cols, _ in info.keys if not set(cols) & set(SYSTEM_COLUMNS)]
        if not client_keys:
            raise conflict("Entity PUT requires at least one client-managed key for input correlation.")
        items = _json_items(req, "application/json")
        me = req.client["id"]

        def run(txn: Txn):
            out_rows, inserts = [], []
            for item in items:
                match = None
                for cols in client_keys:
                    if all(c in item for c in cols):
                        vals = tuple(hashable(_coerce(info, c, item[c])) for c in cols)
                        rid = td.lookup(cols, vals)
                        if rid is not None:
                            match = td.rows[rid]
                            break
                if match is None:
                    inserts.append(item)
                    continue
                new = dict(match)
                for c, v in item.items():
                    if c in info.columns and c not in SYSTEM_COLUMNS:
                        new[c] = _coerce(info, c, v)
                new["RMT"], new["RMB"] = txn.now, me
                txn.replace(td, new)
                self._check_fkeys(cat, info, [new])
                out_rows.append({c: V.render(new.get(c)) for c in item if c in info.columns})
            added = self._insert_rows(txn, cat, info, td, inserts, client=req.client,
                                      defaults=set(), nondefaults=set(), skip=False,
                                      owner=cat.is_owner(req.client))
            return out_rows + render_rows(info, added)

        return Response.json(200, self.mutate(cat, run), [("Vary", "accept,cookie")])

    # --- delete -------------------------------------------------------------------

    def _delete(self, req, cat: Catalog, info: TableInfo, td: TableData, path: DataPath) -> Response:
        self._require(req, cat, info, "delete")
        rows = select(td, path.filters, self._visible(cat, info, req.client))
        if path.modifiers.sort:
            raise bad_url("@sort")

        def run(txn: Txn):
            if not rows:
                return False
            for row in rows:
                self._delete_row(txn, cat, info, td, row["RID"])
            return True

        if not self.mutate(cat, run):
            raise HTTPError(404, "Resource not found. Detail: entities matching request path")
        return Response(204)

    def _delete_row(self, txn: Txn, cat: Catalog, info: TableInfo, td: TableData, rid: str) -> None:
        if rid not in td.rows:
            return
        row = txn.delete(td, rid)
        txn.tombstones.append({
            "rid": rid, "schema_name": info.schema, "table_name": info.name,
            "deleted_at": V.render_timestamp_space(txn.now),
            "last_visible_at": V.render_timestamp_space(row["RMT"]),
        })
        for other in cat.model.tables():
            for fk in other.fkeys:
                cols, rs, rt, rcols, name = fkey_parts(fk)
                if (rs, rt) != (info.schema, info.name):
                    continue
                vals = [hashable(row.get(c)) for c in rcols]
                otd = cat.data[(other.schema, other.name)]
                refs = [r for r in list(otd.rows.values()) if [hashable(r.get(c)) for c in cols] == vals]
                for ref in refs:
                    action = fk.get("on_delete", "NO ACTION")
                    if action == "CASCADE":
                        self._delete_row(txn, cat, other, otd, ref["RID"])
                    elif action == "SET NULL":
                        txn.replace(otd, dict(ref, **{c: None for c in cols}))
                    else:
                        raise model_violation(
                            f'update or delete on table "{info.name}" violates foreign key constraint '
                            f'"{name}" on table "{other.name}"')


def _candidates(td: TableData, wanted: list[tuple[str, Any]]) -> list[dict]:
    for col, value in wanted:
        if col == "RID":
            row = td.rows.get(value) if isinstance(value, str) else None
            return [row] if row else []
    cols = tuple(c for c, _ in wanted)
    if cols in td.indexes:
        rid = td.indexes[cols].get(tuple(hashable(v) for _, v in wanted))
        return [td.rows[rid]] if rid else []
    return list(td.rows.values())


def _name_list(text: str | None) -> set[str]:
    return {decode_atom(n) for n in text.split(",") if n} if text else set()


def _coerce(info: TableInfo, cname: str, value: Any) -> Any:
    try:
        return V.coerce(value, info.column(cname)["type"])
    except V.CastError as exc:
        raise HTTPError(400, f"Request malformed. Detail: Bad JSON array input. ERROR: {exc}") from None


def _default(cdoc: dict) -> Any:
    default = cdoc.get("default")
    if default is None:
        return None
    try:
        return V.coerce(default, cdoc["type"])
    except V.CastError:
        return None


def _check_index_size(info: TableInfo, cname: str, cdoc: dict, value: Any) -> None:
    if not isinstance(value, str) or len(value) <= INDEX_LIMIT:
        return
    prefs = (cdoc.get("annotations") or {}).get(INDEX_PREFS) or {}
    if prefs.get("btree") is False:
        return
    size = len(zlib.compress(value.encode())) + 8
    if size > INDEX_LIMIT:
        raise HTTPError(400, f"Request malformed. Detail: index row size {size} exceeds btree version 4 "
                             f'maximum {INDEX_LIMIT} for index "{info.name}_{cname}_idx"')


def _json_items(req: Request, content_type: str) -> list:
    body = req.body()
    if content_type == "application/x-json-stream":
        try:
            return [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPError(400, f"Request malformed. Detail: Bad JSON input. {exc}") from None
    value = json_body(req)
    if not isinstance(value, list):
        raise HTTPError(400, "Request malformed. Detail: Bad JSON array input. ERROR: cannot call "
                             "json_array_elements on a non-array")
    return value


def json_body(req: Request) -> Any:
    try:
        return json.loads(req.body() or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPError(400, f"Request malformed. Detail: Bad JSON input. {exc}") from None


def _csv_items(req: Request, info: TableInfo) -> list[dict]:
    text = req.body().decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return []
    for name in header:
        if name not in info.columns:
            raise conflict(f"CSV column {name} not recognized.")
    missing = [c for c in info.columns if c not in SYSTEM_COLUMNS and c not in header]
    if missing:
        raise HTTPError(400, "Request malformed. Detail: Missing expected CSV columns: "
                             + ", ".join(f'"{c}"' for c in missing) + ".")
    items = []
    for record in reader:
        item = {}
        for name, value in zip(header, record):
            item[name] = None if value == "" else value
        items.append(item)
    return items

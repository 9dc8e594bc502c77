"""The emulated ERMrest service: catalogs, routing, model API and reads.

Writes live in :mod:`satchel.testing.ermrest_writes`. Every mutation runs
under the server lock in a :class:`~satchel.testing.ermrest_catalog.Txn`: changes are
applied to the in-memory tables with an undo log, persisted to SQLite in one
transaction on success, and undone on any error, so a batch is all or nothing.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import io
import json
import threading
import time
from typing import Any, Callable

import sqlalchemy as sa

from satchel.testing import rid as ridmod
from satchel.testing import state as S
from satchel.testing import values as V
from satchel.testing.catalog_def import deriva_ml_catalog, empty_catalog, seed_rows
from satchel.testing.ermrest_catalog import (
    Catalog, Txn, client_ids, conflict, decode_row, encode_row, encode_time, forbidden, render_rows,
)
from satchel.testing.ermrest_data import TableData, hashable, order_and_page, parse_limit, select
from satchel.testing.ermrest_model import TableInfo, fkey_parts, render_schema, render_table
from satchel.testing.ermrest_url import DataPath, bad_url, decode_atom, parse_data_path, parse_projection
from satchel.testing.ermrest_writes import INDEX_PREFS, LEASE, Writes, json_body
from satchel.testing.httpd import HTTPError, Request, Response

FEATURES = {
    "trs": True, "tcrs": True, "history_control": True, "implicit_fkey_index": True,
    "catalog_post_input": True, "catalog_alias": True,
    "indexing_preferences": {"btree": True, "btree_column_list": True, "gin_array": True, "trgm": True},
    "quantified_value_lists": True, "quantified_rid_lists": True, "rid_lease": True,
    "registry_catalog": True, "csv_array_json": True,
}


def _link(left: TableInfo, right: TableInfo) -> tuple[list[str], list[str]]:
    """(columns of ``right``, matching columns of ``left``) for the one FK between them."""
    found = []
    for fk in right.fkeys:
        cols, rs, rt, rcols, _ = fkey_parts(fk)
        if (rs, rt) == (left.schema, left.name):
            found.append((cols, rcols))
    for fk in left.fkeys:
        cols, rs, rt, rcols, _ = fkey_parts(fk)
        if (rs, rt) == (right.schema, right.name):
            found.append((rcols, cols))
    if len(found) != 1:
        raise conflict(f"{'Ambiguous' if found else 'No'} link between tables {left.name} and {right.name}.")
    return list(found[0][0]), list(found[0][1])


class Ermrest(Writes):
    """The ``/ermrest`` service over the catalogs held in ``state``."""

    def __init__(self, state: S.State, lock: threading.RLock, *, admin_ids: list[str], writer_ids: list[str],
                 request_timeout: float | None = 15.0, rid_lease: bool = True):
        self.state = state
        # rid_lease=False plays a server from before RID leases: no feature, no lease table to write
        self.features = dict(FEATURES, rid_lease=rid_lease)
        self.lock = lock
        self.request_timeout = request_timeout  # ERMrest's request_timeout_s: over it, 400 and rollback
        self.admin_ids = admin_ids
        self.catalogs: dict[str, Catalog] = {}
        self._last_now = dt.datetime.now(dt.timezone.utc)
        self._load()
        if not self.catalogs:
            self.create_catalog("1", owner=admin_ids, schemas=deriva_ml_catalog(), writers=writer_ids, seed=True)

    # --- persistence --------------------------------------------------------------

    def _load(self) -> None:
        with self.state.engine.connect() as conn:
            for rec in conn.execute(sa.select(S.catalogs).where(S.catalogs.c.deleted.is_(False))):
                cat = Catalog(rec.id, json.loads(rec.doc), rec.rid_seq, V.parse_timestamp(rec.last_change))
                self.catalogs[rec.id] = cat
            for rec in conn.execute(sa.select(S.rows)):
                cat = self.catalogs.get(rec.catalog)
                if cat is None:
                    continue
                info, td = cat.table(rec.schema_name, rec.table_name)
                td.add(decode_row(info, rec.data))
            for rec in conn.execute(sa.select(S.history).order_by(S.history.c.catalog, S.history.c.seq)):
                cat = self.catalogs.get(rec.catalog)
                if cat is None:
                    continue
                info = cat.model.table(rec.schema_name, rec.table_name)
                cat.history.append((V.parse_timestamp(rec.at), rec.schema_name, rec.table_name, rec.rid,
                                    None if rec.data is None else decode_row(info, rec.data)))
            for rec in conn.execute(sa.select(S.tombstones)):
                cat = self.catalogs.get(rec.catalog)
                if cat is not None:
                    cat.tombstones[rec.rid] = {
                        "schema_name": rec.schema_name, "table_name": rec.table_name,
                        "deleted_at": rec.deleted_at, "last_visible_at": rec.last_visible_at,
                    }

    def now(self) -> dt.datetime:
        now = dt.datetime.now(dt.timezone.utc)
        if now <= self._last_now:
            now = self._last_now + dt.timedelta(microseconds=1)
        self._last_now = now
        return now

    def _persist(self, txn: Txn, *, new: bool = False) -> None:
        cat = txn.catalog
        with self.state.begin() as conn:
            if new:
                conn.execute(sa.insert(S.catalogs).values(
                    id=cat.id, doc=json.dumps(cat.doc()), rid_seq=cat.rid_seq,
                    last_change=V.render_timestamp(cat.last_change), deleted=False))
            else:
                values = {"rid_seq": cat.rid_seq, "last_change": V.render_timestamp(cat.last_change)}
                if txn.model_changed:
                    values["doc"] = json.dumps(cat.doc())
                conn.execute(sa.update(S.catalogs).where(S.catalogs.c.id == cat.id).values(**values))
            deletes = [rid for rid, (_, row) in txn.dirty.items()]
            for i in range(0, len(deletes), 500):
                conn.execute(sa.delete(S.rows).where(
                    S.rows.c.catalog == cat.id, S.rows.c.rid.in_(deletes[i:i + 500])))
            encoded = {rid: None if row is None else encode_row(td.info, row)
                       for rid, (td, row) in txn.dirty.items()}  # once each: the row and its history entry
            inserts = [
                {"catalog": cat.id, "rid": rid, "schema_name": td.info.schema, "table_name": td.info.name,
                 "data": encoded[rid]}
                for rid, (td, row) in txn.dirty.items() if row is not None
            ]
            if inserts:
                conn.execute(sa.insert(S.rows), inserts)
            if txn.tombstones:
                conn.execute(sa.insert(S.tombstones), [dict(t, catalog=cat.id) for t in txn.tombstones])
            if txn.dirty:
                at = V.render_timestamp(txn.now)
                base = len(cat.history)
                conn.execute(sa.insert(S.history), [
                    {"catalog": cat.id, "seq": base + i, "at": at, "schema_name": td.info.schema,
                     "table_name": td.info.name, "rid": rid, "data": encoded[rid]}
                    for i, (rid, (td, _)) in enumerate(txn.dirty.items())
                ])

    def mutate(self, cat: Catalog, fn: Callable[[Txn], Any], *, new: bool = False) -> Any:
        """Run ``fn`` as one transaction; the snaptime moves even if nothing matched."""
        with self.lock:
            txn = Txn(cat, self.now())
            started = time.monotonic()
            try:
                result = fn(txn)
                if self.request_timeout is not None and time.monotonic() - started > self.request_timeout:
                    raise HTTPError(400, "Request malformed. Detail: Query run time limit exceeded.")
                cat.last_change = txn.now
                self._persist(txn, new=new)
            except BaseException:
                txn.rollback()
                raise
            for t in txn.tombstones:
                cat.tombstones[t["rid"]] = {k: v for k, v in t.items() if k != "rid"}
            for rid, (td, row) in txn.dirty.items():
                cat.history.append((txn.now, td.info.schema, td.info.name, rid, row))
            return result

    def create_catalog(self, cid: str | None, *, owner: list[str], schemas: dict, writers=(), seed=False) -> Catalog:
        with self.lock:
            if cid is None:
                cid = str(max([int(c) for c in self.catalogs if c.isdigit()] + [0]) + 1)
            acls = {"owner": list(owner), "write": [], "insert": list(writers), "update": list(writers),
                    "delete": list(writers), "select": ["*"], "enumerate": ["*"], "create": []}
            cat = Catalog(cid, {"acls": acls, "annotations": {
                INDEX_PREFS: {"btree": True, "trgm": True, "gin_array": True}}, "schemas": schemas},
                0, self.now())
            self.catalogs[cid] = cat

            def fill(txn: Txn):
                if seed:
                    for (s, t), items in seed_rows().items():
                        info, td = cat.table(s, t)
                        for item in items:
                            self._insert_rows(txn, cat, info, td, [item], client={"id": owner[0]},
                                              defaults={"ID", "URI"}, nondefaults=set(), skip=False)

            try:
                self.mutate(cat, fill, new=True)
            except BaseException:
                del self.catalogs[cid]
                raise
            return cat

    # --- routing ------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        parts = req.raw_path.split("/", 4)  # '', 'ermrest', 'catalog', '<cid>', rest
        if req.raw_path in ("/ermrest", "/ermrest/"):
            if req.method != "GET":
                raise HTTPError(405, "Method not allowed.")
            return Response.json(200, {"version": "0.5.0", "features": self.features})
        if len(parts) < 3 or parts[2] != "catalog":
            raise HTTPError(404, f"Resource not found. Detail: {req.raw_path}")
        if len(parts) == 3 or (len(parts) == 4 and parts[3] == ""):
            if req.method == "POST":
                return self._post_catalog(req)
            raise HTTPError(405, "Method not allowed.")
        cid_rev = decode_atom(parts[3])
        cid, _, rev = cid_rev.partition("@")
        cat = self.catalogs.get(cid)
        if cat is None:
            raise HTTPError(404, f"Resource not found. Detail: catalog {cid}")
        rest = parts[4] if len(parts) > 4 else ""
        req.snapshot = None
        if rev:
            if req.method not in ("GET", "HEAD"):
                raise forbidden("modification to catalog at previous revision")
            with self.lock:
                req.snapshot = cat.snapshot_time(rev)
        arrived = time.monotonic() if req.method not in ("GET", "HEAD") else None
        with self.lock:
            if arrived is None:
                return self._answer(req, cat, rest)
            cat.check_serializable(arrived)
            started, before = time.monotonic(), cat.last_change
            try:
                return self._answer(req, cat, rest)
            finally:
                if cat.last_change != before:
                    cat.committed(arrived, time.monotonic() - started)

    def _answer(self, req: Request, cat: Catalog, rest: str) -> Response:
        etag = self._etag(req, cat, rest)
        self._preconditions(req, etag)
        response = self._route(req, cat, rest)
        if response.status < 300 or response.status == 304:
            response.headers.append(("ETag", self._etag(req, cat, rest)))
        return response

    def _route(self, req: Request, cat: Catalog, rest: str) -> Response:
        if rest == "":
            return self._catalog_resource(req, cat)
        api, _, path = rest.partition("/")
        if api == "schema":
            return self._schema(req, cat, path)
        if api == "entity_rid":
            return self._entity_rid(req, cat, path)
        if api == "history":
            first = encode_time(cat.history[0][0]) if cat.history else cat.snaptime
            return Response.json(200, {"snaprange": [first, cat.snaptime], "amendver": None})
        if api in ("entity", "attribute", "attributegroup", "aggregate"):
            return self._data(req, cat, api, path)
        raise HTTPError(404, f"Resource not found. Detail: {api}")

    # --- catalog-wide ETags (§1.9) --------------------------------------------------

    @staticmethod
    def _etag(req: Request, cat: Catalog, rest: str) -> str:
        roles = ",".join(sorted(client_ids(req.client))).encode()
        digest = base64.urlsafe_b64encode(hashlib.md5(roles).digest()).decode()
        if rest == "":
            return f'"{digest};*;{cat.snaptime}"'
        accept = "*" if rest.startswith("schema") else (req.header("Accept") or "*/*")
        return f'"{digest};{accept};{V.render_timestamp_space(cat.last_change)}"'

    @staticmethod
    def _preconditions(req: Request, etag: str) -> None:
        reading = req.method in ("GET", "HEAD")
        inm = req.header("If-None-Match")
        if inm is not None:
            tags = [t.strip() for t in inm.split(",")]
            if "*" in tags or etag in tags:
                if reading:
                    raise HTTPError(304, "", {"ETag": etag})
                raise HTTPError(412, "Resource state does not match requested preconditions.", {"ETag": etag})
        im = req.header("If-Match")
        if im is not None:
            tags = [t.strip() for t in im.split(",")]
            if "*" not in tags and etag not in tags:
                raise HTTPError(412, "Resource state does not match requested preconditions.", {"ETag": etag})

    def _post_catalog(self, req: Request) -> Response:
        if req.client is None:
            raise HTTPError(401, "Access requires authentication. Detail: catalog")
        if not client_ids(req.client) & set(self.admin_ids):
            raise forbidden("catalog creation")
        cat = self.create_catalog(None, owner=[req.client["id"]], schemas=empty_catalog())
        return Response.json(201, {"id": cat.id}, [("Location", f"/ermrest/catalog/{cat.id}")])

    def _catalog_resource(self, req: Request, cat: Catalog) -> Response:
        if req.method == "GET":
            rights = {"owner": cat.is_owner(req.client), "create": cat.is_owner(req.client)}
            return Response.json(200, {
                "id": cat.id, "rights": rights, "acls": cat.acls,
                "snaptime": encode_time(req.snapshot) if req.snapshot else cat.snaptime,
                "annotations": cat.annotations, "features": self.features, "is_persistent": True,
            })
        if req.method == "DELETE":
            self._require_owner(req, cat)
            with self.lock, self.state.begin() as conn:
                conn.execute(sa.update(S.catalogs).where(S.catalogs.c.id == cat.id).values(deleted=True))
                del self.catalogs[cat.id]
            return Response(204)
        raise HTTPError(405, "Method not allowed.")

    def _require_owner(self, req: Request, cat: Catalog) -> None:
        if req.client is None:
            raise HTTPError(401, "Access requires authentication. Detail: catalog")
        if not cat.is_owner(req.client):
            raise forbidden("owner access on catalog")

    # --- model --------------------------------------------------------------------

    def _schema(self, req: Request, cat: Catalog, path: str) -> Response:
        segs = [decode_atom(s) for s in path.split("/")] if path else []
        if segs and segs[-1] == "":
            segs = segs[:-1]
        rights = cat.rights(req.client)
        with self.lock:
            if req.method == "GET":
                if not segs:
                    return Response.json(200, {
                        "snaptime": cat.snaptime, "annotations": cat.annotations, "rights": {
                            "owner": rights["owner"], "create": rights["owner"]},
                        "features": self.features, "acls": cat.acls,
                        "schemas": {n: render_schema(s, rights) for n, s in cat.model.schemas.items()},
                    })
                sdoc = cat.model.schemas.get(segs[0])
                if sdoc is None:
                    raise HTTPError(404, f"Resource not found. Detail: schema {segs[0]}")
                if len(segs) == 1:
                    return Response.json(200, render_schema(sdoc, rights))
                if segs[1] == "table" and len(segs) >= 3:
                    tdoc = sdoc["tables"].get(segs[2])
                    if tdoc is None:
                        raise HTTPError(404, f"Resource not found. Detail: table {segs[2]}")
                    return Response.json(200, render_table(tdoc, rights))
                raise HTTPError(404, f"Resource not found. Detail: {path}")
            if req.method == "POST":
                self._require_owner(req, cat)
                body = json_body(req) if req.content_length else None

                def change(txn: Txn):
                    txn.model_changed = True
                    if not segs and isinstance(body, list):  # a batch of model elements
                        out = []
                        for doc in body:
                            if not isinstance(doc, dict) or "schema_name" not in doc:
                                raise HTTPError(400, "Request malformed. Detail: model elements need schema_name.")
                            if "table_name" in doc:
                                cat.model.add_table(doc["schema_name"], doc)
                                cat.sync_tables()
                                out.append(render_table(
                                    cat.model.schemas[doc["schema_name"]]["tables"][doc["table_name"]], rights))
                            else:
                                cat.model.add_schema(doc["schema_name"], doc)
                                cat.sync_tables()
                                out.append(render_schema(cat.model.schemas[doc["schema_name"]], rights))
                        return Response.json(201, out)
                    if not segs:
                        for name, sdoc in (body or {}).get("schemas", {}).items():
                            if name in cat.model.schemas:
                                for tdoc in (sdoc.get("tables") or {}).values():
                                    cat.model.add_table(name, tdoc)
                            else:
                                cat.model.add_schema(name, sdoc)
                        cat.sync_tables()
                        return Response.json(201, body or {})
                    if len(segs) == 1:
                        cat.model.add_schema(segs[0], body)
                        cat.sync_tables()
                        return Response(201)
                    if len(segs) == 2 and segs[1] == "table":
                        if segs[0] not in cat.model.schemas:
                            raise HTTPError(404, f"Resource not found. Detail: schema {segs[0]}")
                        tdoc = cat.model.add_table(segs[0], body or {})
                        cat.sync_tables()
                        return Response.json(201, render_table(tdoc, cat.rights(req.client)))
                    raise HTTPError(405, "Method not allowed.")

                snapshot = json.loads(json.dumps(cat.model.schemas))
                try:
                    return self.mutate(cat, change)
                except BaseException:
                    cat.model.schemas.clear()
                    cat.model.schemas.update(snapshot)
                    cat.model.reindex()
                    cat.sync_tables()
                    raise
            raise HTTPError(405, "Method not allowed.")

    # --- entity_rid ---------------------------------------------------------------

    def _entity_rid(self, req: Request, cat: Catalog, path: str) -> Response:
        given = decode_atom(path.split("@")[0])
        canonical = ridmod.canonical(given)
        with self.lock:
            for (s, t), td in cat.data.items():
                for candidate in (given, canonical):
                    if candidate and candidate in td.rows:
                        return Response.json(200, {"RID": candidate, "schema_name": s, "table_name": t})
            for candidate in (given, canonical):
                if candidate and candidate in cat.tombstones:
                    tomb = cat.tombstones[candidate]
                    last = V.parse_timestamp(tomb["last_visible_at"])
                    return Response.json(200, {
                        "RID": candidate, "schema_name": tomb["schema_name"], "table_name": tomb["table_name"],
                        "deleted_at": tomb["deleted_at"], "last_visible_at": tomb["last_visible_at"],
                        "last_visible_snaptime": encode_time(last),
                    })
        raise HTTPError(404, f"Resource not found. Detail: entity with RID={given}")

    # --- data APIs ----------------------------------------------------------------

    def _data(self, req: Request, cat: Catalog, api: str, raw: str) -> Response:
        if req.query_string and "@" in req.query_string:
            raise bad_url("@")
        with_tail = api != "entity"
        path = parse_data_path(raw, with_tail=with_tail)
        info, td = cat.table(path.table.schema, path.table.table)
        if req.snapshot is not None:
            td = cat.table_at(info, req.snapshot)
        method = req.method
        if path.prior:
            if method not in ("GET", "HEAD"):
                raise HTTPError(400, "Request malformed. Detail: the emulator writes only through single-table paths.")
            td = self._joined(req, cat, path, info, td)
        if method in ("POST", "PUT", "DELETE") and req.client is None:
            raise HTTPError(401, f"Access requires authentication. Detail: {api}")
        if api == "entity":
            if method in ("GET", "HEAD"):
                return self._get(req, cat, info, td, path, None)
            if method == "POST":
                if path.filters:
                    raise HTTPError(400, "Request malformed. Detail: entity POST does not take filters.")
                return self._post_entity(req, cat, info, td)
            if method == "PUT":
                return self._put_entity(req, cat, info, td)
            if method == "DELETE":
                return self._delete(req, cat, info, td, path)
        elif api == "attribute":
            if method in ("GET", "HEAD"):
                return self._get(req, cat, info, td, path, parse_projection(path.tail))
        elif api == "attributegroup":
            if method in ("GET", "HEAD"):
                keys, _, targets = path.tail.partition(";")
                proj = parse_projection(keys + ("," + targets if targets else ""))
                return self._get(req, cat, info, td, path, proj, distinct=True)
            if method == "PUT":
                return self._put_attributegroup(req, cat, info, td, path)
        elif api == "aggregate":
            if method in ("GET", "HEAD"):
                return self._aggregate(req, cat, info, td, path)
        raise HTTPError(405, "Method not allowed.")

    def _joined(self, req: Request, cat: Catalog, path: DataPath, info: TableInfo, td: TableData) -> TableData:
        """The final table's rows linked, step by step through foreign keys, to the filtered earlier tables."""
        steps = [*path.prior, (path.table, [])]
        prev_info = None
        linked: list[dict] = []
        for ref, filters in steps:
            cur_info, cur_td = cat.table(ref.schema, ref.table)
            if ref is path.table:
                cur_td = td
            elif req.snapshot is not None:
                cur_td = cat.table_at(cur_info, req.snapshot)
            rows = select(cur_td, filters, self._visible(cat, cur_info, req.client))
            if prev_info is not None:
                mine, theirs = _link(prev_info, cur_info)
                wanted = {tuple(hashable(r.get(c)) for c in theirs) for r in linked}
                rows = [r for r in rows if tuple(hashable(r.get(c)) for c in mine) in wanted]
            prev_info, linked = cur_info, rows
        view = TableData(info)
        for row in linked:
            view.add(row)
        return view

    def _visible(self, cat: Catalog, info: TableInfo, client):
        if (info.schema, info.name) == LEASE and not cat.is_owner(client):
            me = client["id"] if client else None
            return lambda row: row.get("RCB") == me
        return None

    def _get(self, req, cat, info, td, path: DataPath, proj, distinct=False) -> Response:
        if not cat.allowed(req.client, "select"):
            if req.client is None:
                raise HTTPError(401, "Access requires authentication. Detail: select")
            raise forbidden(f"select access on {info.label}")
        limit = parse_limit(req.arg("limit"))
        rows = select(td, path.filters, self._visible(cat, info, req.client))
        if proj is None:
            rows = order_and_page(info, rows, path.modifiers, limit)
            out = render_rows(info, rows)
        else:
            items = []
            for alias, col in proj.items:
                if col == "*":
                    items += [(c, c) for c in info.columns]
                else:
                    info.column(col)
                    items.append((alias or col, col))
            rows = order_and_page(info, rows, path.modifiers, None if distinct else limit)
            out = [{name: V.render(r.get(col)) for name, col in items} for r in rows]
            if distinct:
                seen, uniq = set(), []
                for o in out:
                    k = json.dumps(o, sort_keys=True)
                    if k not in seen:
                        seen.add(k)
                        uniq.append(o)
                out = uniq if limit is None else uniq[:limit]
        return self._render(req, out, list(out[0]) if out else list(info.columns))

    def _render(self, req: Request, out: list[dict], columns: list[str]) -> Response:
        accept = req.header("Accept", "") or ""
        headers = [("Vary", "accept,cookie")]
        if "text/csv" in accept:
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(columns)
            for o in out:
                writer.writerow(["" if o.get(c) is None else (
                    json.dumps(o[c]) if isinstance(o[c], (list, dict)) else
                    (str(o[c]).lower() if isinstance(o[c], bool) else str(o[c]))) for c in columns])
            return Response(200, buf.getvalue().encode(), [("Content-Type", "text/csv"), *headers])
        if "application/x-json-stream" in accept:
            body = "".join(json.dumps(o) + "\n" for o in out).encode()
            return Response(200, body, [("Content-Type", "application/x-json-stream"), *headers])
        return Response.json(200, out, headers)

    def _aggregate(self, req, cat, info, td, path) -> Response:
        rows = select(td, path.filters, self._visible(cat, info, req.client))
        result = {}
        for raw in path.tail.split(","):
            if ":=" not in raw:
                raise bad_url(raw)
            alias, expr = raw.split(":=", 1)
            fn, _, arg = expr.partition("(")
            col = decode_atom(arg.rstrip(")"))
            vals = [r.get(col) for r in rows] if col != "*" else [1 for _ in rows]
            nonnull = [v for v in vals if v is not None]
            if fn == "cnt":
                value = len(nonnull)
            elif fn == "cnt_d":
                value = len({hashable(v) for v in nonnull})
            elif fn == "min":
                value = V.render(min(nonnull)) if nonnull else None
            elif fn == "max":
                value = V.render(max(nonnull)) if nonnull else None
            elif fn in ("array", "array_d"):
                value = [V.render(v) for v in vals]
            else:
                raise HTTPError(400, f"Request malformed. Detail: unknown aggregate {fn}")
            result[decode_atom(alias)] = value
        return Response.json(200, [result])

    # --- insert -------------------------------------------------------------------

    def _require(self, req, cat, info, right) -> None:
        if (info.schema, info.name) == LEASE and right in ("update", "delete"):
            return  # lessee access, enforced per row by visibility
        if not cat.allowed(req.client, right):
            raise forbidden(f"{right} access on {info.label}")

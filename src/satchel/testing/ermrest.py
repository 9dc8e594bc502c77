"""The emulated ERMrest service: catalogs, model API and data APIs.

Every mutation runs under the server lock in a :class:`Txn`: changes are
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
import zlib
from typing import Any, Callable

import sqlalchemy as sa

from satchel.testing import rid as ridmod
from satchel.testing import state as S
from satchel.testing import values as V
from satchel.testing.catalog_def import SYSTEM_COLUMNS, deriva_ml_catalog, empty_catalog, seed_rows
from satchel.testing.ermrest_data import TableData, hashable, order_and_page, parse_limit, select
from satchel.testing.ermrest_model import Model, TableInfo, fkey_parts, render_schema, render_table
from satchel.testing.ermrest_url import DataPath, bad_url, decode_atom, parse_data_path, parse_projection
from satchel.testing.httpd import HTTPError, Request, Response

FEATURES = {
    "trs": True, "tcrs": True, "history_control": True, "implicit_fkey_index": True,
    "catalog_post_input": True, "catalog_alias": True,
    "indexing_preferences": {"btree": True, "btree_column_list": True, "gin_array": True, "trgm": True},
    "quantified_value_lists": True, "quantified_rid_lists": True, "rid_lease": True,
    "registry_catalog": True, "csv_array_json": True,
}
LEASE = ("public", "ERMrest_RID_Lease")
INDEX_LIMIT = 2704
_INDEX_PREFS = "tag:isrd.isi.edu,2018:indexing-preferences"


def conflict(detail: str) -> HTTPError:
    return HTTPError(409, f"Request conflicts with state of server. Detail: {detail}")


def model_violation(detail: str) -> HTTPError:
    return HTTPError(409, f"Input data violates model. ERROR: {detail}")


def forbidden(detail: str) -> HTTPError:
    return HTTPError(403, f"Access forbidden. Detail: {detail}")


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def encode_time(when: dt.datetime) -> str:
    """A time as ERMrest writes revisions: urlb32 of microseconds since the epoch."""
    return ridmod.encode((when - _EPOCH) // dt.timedelta(microseconds=1))


def client_ids(client: dict | None) -> set[str]:
    if not client:
        return set()
    ids = {client["id"]}
    ids.update(a["id"] for a in client.get("attributes", []))
    return ids


class Catalog:
    """One catalog: model, rows, RID sequence, deletion records."""

    def __init__(self, cid: str, doc: dict, rid_seq: int, last_change: dt.datetime):
        self.id = cid
        self.acls: dict[str, list[str]] = doc["acls"]
        self.annotations: dict = doc.get("annotations", {})
        self.rid_seq = rid_seq
        self.last_change = last_change
        self.model = Model(doc["schemas"], self.next_rid)
        self.data: dict[tuple[str, str], TableData] = {
            (t.schema, t.name): TableData(t) for t in self.model.tables()
        }
        self.tombstones: dict[str, dict] = {}
        #: every row change: (time, schema, table, RID, row or None when deleted)
        self.history: list[tuple[dt.datetime, str, str, str, dict | None]] = []

    def next_rid(self) -> str:
        self.rid_seq += 1
        return ridmod.encode(self.rid_seq)

    def doc(self) -> dict:
        return {"acls": self.acls, "annotations": self.annotations, "schemas": self.model.schemas}

    def table(self, schema: str | None, name: str) -> tuple[TableInfo, TableData]:
        info = self.model.table(schema, name)
        return info, self.data[(info.schema, info.name)]

    def sync_tables(self) -> None:
        for info in self.model.tables():
            key = (info.schema, info.name)
            if key in self.data:
                self.data[key].rebind(info)
            else:
                self.data[key] = TableData(info)

    @property
    def snaptime(self) -> str:
        return encode_time(self.last_change)

    def snapshot_time(self, rev: str) -> dt.datetime:
        """The change time a ``@rev`` denotes: clamped to the latest change at or before it."""
        try:
            when = _EPOCH + dt.timedelta(microseconds=ridmod.decode(rev))
        except (ValueError, OverflowError):
            raise HTTPError(400, f"Request malformed. Detail: Invalid revision {rev!r}.") from None
        changes = [h[0] for h in self.history if h[0] <= when]
        if not changes:
            raise conflict(f"Requested catalog revision {rev} is prior to any known catalog state.")
        return max(changes)

    def table_at(self, info: TableInfo, when: dt.datetime) -> TableData:
        """The rows of ``info`` as they were at ``when``, rebuilt from the history."""
        td = TableData(info)
        for at, s, t, rid, row in self.history:
            if at > when:
                break
            if (s, t) != (info.schema, info.name):
                continue
            td.remove(rid)
            if row is not None:
                td.add(row)
        return td

    # --- rights ----------------------------------------------------------------

    def is_owner(self, client) -> bool:
        return bool(client_ids(client) & set(self.acls.get("owner", [])))

    def allowed(self, client, right: str) -> bool:
        if self.is_owner(client):
            return True
        acl = set(self.acls.get(right, []))
        if right in ("insert", "update", "delete"):
            acl |= set(self.acls.get("write", []))
        if right == "select":
            acl |= set(self.acls.get("write", [])) | set(self.acls.get("insert", []))
        if "*" in acl:
            return True
        return bool(client_ids(client) & acl)

    def rights(self, client) -> dict:
        r = {k: self.allowed(client, k) for k in ("select", "insert", "update", "delete")}
        r["owner"] = self.is_owner(client)
        return r


class Txn:
    """Changes of one request with an undo log; persisted on success."""

    def __init__(self, catalog: Catalog, now: dt.datetime):
        self.catalog = catalog
        self.now = now
        self._undo: list[Callable[[], None]] = []
        self.dirty: dict[str, tuple[TableData, dict | None]] = {}
        self.tombstones: list[dict] = []
        self.model_changed = False

    def insert(self, td: TableData, row: dict) -> None:
        td.add(row)
        self._undo.append(lambda: td.remove(row["RID"]))
        self.dirty[row["RID"]] = (td, row)

    def delete(self, td: TableData, rid: str) -> dict:
        row = td.remove(rid)
        assert row is not None
        self._undo.append(lambda: td.add(row))
        self.dirty[rid] = (td, None)
        return row

    def replace(self, td: TableData, new: dict) -> None:
        old = td.remove(new["RID"])

        def undo():
            td.remove(new["RID"])
            td.add(old)

        td.add(new)
        self._undo.append(undo)
        self.dirty[new["RID"]] = (td, new)

    def rollback(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


def encode_row(info: TableInfo, row: dict) -> str:
    return json.dumps({k: V.render(v) for k, v in row.items()})


def decode_row(info: TableInfo, text: str) -> dict:
    raw = json.loads(text)
    out = {}
    for k, v in raw.items():
        cdoc = info.columns.get(k)
        out[k] = V.coerce(v, cdoc["type"]) if cdoc else v
    return out


def render_rows(info: TableInfo, rows: list[dict]) -> list[dict]:
    cols = list(info.columns)
    return [{c: V.render(r.get(c)) for c in cols} for r in rows]


def echo_with_duplicates(info: TableInfo, rows: list[dict]) -> bytes:
    """ERMrest's insert echo: every system column appears twice in each object."""
    parts = []
    for r in rows:
        items = [(c, r.get(c)) for c in info.columns] + [(c, r.get(c)) for c in SYSTEM_COLUMNS]
        parts.append("{" + ",".join(f"{json.dumps(k)}:{json.dumps(V.render(v))}" for k, v in items) + "}")
    return ("[" + ",".join(parts) + "]").encode()


class Ermrest:
    """The ``/ermrest`` service over the catalogs held in ``state``."""

    def __init__(self, state: S.State, lock: threading.RLock, *, admin_ids: list[str], writer_ids: list[str]):
        self.state = state
        self.lock = lock
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
            inserts = [
                {"catalog": cat.id, "rid": rid, "schema_name": td.info.schema, "table_name": td.info.name,
                 "data": encode_row(td.info, row)}
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
                     "table_name": td.info.name, "rid": rid, "data": None if row is None else encode_row(td.info, row)}
                    for i, (rid, (td, row)) in enumerate(txn.dirty.items())
                ])

    def mutate(self, cat: Catalog, fn: Callable[[Txn], Any], *, new: bool = False) -> Any:
        """Run ``fn`` as one transaction; the snaptime moves even if nothing matched."""
        with self.lock:
            txn = Txn(cat, self.now())
            try:
                result = fn(txn)
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
                _INDEX_PREFS: {"btree": True, "trgm": True, "gin_array": True}}, "schemas": schemas},
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
            return Response.json(200, {"version": "0.5.0", "features": FEATURES})
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
        with self.lock:
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
                "annotations": cat.annotations, "features": FEATURES, "is_persistent": True,
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
                        "features": FEATURES, "acls": cat.acls,
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
                body = _json_body(req) if req.content_length else None

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

    def _post_entity(self, req: Request, cat: Catalog, info: TableInfo, td: TableData) -> Response:
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
    prefs = (cdoc.get("annotations") or {}).get(_INDEX_PREFS) or {}
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
    value = _json_body(req)
    if not isinstance(value, list):
        raise HTTPError(400, "Request malformed. Detail: Bad JSON array input. ERROR: cannot call "
                             "json_array_elements on a non-array")
    return value


def _json_body(req: Request) -> Any:
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

"""One emulated catalog's in-memory state, its transactions and row encoding."""

from __future__ import annotations

import collections
import datetime as dt
import json
import time
from typing import Callable

from satchel.testing import rid as ridmod
from satchel.testing import values as V
from satchel.testing.catalog_def import SYSTEM_COLUMNS
from satchel.testing.ermrest_data import TableData
from satchel.testing.ermrest_model import Model, TableInfo
from satchel.testing.httpd import HTTPError


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
        #: recent write transactions: (arrived, seconds they ran, committed at), monotonic clock
        self.recent_writes: collections.deque[tuple[float, float, float]] = collections.deque(maxlen=256)

    def check_serializable(self, arrived: float) -> None:
        """503 ``Transaction aborted.`` for a write that overlapped a write that committed first (§1.8).

        On ERMrest every write updates the catalog's change bookkeeping, so of two write transactions
        that overlap in time PostgreSQL aborts the later to commit, whatever tables they touch. Here
        writes run one at a time; a write that arrived while another would still have been running on
        a real server (which runs them side by side: its arrival plus its own run time is later than
        ours), and that committed while we waited, would have made ours fail.
        """
        for other_arrived, ran, committed in self.recent_writes:
            if committed > arrived and other_arrived + ran > arrived:
                raise HTTPError(503, "The service is temporarily unavailable. Detail: Transaction aborted.")

    def committed(self, arrived: float, ran: float) -> None:
        self.recent_writes.append((arrived, ran, time.monotonic()))

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

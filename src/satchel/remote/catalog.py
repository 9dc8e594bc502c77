"""ERMrest catalog client: discovery, model, paged reads, batched writes, RID leases.

Idempotency, and so retries, follow the protocol: reads, ``onconflict=skip``
inserts, attributegroup PUTs, deletes and lease requests (which use
``onconflict=skip`` and are recovered by reading them back) are repeated on
transient errors; a plain insert is sent once.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Iterator, Sequence

from satchel import errors
from satchel.remote import urls
from satchel.remote.model import SYSTEM_COLUMNS, CatalogModel
from satchel.remote.session import RemoteSession

MAX_BATCH_ROWS = 1000
MAX_BATCH_BYTES = 250 * 1024
DEFAULT_PAGE = 1000
LEASE_TABLE = ("public", "ERMrest_RID_Lease")


class CatalogClient:
    """One ERMrest catalog on a server reached through a :class:`RemoteSession`."""

    def __init__(self, session: RemoteSession, catalog_id: str | int = "1", *, snaptime: str | None = None):
        self.session = session
        self.catalog_id = str(catalog_id)
        self.snaptime_pin = snaptime
        self.base = f"/ermrest/catalog/{urls.q(self.catalog_id)}"
        if snaptime:
            self.base += f"@{urls.q(snaptime)}"

    def __repr__(self) -> str:
        pin = f", at={self.snaptime_pin!r}" if self.snaptime_pin else ""
        return f"CatalogClient({self.session.url!r}, catalog={self.catalog_id!r}{pin})"

    def at(self, snaptime: str) -> "CatalogClient":
        """A read-only view of the catalog as it was at ``snaptime`` (writes there get 403)."""
        return CatalogClient(self.session, self.catalog_id, snaptime=snaptime)

    # --- service and catalog --------------------------------------------------------

    def discover(self) -> dict:
        """``GET /ermrest/``: the service version and features."""
        return self.session.json("GET", "/ermrest/", idempotent=True)

    def info(self) -> dict:
        """``GET /ermrest/catalog/N``: id, snaptime, rights, acls, annotations."""
        return self.session.json("GET", self.base, idempotent=True)

    def snaptime(self) -> str:
        """The catalog's snaptime; it moves on every mutation (a cheap change check)."""
        return self.info()["snaptime"]

    def model(self) -> CatalogModel:
        return CatalogModel.from_json(self.schema_document())

    def schema_document(self) -> dict:
        return self.session.json("GET", f"{self.base}/schema", idempotent=True)

    def entity_rid(self, rid: str) -> dict | None:
        """Where a RID lives (or lived: ``deleted_at``), or None when unknown."""
        try:
            return self.session.json("GET", f"{self.base}/entity_rid/{urls.q(rid)}", idempotent=True)
        except errors.NotFound:
            return None

    # --- reads ------------------------------------------------------------------------

    def get(self, schema: str, table: str, *filters: str, limit: int | None = DEFAULT_PAGE,
            sort: Sequence[str] | None = None, after: Sequence[Any] | None = None) -> list[dict]:
        """One page of rows; ``filters`` come from :mod:`satchel.remote.urls` (``eq``, ``geq``...)."""
        path = f"{self.base}/entity/{urls.table_path(schema, table)}"
        for f in filters:
            path += "/" + f
        if sort is not None:
            path += urls.page_modifiers(sort, after)
        return self.session.json("GET", path, idempotent=True,
                                 params={"limit": "none" if limit is None else str(limit)})

    def iter_rows(self, schema: str, table: str, *filters: str, sort: Sequence[str] = ("RID",),
                  page_size: int = DEFAULT_PAGE, after: Sequence[Any] | None = None) -> Iterator[dict]:
        """All matching rows, page by page with ``@sort(...)@after(...)``; ``sort`` must end with RID."""
        if not sort or sort[-1] != "RID":
            raise ValueError("sort keys must end with 'RID' so pages never overlap or skip rows")
        names = [c[: -len("::desc::")] if c.endswith("::desc::") else c for c in sort]
        while True:
            page = self.get(schema, table, *filters, limit=page_size, sort=sort, after=after)
            yield from page
            if len(page) < page_size:
                return
            after = [page[-1].get(c) for c in names]

    def rids(self, schema: str, table: str, *filters: str, page_size: int = 10_000) -> set[str]:
        """The RIDs of all matching rows (paged on ``@sort(RID)`` through the attribute API)."""
        return {r["RID"] for r in self.project(schema, table, (), *filters, page_size=page_size)}

    def project(self, schema: str, table: str, columns: Sequence[str], *filters: str,
                page_size: int = 10_000) -> Iterator[dict]:
        """``RID`` plus ``columns`` of all matching rows, through the attribute API, paged on ``@sort(RID)``.

        Much lighter than entity reads when only keys are wanted (a sweep for
        rows deleted on the server reads every key of a table)."""
        head = f"{self.base}/attribute/{urls.table_path(schema, table)}" + "".join("/" + f for f in filters)
        projection = ",".join(urls.q(c) for c in ("RID", *columns))
        after = None
        while True:
            page = self.session.json("GET", f"{head}/{projection}{urls.page_modifiers(['RID'], after)}",
                                     idempotent=True, params={"limit": str(page_size)})
            yield from page
            if len(page) < page_size:
                return
            after = [page[-1]["RID"]]

    def count(self, schema: str, table: str, *filters: str) -> int:
        """``cnt(*)`` of the matching rows: one aggregate request, whatever the table's size."""
        path = f"{self.base}/aggregate/{urls.table_path(schema, table)}" + "".join("/" + f for f in filters)
        (row,) = self.session.json("GET", f"{path}/n:=cnt(*)", idempotent=True)
        return int(row["n"])

    def deleted_since(self, schema: str, table: str, snaptime: str) -> set[str]:
        """RIDs present at ``snaptime`` and gone now (RMT filters cannot see deletions)."""
        return self.at(snaptime).rids(schema, table) - self.rids(schema, table)

    def changed_since(self, schema: str, table: str, rmt: str | None, *, page_size: int = DEFAULT_PAGE
                      ) -> Iterator[dict]:
        """Rows with ``RMT >= rmt`` (all rows when None), in (RMT, RID) order, for incremental pulls."""
        filters = [urls.geq("RMT", rmt)] if rmt else []
        return self.iter_rows(schema, table, *filters, sort=("RMT", "RID"), page_size=page_size)

    def lookup(self, schema: str, table: str, column: str, values: Iterable[Any],
               columns: Sequence[str] | None = None) -> list[dict]:
        """Rows whose ``column`` is any of ``values``, in as few requests as :data:`urls.MAX_PATH` allows."""
        values = list(dict.fromkeys(values))
        if not values:
            return []
        api = "attribute" if columns else "entity"
        head = f"{self.base}/{api}/{urls.table_path(schema, table)}/"
        tail = "/" + ",".join(urls.q(c) for c in columns) if columns else ""
        out: list[dict] = []
        for chunk in urls.split_any(column, values, around=head + tail):
            out += self.session.json("GET", head + urls.any_of(column, chunk) + tail, idempotent=True,
                                     params={"limit": "none"})
        return out

    # --- writes ---------------------------------------------------------------------

    def insert(self, schema: str, table: str, rows: Sequence[dict], *, defaults: Iterable[str] = (),
               nondefaults: Iterable[str] = (), on_conflict_skip: bool = False,
               max_rows: int = MAX_BATCH_ROWS, max_bytes: int = MAX_BATCH_BYTES) -> list[dict]:
        """Insert ``rows`` in batches; returns the rows the server stored (skipped ones are absent).

        Retried only when a repeat cannot duplicate a row: ``on_conflict_skip``
        inserts, and inserts of client-chosen RIDs (``nondefaults`` with ``RID``),
        whose replay after a lost answer is refused (403 for a consumed lease, 409
        for a taken RID) rather than stored twice: look the rows up to settle it.
        A plain insert whose answer was lost is not repeated.
        """
        nondefaults = list(dict.fromkeys(nondefaults))
        default_cols = list(dict.fromkeys([*defaults, *(c for c in SYSTEM_COLUMNS if c not in nondefaults)]))
        params = {"defaults": ",".join(urls.q(c) for c in default_cols)}
        if nondefaults:
            params["nondefaults"] = ",".join(urls.q(c) for c in nondefaults)
        if on_conflict_skip:
            params["onconflict"] = "skip"
        query = "&".join(f"{k}={v}" for k, v in params.items())
        path = f"{self.base}/entity/{urls.table_path(schema, table)}?{query}"
        out: list[dict] = []
        for batch in _batches(rows, max_rows, max_bytes):
            body = batch.encode()
            out += self.session.json("POST", path, idempotent=on_conflict_skip or "RID" in nondefaults, content=body,
                                     headers={"Content-Type": "application/json"})
        return out

    def update(self, schema: str, table: str, rows: Sequence[dict], *, key: Sequence[str] = ("RID",),
               columns: Sequence[str] | None = None, max_rows: int = MAX_BATCH_ROWS,
               max_bytes: int = MAX_BATCH_BYTES) -> list[dict]:
        """Update ``columns`` of rows matched on ``key`` (attributegroup PUT; retried).

        Returns the echoed input rows that matched; a row missing from the result
        matched nothing (deleted, or another writer won a ``RID,RMT`` check).
        """
        if not rows:
            return []
        if columns is None:
            columns = [c for c in rows[0] if c not in key and c not in SYSTEM_COLUMNS]
        if not columns:
            raise ValueError("nothing to update: give columns other than the key")
        path = (f"{self.base}/attributegroup/{urls.table_path(schema, table)}/"
                f"{','.join(urls.q(c) for c in key)};{','.join(urls.q(c) for c in columns)}")
        out: list[dict] = []
        for batch in _batches([{c: r.get(c) for c in (*key, *columns)} for r in rows], max_rows, max_bytes):
            out += self.session.json("PUT", path, idempotent=True, content=batch.encode(),
                                     headers={"Content-Type": "application/json"})
        return out

    def delete(self, schema: str, table: str, *filters: str) -> bool:
        """Delete matching rows; False when nothing matched (404, e.g. already deleted)."""
        if not filters:
            raise ValueError("refusing to delete a whole table: give at least one filter")
        path = f"{self.base}/entity/{urls.table_path(schema, table)}/" + "/".join(filters)
        try:
            self.session.call("DELETE", path, idempotent=True, expect=(204, 200))
        except errors.NotFound:
            return False
        return True

    def delete_rids(self, schema: str, table: str, rids: Iterable[str]) -> None:
        """Delete rows by RID; RIDs already gone are fine."""
        head = f"{self.base}/entity/{urls.table_path(schema, table)}/"
        for chunk in urls.split_any("RID", list(rids), around=head):
            self.delete(schema, table, urls.any_of("RID", chunk))

    # --- RID leases -------------------------------------------------------------------

    def lease_rids(self, ids: Sequence[str]) -> dict[str, str]:
        """Lease one RID per client correlation ID; returns ``{id: RID}``.

        Safe to repeat: leases are posted with ``onconflict=skip`` and every ID
        is then read back, so a lost answer or a re-run returns the same RIDs
        (for leases not yet consumed by an insert).
        """
        ids = list(dict.fromkeys(ids))
        if any(not isinstance(i, str) or not i for i in ids):
            raise ValueError("lease IDs must be non-empty strings")
        got: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for row in self.insert(*LEASE_TABLE, [{"ID": i} for i in chunk], on_conflict_skip=True):
                got[row["ID"]] = row["RID"]
        missing = [i for i in ids if i not in got]
        if missing:
            got.update(self.leases(missing))
        absent = [i for i in ids if i not in got]
        if absent:
            raise errors.ProtocolError(f"the server acknowledged no lease for {len(absent)} ID(s), "
                                       f"e.g. {absent[0]!r}", method="POST")
        return got

    def leases(self, ids: Iterable[str]) -> dict[str, str]:
        """Our existing (unconsumed) leases among ``ids``, as ``{id: RID}``."""
        return {r["ID"]: r["RID"] for r in self.lookup(*LEASE_TABLE, "ID", ids, columns=("ID", "RID"))}


def _batches(rows: Sequence[dict], max_rows: int, max_bytes: int) -> Iterator[str]:
    """JSON array bodies of at most ``max_rows`` rows and ``max_bytes`` bytes (one oversized row alone)."""
    parts: list[str] = []
    size = 2
    for row in rows:
        text = json.dumps(row, separators=(",", ":"), default=str)
        cost = len(text.encode()) + 1
        if parts and (len(parts) >= max_rows or size + cost > max_bytes):
            yield "[" + ",".join(parts) + "]"
            parts, size = [], 2
        parts.append(text)
        size += cost
    if parts:
        yield "[" + ",".join(parts) + "]"

"""Inserting rows exactly once, whatever happens to the requests.

Each row arrives with the RID it will have (leased from the catalog and
recorded in the journal before this is called). The insert may succeed, fail,
or be lost; whatever happened, the catalog is then *asked*: rows whose RID is
there are done. A row that is not there may have been skipped because the
catalog already holds the same thing under its natural key (an asset's URL):
it is adopted. Rows the server refused are isolated by splitting the batch, so
one bad row fails alone with the server's message and the rest go in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from satchel import errors
from satchel._crashpoints import crash_point
from satchel.remote.catalog import CatalogClient
from satchel.remote.model import Table


@dataclass
class RowToInsert:
    key: int  # the journal row id
    rid: str  # the RID it will have in the catalog
    body: dict[str, Any]


@dataclass
class InsertOutcome:
    present: dict[int, str] = field(default_factory=dict)  # key -> RID the catalog holds (ours or adopted)
    adopted: set[int] = field(default_factory=set)  # keys whose row another writer had already made
    refused: dict[int, str] = field(default_factory=dict)  # key -> the server's reason
    unknown: set[int] = field(default_factory=set)  # outcome still unknown (transport trouble): retry later


def insert_exactly_once(
    catalog: CatalogClient, table: Table, rows: Sequence[RowToInsert], *, natural_key: str | None = None
) -> InsertOutcome:
    out = InsertOutcome()
    if not rows:
        return out
    schema, name = table.schema, table.name
    by_rid = {r.rid: r for r in rows}
    columns = ("RID", natural_key) if natural_key else ("RID",)

    def found(row: dict[str, Any]) -> None:
        r = by_rid[row["RID"]]
        if natural_key and row.get(natural_key) != r.body.get(natural_key):
            # our RID holds another row: it was leased for something else too (one setup bundle in two stores)
            out.refused[r.key] = (f"the catalog's row {row['RID']} is another one ({natural_key} "
                                  f"{row.get(natural_key)}); this row's RID was given to two rows, as when one "
                                  "--for-offline bundle is imported into two stores (docs/airgap.md)")
            return
        out.present[r.key] = row["RID"]
        out.refused.pop(r.key, None)

    # 1. an earlier attempt may have inserted some of them without our hearing of it
    for row in catalog.lookup(schema, name, "RID", list(by_rid), columns=columns):
        found(row)
    todo = [r for r in rows if r.key not in out.present and r.key not in out.refused]
    # 2. insert the rest; any outcome is then checked by reading
    _insert(catalog, table, todo, natural_key, out)
    crash_point(f"rows.{name}.after_insert")
    # refused rows are asked too: a replay of our own insert (the session retries these) is refused
    # although the first attempt stored the row
    if todo:
        for row in catalog.lookup(schema, name, "RID", [r.rid for r in todo], columns=columns):
            found(row)
    remaining = [r for r in todo if r.key not in out.refused]
    # 3. not there under our RID: the same thing may be there under its natural key. Refused rows are
    # asked too: a skipped insert still consumes its lease, so a retry after a lost answer gets 403
    missing = [r for r in todo if r.key not in out.present]
    if missing and natural_key:
        wanted = {r.body[natural_key]: r for r in missing}
        for row in catalog.lookup(schema, name, natural_key, list(wanted), columns=("RID", natural_key)):
            r = wanted[row[natural_key]]
            out.present[r.key] = row["RID"]
            out.adopted.add(r.key)
            out.refused.pop(r.key, None)
    for r in remaining:
        if r.key not in out.present and r.key not in out.refused:
            out.unknown.add(r.key)
    return out


def _insert(
    catalog: CatalogClient, table: Table, rows: list[RowToInsert], natural_key: str | None, out: InsertOutcome
) -> None:
    """POST ``rows``; on a refusal of a batch, split it until the refused rows stand alone."""
    if not rows:
        return
    try:
        catalog.insert(
            table.schema, table.name, [r.body for r in rows], nondefaults=("RID",), on_conflict_skip=natural_key is not None
        )
    except errors.AuthenticationError:
        raise
    except errors.RemoteStatusError as exc:
        if exc.status == 403:
            # no rights, or our leases already consumed by our own insert whose answer was lost (the
            # session retries these inserts): the catalog tells which, not the message's wording
            found = {row["RID"] for row in catalog.lookup(table.schema, table.name, "RID", [r.rid for r in rows],
                                                          columns=("RID",))}
            for r in rows:
                if r.rid in found:
                    out.present[r.key] = r.rid
            rows = [r for r in rows if r.rid not in found]
            if not rows:
                return
        # 400/409: a bad row; 403: no rights, or a lease not ours. A batch is split until those stand alone
        if exc.status in (400, 403, 409) and len(rows) > 1:
            mid = len(rows) // 2
            _insert(catalog, table, rows[:mid], natural_key, out)
            _insert(catalog, table, rows[mid:], natural_key, out)
        elif exc.status in (400, 403, 409):
            out.refused[rows[0].key] = str(exc)
        # other statuses (5xx after retries): the outcome is unknown; reading back decides
    except errors.RemoteError:
        pass  # transport trouble: reading back decides


def insert_by_key(
    catalog: CatalogClient, table: Table, rows: Sequence[RowToInsert], key_column: str, *, unique: bool
) -> InsertOutcome:
    """Insert rows whose identity is ``body[key_column]`` (no leased RID): for servers without leases.

    The key is a natural key the catalog enforces (``unique``: an asset's URL)
    or a correlation marker only we write. Whatever happens, the catalog is
    then asked by key: the RID found there is the row's.
    """
    out = InsertOutcome()
    if not rows:
        return out
    wanted = {r.body[key_column]: r for r in rows}

    def read_back(keys: list[Any]) -> None:
        for row in catalog.lookup(table.schema, table.name, key_column, keys, columns=("RID", key_column)):
            r = wanted.get(row[key_column])
            if r is not None and r.key not in out.present:
                out.present[r.key] = row["RID"]

    read_back(list(wanted))
    todo = [r for r in rows if r.key not in out.present]
    if todo:
        bodies = [{k: v for k, v in r.body.items() if k != "RID"} for r in todo]
        try:
            catalog.insert(table.schema, table.name, bodies, on_conflict_skip=unique)
        except errors.AuthenticationError:
            raise
        except errors.RemoteStatusError as exc:
            if exc.status in (400, 403, 409) and len(todo) == 1:
                out.refused[todo[0].key] = str(exc)
            elif exc.status in (400, 403, 409):
                sub = [insert_by_key(catalog, table, [r], key_column, unique=unique) for r in todo]
                for s in sub:
                    out.present.update(s.present)
                    out.refused.update(s.refused)
        except errors.RemoteError:
            pass  # reading back decides
        crash_point(f"rows.{table.name}.after_insert")
        read_back([r.body[key_column] for r in todo if r.key not in out.present and r.key not in out.refused])
    for r in rows:
        if r.key not in out.present and r.key not in out.refused:
            out.unknown.add(r.key)
    return out

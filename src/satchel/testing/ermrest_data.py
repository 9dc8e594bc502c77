"""Rows of one emulated table: unique-key indexes, filters, sorting and paging."""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

from satchel.testing import values as V
from satchel.testing.ermrest_model import TableInfo
from satchel.testing.ermrest_url import And, Modifiers, Not, Or, Predicate
from satchel.testing.httpd import HTTPError


def hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(hashable(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


class TableData:
    """The rows of a table by RID, with an index per unique key."""

    def __init__(self, info: TableInfo):
        self.info = info
        self.rows: dict[str, dict] = {}
        self.indexes: dict[tuple[str, ...], dict[tuple, str]] = {cols: {} for cols, _ in info.keys}

    def rebind(self, info: TableInfo) -> None:
        self.info = info
        for cols, _ in info.keys:
            if cols not in self.indexes:
                self.indexes[cols] = {}
                for row in self.rows.values():
                    self._index_one(cols, row)

    @staticmethod
    def key_of(cols: tuple[str, ...], row: dict) -> tuple | None:
        vals = tuple(hashable(row.get(c)) for c in cols)
        return None if any(v is None for v in vals) else vals

    def _index_one(self, cols, row) -> None:
        k = self.key_of(cols, row)
        if k is not None:
            self.indexes[cols][k] = row["RID"]

    def add(self, row: dict) -> None:
        self.rows[row["RID"]] = row
        for cols in self.indexes:
            self._index_one(cols, row)

    def remove(self, rid: str) -> dict | None:
        row = self.rows.pop(rid, None)
        if row is not None:
            for cols, index in self.indexes.items():
                k = self.key_of(cols, row)
                if k is not None and index.get(k) == rid:
                    del index[k]
        return row

    def lookup(self, cols: tuple[str, ...], vals: tuple) -> str | None:
        index = self.indexes.get(cols)
        if index is not None:
            return index.get(vals)
        for row in self.rows.values():
            if self.key_of(cols, row) == vals:
                return row["RID"]
        return None


# --- filters -----------------------------------------------------------------


def _cast(info: TableInfo, column: str, text: str) -> Any:
    cdoc = info.column(column)
    tdoc = cdoc["type"]
    if tdoc.get("is_array"):
        tdoc = tdoc["base_type"]
    try:
        return V.coerce(text, tdoc)
    except V.CastError as exc:
        raise HTTPError(400, f"Request malformed. Detail: {exc}") from None


def compile_filter(info: TableInfo, tree) -> Any:
    """Turn a parsed filter into a predicate over rows (400/409 on bad names or values)."""
    if isinstance(tree, And):
        parts = [compile_filter(info, t) for t in tree.terms]
        return lambda row: all(p(row) for p in parts)
    if isinstance(tree, Or):
        parts = [compile_filter(info, t) for t in tree.terms]
        return lambda row: any(p(row) for p in parts)
    if isinstance(tree, Not):
        inner = compile_filter(info, tree.term)
        return lambda row: not inner(row)
    assert isinstance(tree, Predicate)
    col = tree.column
    info.column(col)
    if tree.op == "null":
        return lambda row: row.get(col) is None
    if tree.op in ("regexp", "ciregexp", "ts"):
        flags = 0 if tree.op == "regexp" else re.IGNORECASE
        pats = [re.compile(v if tree.op != "ts" else re.escape(v), flags) for v in tree.values]

        def textmatch(row, pats=pats):
            v = row.get(col)
            if v is None:
                return False
            text = v if isinstance(v, str) else json.dumps(V.render(v))
            return any(p.search(text) for p in pats)

        return textmatch
    wanted = [_cast(info, col, v) for v in tree.values]
    op = tree.op

    def compare(v, w):
        if v is None:
            return False
        if isinstance(v, list):  # array column: match any element
            return any(compare(x, w) for x in v)
        try:
            if op == "=":
                return v == w
            if op == "lt":
                return v < w
            if op == "leq":
                return v <= w
            if op == "gt":
                return v > w
            if op == "geq":
                return v >= w
        except TypeError:
            return False
        raise HTTPError(400, f"Request malformed. Detail: unknown operator {op}")

    if tree.quantifier == "all":
        return lambda row: all(compare(row.get(col), w) for w in wanted)
    if len(wanted) == 1:
        w0 = wanted[0]
        return lambda row: compare(row.get(col), w0)
    if op == "=":
        hashed = {hashable(w) for w in wanted}
        return lambda row: hashable(row.get(col)) in hashed
    return lambda row: any(compare(row.get(col), w) for w in wanted)


def select(table: TableData, filters: list, visible=None) -> list[dict]:
    preds = [compile_filter(table.info, f) for f in filters]
    # fast path: a single RID=any(...) or RID=x filter
    rows: Iterable[dict] = table.rows.values()
    if len(filters) == 1 and isinstance(filters[0], Predicate) and filters[0].column == "RID" \
            and filters[0].op == "=" and filters[0].quantifier != "all":
        rows = [table.rows[r] for r in filters[0].values if r in table.rows]
    out = [r for r in rows if all(p(r) for p in preds) and (visible is None or visible(r))]
    return out


# --- sorting and paging --------------------------------------------------------


def _row_key(row, sort):
    return tuple(V.sort_key(row.get(c)) for c, _ in sort)


def _cmp(a: tuple, b: tuple, sort) -> int:
    for x, y, (_, desc) in zip(a, b, sort):
        if x == y:
            continue
        try:
            less = x < y
        except TypeError:
            less = str(x) < str(y)
        res = -1 if less else 1
        return -res if desc else res
    return 0


def order_and_page(info: TableInfo, rows: list[dict], mods: Modifiers, limit: int | None) -> list[dict]:
    if mods.sort:
        for c, _ in mods.sort:
            info.column(c)
        if mods.after is not None or mods.before is not None:  # cut first: sort only what is left
            bound_vals = mods.after if mods.after is not None else mods.before
            bound = tuple(
                V.sort_key(None if v is None else _cast(info, c, v)) for v, (c, _) in zip(bound_vals, mods.sort)
            )
            sign = 1 if mods.after is not None else -1
            rows = [r for r in rows if sign * _cmp(_row_key(r, mods.sort), bound, mods.sort) > 0]
        for c, desc in reversed(mods.sort):
            rows.sort(key=lambda r, c=c: V.sort_key(r.get(c)), reverse=desc)
        if mods.before is not None and limit is not None:
            rows = rows[-limit:] if limit else []
    if limit is not None:
        rows = rows[:limit]
    return rows


def parse_limit(text: str | None) -> int | None:
    if text is None or text == "none":
        return None
    try:
        value = int(text)
    except ValueError:
        raise HTTPError(400, f"Request malformed. Detail: Invalid limit {text!r}.") from None
    if value < 0:
        raise HTTPError(409, "Request conflicts with state of server. Detail: LIMIT must not be negative")
    return value

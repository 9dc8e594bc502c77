"""Building ERMrest URLs: percent-encoding, filters, and splitting long ``any()`` lists.

Every name and value is encoded with ``quote(v, safe="")``: ERMrest treats
``/ : ; , = ? @ & ( ) +`` as syntax, and timestamps contain ``:`` and ``+``.
"""

from __future__ import annotations

from typing import Iterable, Iterator
from urllib.parse import quote

#: keep request targets under this many characters (Apache's limit is about 8 KB)
MAX_URL = 7000


def q(value: object) -> str:
    """Percent-encode one name or value for an ERMrest URL."""
    if value is None:
        raise ValueError("use is_null() to filter on NULL")
    if isinstance(value, bool):
        value = "true" if value else "false"
    return quote(str(value), safe="")


def table_path(schema: str, table: str) -> str:
    return f"{q(schema)}:{q(table)}"


def eq(column: str, value: object) -> str:
    return f"{q(column)}={q(value)}"


def gt(column: str, value: object) -> str:
    return f"{q(column)}::gt::{q(value)}"


def geq(column: str, value: object) -> str:
    return f"{q(column)}::geq::{q(value)}"


def lt(column: str, value: object) -> str:
    return f"{q(column)}::lt::{q(value)}"


def leq(column: str, value: object) -> str:
    return f"{q(column)}::leq::{q(value)}"


def is_null(column: str) -> str:
    return f"{q(column)}::null::"


def any_of(column: str, values: Iterable[object]) -> str:
    return f"{q(column)}=any({','.join(q(v) for v in values)})"


def split_any(column: str, values: Iterable[object], budget: int) -> Iterator[list]:
    """Split ``values`` so each ``column=any(...)`` filter stays within ``budget`` characters."""
    chunk: list = []
    size = len(q(column)) + len("=any()")
    for v in values:
        cost = len(q(v)) + 1
        if chunk and size + cost > budget:
            yield chunk
            chunk, size = [], len(q(column)) + len("=any()")
        chunk.append(v)
        size += cost
    if chunk:
        yield chunk


def page_modifiers(sort: Iterable[str], after: Iterable[object] | None) -> str:
    text = f"@sort({','.join(_sort_item(c) for c in sort)})"
    if after is not None:
        text += f"@after({','.join('::null::' if v is None else q(v) for v in after)})"
    return text


def _sort_item(column: str) -> str:
    if column.endswith("::desc::"):
        return q(column[: -len("::desc::")]) + "::desc::"
    return q(column)

"""Building ERMrest URLs: percent-encoding, filters, and the one limit on a request's length.

Every name and value is encoded with ``quote(v, safe="")``: ERMrest treats
``/ : ; , = ? @ & ( ) +`` as syntax, and timestamps contain ``:`` and ``+``.

The web server in front of ERMrest and Hatrac refuses long requests before
the service sees them (measured on Apache 2.4 + mod_wsgi, docs/remote.md,
"How long a request may be"):

- mod_wsgi maps a path to ``<script file><percent-decoded path info>`` and
  Apache stats it; past 4,092 bytes the stat fails and Apache answers its own
  **404** page. With the script at a 71-character path, a request path of
  4,029 characters passed and 4,030 did not.
- A request line over 8,191 characters (method, target, protocol) gets **414**.

A 404 that means "too long" must never be read as "absent", so every request
satchel sends is held under :data:`MAX_PATH` and :data:`MAX_TARGET` here:
long ``any()`` lists are split by :func:`split_any`, and
:func:`check_target` refuses anything longer before it is sent.
"""

from __future__ import annotations

from typing import Iterable, Iterator
from urllib.parse import quote

from satchel import errors

#: longest request path we send, percent-encoded (the server decodes it, so its stat sees no more):
#: 1,000 characters under the 4,029 measured, for deployments whose WSGI script lies deeper
MAX_PATH = 3000
#: longest request target (path and query) we send; Apache's request line allows about 8,170
MAX_TARGET = 7000


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


def split_any(column: str, values: Iterable[object], around: str = "") -> Iterator[list]:
    """Split ``values`` so that each path with a ``column=any(...)`` filter stays within :data:`MAX_PATH`.

    ``around`` is the rest of the path (everything but the filter). A value too
    long to fit even alone is refused with :class:`~satchel.errors.RequestTooLong`.
    """
    fixed = len(around) + len(q(column)) + len("=any()")
    chunk: list = []
    size = fixed
    for v in values:
        text = len(q(v))
        if fixed + text > MAX_PATH:
            raise errors.RequestTooLong(
                f"a {column} value of {text} characters does not fit in one request path "
                f"(at most {MAX_PATH}): {str(v)[:80]!r}...", length=fixed + text, limit=MAX_PATH)
        if chunk and size + 1 + text > MAX_PATH:
            yield chunk
            chunk, size = [], fixed
        size += text + (1 if chunk else 0)
        chunk.append(v)
    if chunk:
        yield chunk


def check_target(method: str, target: str) -> None:
    """Refuse a request whose path or target (path and query, percent-encoded) is longer than we send."""
    path = target.partition("?")[0]
    if len(path) > MAX_PATH or len(target) > MAX_TARGET:
        what, length, limit = (("path", len(path), MAX_PATH) if len(path) > MAX_PATH
                               else ("target", len(target), MAX_TARGET))
        raise errors.RequestTooLong(
            f"{method} {path[:120]}... is not sent: its {what} has {length} characters, over the {limit} "
            f"that DERIVA's web servers are known to accept (longer ones get 404 or 414 from Apache); "
            f"this is a bug in satchel's request building, please report it", length=length, limit=limit)


def page_modifiers(sort: Iterable[str], after: Iterable[object] | None) -> str:
    text = f"@sort({','.join(_sort_item(c) for c in sort)})"
    if after is not None:
        text += f"@after({','.join('::null::' if v is None else q(v) for v in after)})"
    return text


def _sort_item(column: str) -> str:
    if column.endswith("::desc::"):
        return q(column[: -len("::desc::")]) + "::desc::"
    return q(column)

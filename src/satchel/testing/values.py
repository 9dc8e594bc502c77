"""Column values in the emulator: input coercion, rendering, comparison.

Rows are held as Python values (``str``, ``int``, ``float``, ``bool``, aware
``datetime``, ``date``, lists, JSON values). Input is coerced the way
PostgreSQL casts ERMrest's JSON input; output is rendered the way ERMrest's
JSON does (timestamps with an offset and trimmed fractional seconds).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from typing import Any

_TEXT = {"text", "markdown", "longtext", "ermrest_curie", "ermrest_uri", "ermrest_rid",
         "ermrest_rcb", "ermrest_rmb", "color_rgb_hex", "gene_sequence"}
_INT = {"int2": "smallint", "int4": "integer", "int8": "bigint", "serial2": "smallint",
        "serial4": "integer", "serial8": "bigint"}
_FLOAT = {"float4", "float8", "numeric"}
_TIMESTAMP = {"timestamptz", "timestamp", "ermrest_rct", "ermrest_rmt"}
_JSON = {"json", "jsonb"}


class CastError(ValueError):
    """A value that the column type cannot take (PostgreSQL's cast error)."""


def base_typename(type_doc: dict) -> str:
    return type_doc["typename"]


def parse_timestamp(text: str) -> dt.datetime:
    value = text.strip()
    if value.endswith("Z") or value.endswith("z"):
        value = value[:-1] + "+00:00"
    if len(value) == 10:
        value += "T00:00:00"
    if len(value) > 10 and value[10] == " ":
        value = value[:10] + "T" + value[11:]
    # "+00" (CSV style) -> "+00:00"
    if len(value) >= 3 and value[-3] in "+-" and value[-2:].isdigit() and "T" in value:
        value += ":00"
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed


@functools.lru_cache(maxsize=4096)  # a transaction stamps every row it writes with the same time
def render_timestamp(value: dt.datetime) -> str:
    text = value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += (".%06d" % value.microsecond).rstrip("0")
    return text + "+00:00"


def render_timestamp_space(value: dt.datetime) -> str:
    """The ``2026-11-25 13:39:54.030524+00:00`` form entity_rid uses."""
    return render_timestamp(value).replace("T", " ")


def coerce(value: Any, type_doc: dict) -> Any:
    """Coerce one JSON input value to the column's type, or raise CastError."""
    if value is None:
        return None
    typename = type_doc["typename"]
    if type_doc.get("is_array") or typename.endswith("[]"):
        base = type_doc.get("base_type") or {"typename": typename[:-2]}
        if not isinstance(value, list):
            raise CastError(f'malformed array literal: "{value}"')
        return [coerce(v, base) for v in value]
    if typename in _TEXT:
        return value if isinstance(value, str) else json.dumps(value)
    if typename in _INT:
        if isinstance(value, bool) or isinstance(value, float):
            raise CastError(f'invalid input syntax for type {_INT[typename]}: "{value}"')
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise CastError(f'invalid input syntax for type {_INT[typename]}: "{value}"') from None
    if typename in _FLOAT:
        if isinstance(value, bool):
            raise CastError(f'invalid input syntax for type double precision: "{value}"')
        try:
            return float(value)
        except (TypeError, ValueError):
            raise CastError(f'invalid input syntax for type double precision: "{value}"') from None
    if typename == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("t", "true", "y", "yes", "on", "1"):
            return True
        if text in ("f", "false", "n", "no", "off", "0"):
            return False
        raise CastError(f'invalid input syntax for type boolean: "{value}"')
    if typename in _TIMESTAMP:
        if isinstance(value, dt.datetime):
            return value
        try:
            return parse_timestamp(str(value))
        except ValueError:
            raise CastError(f'invalid input syntax for type timestamp with time zone: "{value}"') from None
    if typename == "date":
        try:
            return dt.date.fromisoformat(str(value)[:10])
        except ValueError:
            raise CastError(f'invalid input syntax for type date: "{value}"') from None
    if typename in _JSON:
        return value
    return value if isinstance(value, str) else json.dumps(value)


def render(value: Any) -> Any:
    """A stored value as ERMrest's JSON writes it."""
    if isinstance(value, dt.datetime):
        return render_timestamp(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [render(v) for v in value]
    return value


def sort_key(value: Any) -> tuple:
    """A key that orders values of one column; NULL sorts after everything."""
    if value is None:
        return (1, 0)
    if isinstance(value, (list, dict)):
        return (0, json.dumps(value, sort_keys=True))
    return (0, value)

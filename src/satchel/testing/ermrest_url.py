"""Parsing ERMrest data URLs: table paths, filters, projections, page modifiers.

Works on the raw (still percent-encoded) URL: reserved characters are
syntax, and names and values are percent-decoded only after splitting, as
ERMrest does. A raw ``:`` or ``+`` inside a value is a URL parse error (400).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from satchel.testing.httpd import HTTPError

_OPS = ("null", "lt", "leq", "gt", "geq", "regexp", "ciregexp", "ts")
_TOKEN = re.compile(r"::(?:%s)::|:=|[()=;&!,]|[^()=;&!,:]+|:" % "|".join(_OPS))


def bad_url(token: str = "") -> HTTPError:
    return HTTPError(400, f"Request malformed. Detail: URL parse error at token: {token}")


def decode_atom(raw: str) -> str:
    if "+" in raw:
        raise HTTPError(400, "Request malformed.")
    return unquote(raw)


@dataclass
class Predicate:
    column: str
    op: str  # "=", "null", "lt", ...
    values: list[str] = field(default_factory=list)
    quantifier: str | None = None  # "any" / "all" / None


@dataclass
class Not:
    term: object


@dataclass
class And:
    terms: list


@dataclass
class Or:
    terms: list


def tokenize(segment: str) -> list[str]:
    tokens = _TOKEN.findall(segment)
    if "".join(tokens) != segment:
        raise bad_url(segment)
    for tok in tokens:
        if tok == ":":
            raise bad_url("LexToken(:,':')")
    return tokens


def parse_filter(segment: str):
    tokens = tokenize(segment)
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def take(expected=None):
        nonlocal pos
        tok = peek()
        if tok is None or (expected is not None and tok != expected):
            raise bad_url(tok or "end")
        pos += 1
        return tok

    def disj():
        terms = [conj()]
        while peek() == ";":
            take()
            terms.append(conj())
        return terms[0] if len(terms) == 1 else Or(terms)

    def conj():
        terms = [unary()]
        while peek() == "&":
            take()
            terms.append(unary())
        return terms[0] if len(terms) == 1 else And(terms)

    def unary():
        tok = peek()
        if tok == "!":
            take()
            return Not(unary())
        if tok == "(":
            take()
            inner = disj()
            take(")")
            return inner
        return predicate()

    def predicate():
        name = take()
        if name in "()=;&!,":
            raise bad_url(name)
        column = decode_atom(name)
        op = take()
        if op == "::null::":
            return Predicate(column, "null")
        if op == "=":
            opname = "="
        elif op.startswith("::"):
            opname = op.strip(":")
        else:
            raise bad_url(op)
        tok = take()
        if tok in ("any", "all") and peek() == "(":
            take("(")
            values = [decode_atom(take())]
            while peek() == ",":
                take()
                values.append(decode_atom(take()))
            take(")")
            return Predicate(column, opname, values, tok)
        if tok in "()=;&!,":
            raise bad_url(tok)
        return Predicate(column, opname, [decode_atom(tok)])

    tree = disj()
    if pos != len(tokens):
        raise bad_url(tokens[pos])
    return tree


@dataclass
class TableRef:
    schema: str | None
    table: str
    alias: str | None = None


def parse_table(segment: str) -> TableRef:
    alias = None
    if ":=" in segment:
        alias_raw, segment = segment.split(":=", 1)
        alias = decode_atom(alias_raw)
    parts = segment.split(":")
    if len(parts) == 1:
        return TableRef(None, decode_atom(parts[0]), alias)
    if len(parts) == 2:
        return TableRef(decode_atom(parts[0]), decode_atom(parts[1]), alias)
    raise bad_url(segment)


def is_filter(segment: str) -> bool:
    return "=" in segment.replace(":=", "") or "::" in segment


@dataclass
class Modifiers:
    sort: list[tuple[str, bool]] | None = None  # (column, descending)
    after: list[str | None] | None = None
    before: list[str | None] | None = None


def _split_list(text: str) -> list[str]:
    return text.split(",") if text else []


def parse_modifiers(text: str) -> Modifiers:
    """Parse ``@sort(..)@after(..)`` (the text after the first raw ``@``)."""
    mods = Modifiers()
    rest = text
    while rest:
        m = re.match(r"@?(sort|after|before)\(([^()]*)\)", rest)
        if not m:
            raise bad_url(rest)
        kind, body = m.group(1), m.group(2)
        rest = rest[m.end():]
        if kind == "sort":
            items = []
            for item in _split_list(body):
                desc = item.endswith("::desc::")
                name = item[: -len("::desc::")] if desc else item
                if ":" in name:
                    raise bad_url(name)
                items.append((decode_atom(name), desc))
            mods.sort = items
        else:
            values = []
            for item in _split_list(body):
                if item == "::null::":
                    values.append(None)
                elif ":" in item:
                    raise bad_url(item)
                else:
                    values.append(decode_atom(item))
            setattr(mods, kind, values)
    if (mods.after is not None or mods.before is not None) and mods.sort is None:
        raise bad_url("@after")
    for page in (mods.after, mods.before):
        if page is not None and len(page) != len(mods.sort):
            raise HTTPError(
                400,
                f'Request malformed. Detail: The "after" page key of length {len(page)} '
                f'does not match the "sort" key of length {len(mods.sort)}.',
            )
    return mods


@dataclass
class Projection:
    items: list[tuple[str | None, str]]  # (output alias or None, column)


def parse_projection(segment: str) -> Projection:
    items = []
    for raw in segment.split(","):
        if ":=" in raw:
            alias, col = raw.split(":=", 1)
            items.append((decode_atom(alias), decode_atom(col)))
        else:
            if ":" in raw:
                raise bad_url(raw)
            items.append((None, decode_atom(raw)))
    return Projection(items)


@dataclass
class DataPath:
    table: TableRef  # the path's final table (the one answered about)
    filters: list = field(default_factory=list)  # filters on the final table
    tail: str | None = None  # projection segment for attribute/attributegroup/aggregate
    modifiers: Modifiers = field(default_factory=Modifiers)
    prior: list[tuple[TableRef, list]] = field(default_factory=list)  # earlier tables joined by FK


def parse_data_path(raw: str, *, with_tail: bool) -> DataPath:
    """Parse ``S:T/filter/...[/tail][@sort(..)...]`` (raw, after the API name)."""
    mod_text = ""
    if "@" in raw:
        raw, mod_text = raw.split("@", 1)
        mod_text = "@" + mod_text
    segments = [s for s in raw.split("/")]
    if not segments or not segments[0]:
        raise bad_url("/")
    path = DataPath(parse_table(segments[0]), modifiers=parse_modifiers(mod_text))
    rest = segments[1:]
    if rest and rest[-1] == "":
        rest = rest[:-1]
    if with_tail:
        if not rest:
            raise HTTPError(400, "Request malformed. Detail: projection required")
        path.tail = rest[-1]
        rest = rest[:-1]
    for seg in rest:
        if seg.startswith("$"):
            raise HTTPError(400, f"Request malformed. Detail: the emulator does not follow aliases ({seg})")
        if is_filter(seg):
            path.filters.append(parse_filter(seg))
        else:  # another table, joined to the previous one by a foreign key
            path.prior.append((path.table, path.filters))
            path.table, path.filters = parse_table(seg), []
    return path

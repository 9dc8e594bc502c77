"""The local journal: SQLite (WAL) via SQLAlchemy 2, schema owned by migrations/.

Names load on first use, so that ``satchel.journal.report`` (status in bare
sqlite3) does not import SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from satchel.journal.engine import make_engine, read_transaction, write_transaction
    from satchel.journal.migrate import head_revision, upgrade

_HOMES = {
    "head_revision": "satchel.journal.migrate",
    "make_engine": "satchel.journal.engine",
    "read_transaction": "satchel.journal.engine",
    "upgrade": "satchel.journal.migrate",
    "write_transaction": "satchel.journal.engine",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


__all__ = ["head_revision", "make_engine", "read_transaction", "upgrade", "write_transaction"]

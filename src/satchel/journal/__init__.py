"""The local journal: SQLite (WAL) via SQLAlchemy 2, schema owned by migrations/."""

from satchel.journal.engine import make_engine, read_transaction, write_transaction
from satchel.journal.migrate import head_revision, upgrade

__all__ = ["head_revision", "make_engine", "read_transaction", "upgrade", "write_transaction"]

"""Bring a journal to the schema this satchel knows, atomically.

Opening a store calls :func:`upgrade`. Pending migrations run inside one
``BEGIN IMMEDIATE`` transaction: all of them apply, or none (SQLite DDL is
transactional once pysqlite stops managing transactions; see engine.py).
Concurrent openers serialize on that lock and re-check the revision inside
it, so each migration applies exactly once. A journal stamped with a
revision this satchel does not know was written by a newer satchel, and
opening it fails with :class:`~satchel.errors.SchemaVersionError`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from satchel.errors import SchemaVersionError, StoreError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy import Connection, Engine

#: the newest revision in migrations/ (a test checks it); a journal already there opens without alembic,
#: and ``satchel status`` reads it without SQLAlchemy (satchel.journal.report)
LATEST = "0011_sync_log_pins"


def migrations_dir() -> Path:
    return Path(str(resources.files("satchel._migrations")))


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    return cfg


def script_directory() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = script_directory().get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    """The journal's revision, read directly (no alembic import on the common path)."""
    exists = conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'").first()
    if exists is None:
        return None
    rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    return rows[0][0] if rows else None


def _check_known(rev: str | None, script: ScriptDirectory, path: str) -> None:
    if rev is None:
        return
    known = {s.revision for s in script.walk_revisions()}
    if rev not in known:
        raise SchemaVersionError(
            f"the journal {path} is at schema revision {rev!r}, which this satchel does not know: "
            f"it was written by a newer satchel; upgrade satchel (pip install -U satchel) to open it"
        )


def upgrade(engine: Engine, target: str = "head") -> str:
    """Apply pending migrations up to ``target``; returns the revision reached."""
    from satchel.journal.engine import read_transaction, write_transaction

    if target == "head":
        with read_transaction(engine) as conn:
            if current_revision(conn) == LATEST:
                return LATEST
    from alembic import command

    script = script_directory()
    head = script.get_current_head() if target == "head" else target
    path = str(engine.url.database)
    with read_transaction(engine) as conn:
        rev = current_revision(conn)
    _check_known(rev, script, path)
    if rev == head:
        return rev
    try:
        with write_transaction(engine) as conn:
            rev = current_revision(conn)  # someone may have migrated while we waited
            _check_known(rev, script, path)
            if rev != head:
                cfg = alembic_config()
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, target)
    except SchemaVersionError:
        raise
    except Exception as exc:  # the transaction rolled back: the journal is as it was
        raise StoreError(
            f"upgrading the journal {path} from schema revision {rev!r} to {head!r} failed, and nothing was "
            f"changed: {exc}; open it with the satchel that wrote it, or report this error"
        ) from exc
    return head

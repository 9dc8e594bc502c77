"""Alembic environment for the satchel journal.

satchel runs migrations itself when a store is opened (satchel.journal.migrate):
it passes an open connection already inside a ``BEGIN IMMEDIATE`` transaction,
so every pending migration applies atomically, or none does. Run by hand
(``alembic -x store=PATH upgrade head``), the same transaction discipline is
used.
"""

from __future__ import annotations

from alembic import context

from satchel.journal.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    from pathlib import Path

    from satchel.journal.engine import make_engine, write_transaction

    store = context.get_x_argument(as_dictionary=True).get("store")
    if not store:
        raise SystemExit("pass the journal file: alembic -x store=PATH/journal.db upgrade head")
    engine = make_engine(Path(store))
    with write_transaction(engine) as conn:
        _run_on(conn)
    engine.dispose()


def _run_on(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        transactional_ddl=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()

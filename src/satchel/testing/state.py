"""The emulator's durable state: SQLite through SQLAlchemy Core.

One database file (``emulator.db``) in the data directory holds catalogs
(model and sequence), rows, deletion records, Hatrac names, versions and
upload jobs, and login sessions. Object bytes live in ``objects/`` and open
upload jobs in ``jobs/``. Callers serialise writes with the server lock and
use :meth:`State.begin` for one transaction per request.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import sqlalchemy as sa

metadata = sa.MetaData()

catalogs = sa.Table(
    "catalogs", metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("doc", sa.Text, nullable=False),  # owner, acls, annotations, schemas
    sa.Column("rid_seq", sa.BigInteger, nullable=False),
    sa.Column("last_change", sa.String, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
)
rows = sa.Table(
    "rows", metadata,
    sa.Column("catalog", sa.String, primary_key=True),
    sa.Column("rid", sa.String, primary_key=True),
    sa.Column("schema_name", sa.String, nullable=False),
    sa.Column("table_name", sa.String, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
)
tombstones = sa.Table(
    "tombstones", metadata,
    sa.Column("catalog", sa.String, primary_key=True),
    sa.Column("rid", sa.String, primary_key=True),
    sa.Column("schema_name", sa.String, nullable=False),
    sa.Column("table_name", sa.String, nullable=False),
    sa.Column("deleted_at", sa.String, nullable=False),
    sa.Column("last_visible_at", sa.String, nullable=False),
)
history = sa.Table(
    "history", metadata,
    sa.Column("catalog", sa.String, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String, nullable=False),
    sa.Column("schema_name", sa.String, nullable=False),
    sa.Column("table_name", sa.String, nullable=False),
    sa.Column("rid", sa.String, nullable=False),
    sa.Column("data", sa.Text),  # NULL: deleted
)
hatrac_names = sa.Table(
    "hatrac_names", metadata,
    sa.Column("path", sa.String, primary_key=True),
    sa.Column("kind", sa.String, nullable=False),  # "namespace" | "object"
    sa.Column("owner", sa.String),
    sa.Column("burned", sa.Boolean, nullable=False, default=False),
    sa.Column("create_acl", sa.Text),  # JSON list: who may create names in this namespace
)
hatrac_versions = sa.Table(
    "hatrac_versions", metadata,
    sa.Column("path", sa.String, primary_key=True),
    sa.Column("version", sa.String, primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("md5", sa.String),
    sa.Column("sha256", sa.String),
    sa.Column("content_type", sa.String),
    sa.Column("disposition", sa.String),
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
)
hatrac_jobs = sa.Table(
    "hatrac_jobs", metadata,
    sa.Column("job", sa.String, primary_key=True),
    sa.Column("path", sa.String, nullable=False),
    sa.Column("owner", sa.String, nullable=False),
    sa.Column("doc", sa.Text, nullable=False),  # chunk-length, content-length, hashes, type
)
sessions = sa.Table(
    "sessions", metadata,
    sa.Column("token", sa.String, primary_key=True),
    sa.Column("client", sa.Text, nullable=False),  # the client document
    sa.Column("since", sa.String, nullable=False),
    sa.Column("expires", sa.String, nullable=False),
    sa.Column("password", sa.String),
)
settings = sa.Table(
    "settings", metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


#: bump when the tables above change; an emulator refuses a data dir of another format
FORMAT = 1


class State:
    """The database and the object directories of one emulator data dir."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.objects_dir = self.data_dir / "objects"
        self.jobs_dir = self.data_dir / "jobs"
        for d in (self.data_dir, self.objects_dir, self.jobs_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(
            f"sqlite:///{self.data_dir / 'emulator.db'}",
            connect_args={"check_same_thread": False},
            poolclass=sa.pool.StaticPool,
        )

        @sa.event.listens_for(self.engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        fresh = not sa.inspect(self.engine).has_table("settings")
        metadata.create_all(self.engine)
        if fresh:
            with self.begin() as conn:
                self.set_setting(conn, "format", FORMAT)
        else:
            found = self.get_setting("format")
            if found != FORMAT:
                self.engine.dispose()
                raise RuntimeError(f"the emulator state in {self.data_dir} has format {found!r}, this satchel "
                                   f"writes {FORMAT}: use a new --data-dir or delete that one")

    @contextlib.contextmanager
    def begin(self):
        with self.engine.begin() as conn:
            yield conn

    def get_setting(self, name: str):
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(settings.c.value).where(settings.c.name == name)).scalar()
        return None if value is None else json.loads(value)

    def set_setting(self, conn, name: str, value) -> None:
        conn.execute(sa.delete(settings).where(settings.c.name == name))
        conn.execute(sa.insert(settings).values(name=name, value=json.dumps(value)))

    def close(self) -> None:
        self.engine.dispose()

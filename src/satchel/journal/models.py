"""The journal's tables, as SQLAlchemy 2 typed models.

The schema itself is owned by the Alembic migrations in ``migrations/``;
``tests/journal/test_migrations.py`` checks that these models and the migrated
schema agree.

Every row the catalog will hold carries ``sync_state``:

* ``local``   recorded here, not yet on the remote;
* ``synced``  the remote has it (``remote_rid`` is then the catalog's RID);
* ``failed``  the remote refused it (``sync_error`` says why);
* ``remote``  mirrored from the remote by a pull.

and the ``changes`` table is the ordered outbox of remote work: every local
mutation appends to it in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SYNC_STATES = ("local", "synced", "failed", "remote")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON, datetime: String(40)}


class StoreInfo(Base):
    """Facts about this store: its id, the remote it syncs to, counters."""

    __tablename__ = "store_info"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class AssetTableDef(Base):
    """An asset table the store knows: built in, from the catalog model, or named locally."""

    __tablename__ = "asset_tables"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    schema_name: Mapped[str | None] = mapped_column(String(200))
    origin: Mapped[str] = mapped_column(String(16))  # builtin | model | local
    metadata_columns: Mapped[list[str]] = mapped_column(JSON, default=list)


class VocabularyTerm(Base):
    __tablename__ = "vocabulary_terms"
    __table_args__ = (UniqueConstraint("vocabulary", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vocabulary: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    synonyms: Mapped[list[str]] = mapped_column(JSON, default=list)
    rid: Mapped[str | None] = mapped_column(String(64))  # provisional, for terms made here (the catalog's: remote_rid)
    remote_rid: Mapped[str | None] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(String(16))  # builtin | remote | local
    sync_state: Mapped[str] = mapped_column(String(16), default="local", index=True)
    sync_error: Mapped[str | None] = mapped_column(Text)


class WorkflowRow(Base):
    __tablename__ = "workflows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rid: Mapped[str] = mapped_column(String(64), unique=True)
    remote_rid: Mapped[str | None] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    checksum: Mapped[str | None] = mapped_column(String(128), index=True)
    version: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    workflow_type: Mapped[str | None] = mapped_column(String(200))
    origin: Mapped[str] = mapped_column(String(16), default="local")
    sync_state: Mapped[str] = mapped_column(String(16), default="local", index=True)
    sync_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[str] = mapped_column(String(40))


class ExecutionRow(Base):
    __tablename__ = "executions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rid: Mapped[str] = mapped_column(String(64), unique=True)
    remote_rid: Mapped[str | None] = mapped_column(String(64), index=True)
    workflow_id: Mapped[int | None] = mapped_column(ForeignKey("workflows.id"))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(32))
    status_detail: Mapped[str | None] = mapped_column(Text)
    configuration: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    working_dir: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[str] = mapped_column(String(40))
    start_time: Mapped[str | None] = mapped_column(String(40))
    stop_time: Mapped[str | None] = mapped_column(String(40))
    execution_duration: Mapped[float | None] = mapped_column(Float)
    commit_time: Mapped[str | None] = mapped_column(String(40))
    origin: Mapped[str] = mapped_column(String(16), default="local")
    sync_state: Mapped[str] = mapped_column(String(16), default="local", index=True)
    sync_error: Mapped[str | None] = mapped_column(Text)
    # the status the remote was last told; differs from status while an update is pending
    remote_status: Mapped[str | None] = mapped_column(String(32))


class StatusEvent(Base):
    """Every status change of an execution, in order, with its time."""

    __tablename__ = "execution_status_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    execution_id: Mapped[int] = mapped_column(ForeignKey("executions.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    at: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(Text)


class Registration(Base):
    """A file registered by ``asset_file_path``, waiting for ``commit_output_assets``.

    Only pending registrations are kept: the commit that sets ``asset_id`` deletes
    the row in the same statement (``tr_registrations_committed``). A name already
    committed as an ``Output`` of the execution is refused by
    ``tr_registrations_committed_name``, from ``assets``/``asset_links``, as the
    unique key refuses a name that is still pending. ``AUTOINCREMENT``: an id a
    commit read before capturing never names a registration made since.
    """

    __tablename__ = "registrations"
    __table_args__ = (UniqueConstraint("execution_id", "asset_table", "file_name"), {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    execution_id: Mapped[int] = mapped_column(ForeignKey("executions.id"))
    asset_table: Mapped[str] = mapped_column(String(200))
    file_name: Mapped[str] = mapped_column(Text)
    staged_path: Mapped[str] = mapped_column(Text)
    source_path: Mapped[str | None] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(16))  # new | symlink | copy
    asset_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    asset_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    description: Mapped[str | None] = mapped_column(Text)
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id"))
    registered_at: Mapped[str] = mapped_column(String(40))


class AssetRow(Base):
    __tablename__ = "assets"
    __table_args__ = (
        UniqueConstraint("asset_table", "url"),
        Index("ix_assets_md5", "md5"),
        Index("ix_assets_filename", "filename"),  # tr_registrations_committed_name
        # the assets not yet on the remote, with what status and push read of them (covering, no row reads)
        Index("ix_assets_local", "sync_state", "object_url", "length", sqlite_where=text("sync_state = 'local'")),
        Index("ix_assets_sync_state", "sync_state", sqlite_where=text("sync_state = 'failed'")),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rid: Mapped[str] = mapped_column(String(64), unique=True)
    remote_rid: Mapped[str | None] = mapped_column(String(64), index=True)
    asset_table: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(Text)
    length: Mapped[int] = mapped_column(BigInteger)
    md5: Mapped[str] = mapped_column(String(32))
    blake3: Mapped[str | None] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    asset_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[str] = mapped_column(String(40))
    origin: Mapped[str] = mapped_column(String(16), default="local")
    sync_state: Mapped[str] = mapped_column(String(16), default="local")
    sync_error: Mapped[str | None] = mapped_column(Text)
    # the description the remote had at the last pull or push (conflict detection)
    remote_description: Mapped[str | None] = mapped_column(Text)
    remote_rmt: Mapped[str | None] = mapped_column(String(40))
    # the versioned Hatrac URL once the object store confirmed our bytes (bytes before rows)
    object_url: Mapped[str | None] = mapped_column(Text)


class AssetTag(Base):
    """The current tag set of an asset (terms of Asset_Type)."""

    __tablename__ = "asset_tags"
    __table_args__ = (
        Index("ix_asset_tags_sync_state", "sync_state", sqlite_where=text("sync_state = 'local'")),
        {"sqlite_with_rowid": False},
    )
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"), primary_key=True)
    term: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)
    sync_state: Mapped[str] = mapped_column(String(16), default="local")


class AssetLink(Base):
    """``<Asset>_Execution``: one asset, one execution, one role (unique as in the catalog)."""

    __tablename__ = "asset_links"
    __table_args__ = (UniqueConstraint("asset_id", "execution_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"))
    execution_id: Mapped[int] = mapped_column(ForeignKey("executions.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    remote_rid: Mapped[str | None] = mapped_column(String(64))
    sync_state: Mapped[str] = mapped_column(String(16), default="local", index=True)
    sync_error: Mapped[str | None] = mapped_column(Text)


class RidAlias(Base):
    """Another RID that names the same thing: a provisional RID once synced, or an adopted duplicate."""

    __tablename__ = "rid_aliases"
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    rid: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # asset | execution | workflow
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[str] = mapped_column(String(40))


class RidLease(Base):
    """RIDs leased from the catalog while online, handed out to new rows offline."""

    __tablename__ = "rid_pool"
    rid: Mapped[str] = mapped_column(String(64), primary_key=True)
    lease_id: Mapped[str] = mapped_column(String(64), unique=True)
    leased_at: Mapped[str] = mapped_column(String(40))
    used_by: Mapped[str | None] = mapped_column(String(16))  # kind that took it, NULL while free


class UploadJobRow(Base):
    """A chunked upload in progress: the job URL and every acknowledged chunk, so any process resumes it."""

    __tablename__ = "upload_jobs"
    url: Mapped[str] = mapped_column(Text, primary_key=True)  # the unversioned object path
    job: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[str] = mapped_column(String(40))


class ConflictRow(Base):
    """A field changed both here and on the remote since the last sync: nothing is overwritten until resolved."""

    __tablename__ = "conflicts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"), index=True)
    field: Mapped[str] = mapped_column(String(64))
    local_value: Mapped[str | None] = mapped_column(Text)
    remote_value: Mapped[str | None] = mapped_column(Text)
    detected_at: Mapped[str] = mapped_column(String(40))
    resolved_at: Mapped[str | None] = mapped_column(String(40))
    resolution: Mapped[str | None] = mapped_column(String(16))  # local | remote


class Change(Base):
    """The ordered outbox: one row per local mutation the remote must learn about.

    A change marked ``done`` is deleted in the same statement (``tr_changes_done``):
    the table holds what is still to send. ``AUTOINCREMENT``: a seq read before
    a push never names a change recorded since.
    """

    __tablename__ = "changes"
    __table_args__ = (
        # state too, so that counting the pending rows by kind reads the index alone
        Index("ix_changes_pending", "kind", "entity_id", "state", sqlite_where=text("state = 'pending'")),
        {"sqlite_autoincrement": True},
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    entity_kind: Mapped[str] = mapped_column(String(16))
    entity_id: Mapped[int] = mapped_column(Integer)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class BundleRecord(Base):
    """A bundle this store exported or imported (``direction``); an imported id is never applied twice."""

    __tablename__ = "bundles"
    bundle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    direction: Mapped[str] = mapped_column(String(8), primary_key=True)  # import | export
    kind: Mapped[str] = mapped_column(String(16))  # outbound | offline
    peer_store: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[str] = mapped_column(String(40))
    recorded_at: Mapped[str] = mapped_column(String(40))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)


class BundleRow(Base):
    """A workflow, execution or asset that came in a bundle: its fate goes back in ``--for-offline`` bundles."""

    __tablename__ = "bundle_rows"
    rid: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    bundle_id: Mapped[str] = mapped_column(String(64))



class SyncLogEntry(Base):
    """One push, pull, bundle export or bundle import: written when it starts, completed when it ends.

    ``outcome`` is ``running`` until the end (a row left ``running`` by a dead
    process is a sync that never finished), then ``ok``, ``partial`` (some
    rows or objects failed), ``failed`` or ``interrupted``. ``summary`` holds
    the counts (``satchel.sync.summarize`` of the ``SyncResult`` for push and pull).
    """

    __tablename__ = "sync_log"
    __table_args__ = ({"sqlite_autoincrement": True},)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operation: Mapped[str] = mapped_column(String(16))  # push | pull | bundle-export | bundle-import
    remote: Mapped[str | None] = mapped_column(Text)  # the catalog URL, or the bundle's path
    started_at: Mapped[str] = mapped_column(String(40))
    finished_at: Mapped[str | None] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(16))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class CachePin(Base):
    """An asset whose bytes ``satchel gc`` keeps even once the server has them."""

    __tablename__ = "cache_pins"
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32))  # get | download | pin
    pinned_at: Mapped[str] = mapped_column(String(40))


CHANGE_KINDS = (
    "term",  # a vocabulary term added locally
    "workflow",
    "execution",  # a new execution row
    "execution_status",  # a status transition (remote needs the latest only)
    "asset",  # a new asset row (bytes first)
    "tag_add",
    "tag_remove",
    "link",  # an <Asset>_Execution row
    "description",  # an asset description edit
)


#: the journal's triggers, as the migrations create them (a test compares them with a migrated journal)
TRIGGERS = {
    "tr_registrations_committed": (
        "CREATE TRIGGER tr_registrations_committed AFTER UPDATE OF asset_id ON registrations"
        " FOR EACH ROW WHEN NEW.asset_id IS NOT NULL"
        " BEGIN DELETE FROM registrations WHERE id = NEW.id; END"
    ),
    "tr_registrations_committed_name": (
        "CREATE TRIGGER tr_registrations_committed_name BEFORE INSERT ON registrations"
        " FOR EACH ROW WHEN EXISTS (SELECT 1 FROM assets a WHERE a.filename = NEW.file_name"
        " AND a.asset_table = NEW.asset_table AND EXISTS (SELECT 1 FROM asset_links l"
        " WHERE l.asset_id = a.id AND l.execution_id = NEW.execution_id AND l.role = 'Output'))"
        " BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: registrations.execution_id,"
        " registrations.asset_table, registrations.file_name (already committed)'); END"
    ),
    "tr_changes_done": (
        "CREATE TRIGGER tr_changes_done AFTER UPDATE OF state ON changes"
        " FOR EACH ROW WHEN NEW.state = 'done'"
        " BEGIN DELETE FROM changes WHERE seq = NEW.seq; END"
    ),
}
for _sql in TRIGGERS.values():  # a schema made from these models (create_all) has them too
    event.listen(Base.metadata, "after_create", DDL(_sql))

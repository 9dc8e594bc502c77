"""The journal schema is owned by migrations/: upgrades are atomic, applied once, and refuse newer stores."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from satchel import DerivaML, SchemaVersionError, StoreError
from satchel.journal import make_engine, migrate, write_transaction
from satchel.journal.models import Base
from workflows import config

FIRST = "0001_journal"


def revision_of(path: Path) -> str | None:
    with sqlite3.connect(path) as conn:
        try:
            rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        except sqlite3.OperationalError:
            return None
    assert len(rows) <= 1
    return rows[0][0] if rows else None


def upgrade_to(path: Path, target: str) -> None:
    engine = make_engine(path)
    try:
        migrate.upgrade(engine, target)
    finally:
        engine.dispose()


def test_models_match_the_migrated_schema(tmp_path: Path):
    engine = make_engine(tmp_path / "j.db")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"


def test_store_created_at_the_first_revision_upgrades_with_its_data(tmp_path: Path):
    path = tmp_path / "journal.db"
    upgrade_to(path, FIRST)
    assert revision_of(path) == FIRST
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "rid_pool" not in tables
        conn.execute("INSERT INTO store_info (key, value) VALUES ('store_id', 'OLDSTORE01'), ('rid_serial', '7')")
        conn.execute(
            "INSERT INTO vocabulary_terms (vocabulary, name, description, synonyms, origin, sync_state)"
            " VALUES ('Asset_Type', 'Kept_Term', 'from an old store', '[]', 'local', 'local')"
        )
    with DerivaML("example.org", "1", working_dir=tmp_path) as ml:
        assert revision_of(path) == migrate.head_revision()
        assert ml.store.store_id == "OLDSTORE01"
        assert ml.lookup_term("Asset_Type", "Kept_Term").description == "from an old store"
        term = ml.lookup_term("Asset_Type", "Kept_Term")
        assert term.rid is not None and term.rid.startswith("L_OLDSTORE01_"), "0009 gave the old term a RID"
        training = ml.lookup_term("Workflow_Type", "Training")  # 0009 seeds deriva-ml's Workflow_Type terms
        assert training.rid.startswith("L_OLDSTORE01_") and training.rid != term.rid
        exe = ml.create_execution(config(ml))
        assert exe.rid.startswith("L_OLDSTORE01_") and exe.rid not in {f"L_OLDSTORE01_{n}" for n in "1234567"}, \
            "the RID serial carried over"


def test_a_store_from_a_newer_satchel_is_refused(tmp_path: Path):
    with DerivaML("example.org", "1", working_dir=tmp_path):
        pass
    with sqlite3.connect(tmp_path / "journal.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    with pytest.raises(SchemaVersionError, match="newer satchel.*upgrade satchel"):
        DerivaML("example.org", "1", working_dir=tmp_path)
    assert revision_of(tmp_path / "journal.db") == "9999_from_the_future", "refusing changes nothing"


def test_opening_twice_applies_each_migration_once(tmp_path: Path):
    for _ in range(3):
        with DerivaML("example.org", "1", working_dir=tmp_path) as ml:
            ml.create_execution(config(ml))
    assert revision_of(tmp_path / "journal.db") == migrate.head_revision()
    with sqlite3.connect(tmp_path / "journal.db") as conn:
        assert conn.execute("SELECT count(*) FROM executions").fetchone()[0] == 3
        assert conn.execute("SELECT count(*) FROM store_info WHERE key='store_id'").fetchone()[0] == 1


def test_a_failing_migration_rolls_back_all_pending_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A bad migration after a good one: neither applies, the store stays at its old revision."""
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.migrations_dir(), scripts, ignore=shutil.ignore_patterns("__pycache__"))
    head = migrate.head_revision()
    (scripts / "versions" / "0900_good.py").write_text(
        f'revision = "0900_good"\ndown_revision = "{head}"\nbranch_labels = None\ndepends_on = None\n'
        "from alembic import op\nimport sqlalchemy as sa\n"
        "def upgrade():\n    op.create_table('good_table', sa.Column('x', sa.Integer))\n"
        "def downgrade():\n    op.drop_table('good_table')\n"
    )
    (scripts / "versions" / "0901_bad.py").write_text(
        'revision = "0901_bad"\ndown_revision = "0900_good"\nbranch_labels = None\ndepends_on = None\n'
        "from alembic import op\nimport sqlalchemy as sa\n"
        "def upgrade():\n    op.add_column('store_info', sa.Column('y', sa.Integer))\n"
        "    op.execute('SELECT * FROM no_such_table')\n"
        "def downgrade():\n    pass\n"
    )
    path = tmp_path / "journal.db"
    upgrade_to(path, head)
    monkeypatch.setattr(migrate, "migrations_dir", lambda: scripts)
    monkeypatch.setattr(migrate, "LATEST", "0901_bad")
    engine = make_engine(path)
    with pytest.raises(StoreError, match=r"upgrading the journal .* failed, and nothing was changed: .*no_such_table"):
        migrate.upgrade(engine)
    engine.dispose()
    assert revision_of(path) == head
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        cols = {r[1] for r in conn.execute("PRAGMA table_info(store_info)")}
    assert "good_table" not in tables and "y" not in cols


def test_migrations_can_run_by_hand_with_alembic(tmp_path: Path):
    cfg = migrate.alembic_config()
    cfg.cmd_opts = None
    path = tmp_path / "journal.db"
    engine = make_engine(path)
    with write_transaction(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == migrate.head_revision()
    engine.dispose()


def test_latest_constant_is_the_head_of_migrations():
    assert migrate.LATEST == migrate.script_directory().get_current_head()


def test_unsent_assets_with_names_hatrac_cannot_store_get_shorter_ones(tmp_path: Path):
    """0008: an object name whose last component passes 228 characters fails every push with 500."""
    path = tmp_path / "journal.db"
    upgrade_to(path, "0007_compact_journal")
    names = {"L_A_1": "scan " + "x" * 240 + ".tiff", "L_A_2": "scan " + "x" * 241 + ".tiff",
             "L_A_3": "scan " + "x" * 242 + ".tiff", "L_A_4": "b.png"}
    states = {"L_A_1": ("local", None), "L_A_2": ("failed", None), "L_A_3": ("synced", "/hatrac/Image/x:V1"),
              "L_A_4": ("local", None)}
    before = {rid: f"/hatrac/Image/{'a' * 32}.{name.replace(' ', '%20')}" for rid, name in names.items()}
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO store_info (key, value) VALUES ('store_id', 'A'), ('rid_serial', '4')")
        for rid, name in names.items():
            conn.execute(
                "INSERT INTO assets (rid, asset_table, filename, length, md5, url, asset_metadata, created_at, origin,"
                " sync_state, object_url) VALUES (?, 'Image', ?, 1, ?, ?, '{}', '2026-12-01', 'local', ?, ?)",
                (rid, name, "a" * 32, before[rid], *states[rid]))
    with DerivaML("example.org", "1", working_dir=tmp_path):
        pass
    with sqlite3.connect(path) as conn:
        urls = dict(conn.execute("SELECT rid, url FROM assets"))
    assert urls["L_A_3"] == before["L_A_3"] and urls["L_A_4"] == before["L_A_4"], "sent, or short enough: kept"
    for rid in ("L_A_1", "L_A_2"):
        leaf = urls[rid].rsplit("/", 1)[-1]
        assert len(leaf) <= 228 and leaf.startswith("a" * 32 + ".scan%20xxx") and leaf.endswith(".tiff")
    assert urls["L_A_1"] != urls["L_A_2"], "distinct names stay distinct"

"""The journal keeps what is still to do: committed registrations and done outbox rows are deleted,
and neither their duplicate checks nor their ids suffer for it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from satchel import DerivaML, DuplicateAssetError, ExecutionConfiguration
from satchel.journal import make_engine, migrate, report
from satchel.journal.models import TRIGGERS
from workflows import config

BEFORE = "0006_changes_state_kind"
AT = "2026-11-25T00:00:00+00:00"


def rows(path: Path, sql: str, args: tuple = ()) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, args).fetchall()


@pytest.fixture
def ml(tmp_path: Path):
    with DerivaML("example.org", "1", working_dir=tmp_path / "store") as m:
        yield m


def run(ml: DerivaML, files: dict[str, bytes], table: str = "Execution_Asset"):
    exe = ml.create_execution(config(ml, "compaction"))
    with exe:
        for name, data in files.items():
            exe.asset_file_path(table, name).write_bytes(data)
    return exe


def test_a_commit_deletes_the_registrations_it_turns_into_assets(ml):
    exe = run(ml, {"a.bin": b"a", "b.bin": b"b"})
    journal = ml.store.journal_path
    assert rows(journal, "SELECT file_name FROM registrations ORDER BY id") == [("a.bin",), ("b.bin",)]
    assert exe.commit_output_assets().total_uploaded == 2
    assert rows(journal, "SELECT count(*) FROM registrations") == [(0,)]
    assert sorted(r for (r,) in rows(journal, "SELECT filename FROM assets")) == ["a.bin", "b.bin"]


def test_a_name_committed_in_an_execution_is_still_a_duplicate_there(ml):
    exe = run(ml, {"x.bin": b"1"})
    exe.commit_output_assets()
    again = ml.resume_execution(exe.rid)  # a fresh handle: only the journal knows the name was used
    with pytest.raises(DuplicateAssetError, match="x.bin"):
        again.asset_file_path("Execution_Asset", "x.bin")
    # the same name elsewhere is free: another table of the execution, another execution
    again.asset_file_path("Execution_Metadata", "x.bin").write_bytes(b"2")
    run(ml, {"x.bin": b"3"}).commit_output_assets()


def test_an_input_of_the_same_name_does_not_block_an_output(ml):
    first = run(ml, {"model.pt": b"v1"})
    (committed,) = first.commit_output_assets().assets
    exe = ml.create_execution(config(ml, "fine-tune"))
    with exe:
        exe.download_asset(committed.asset_rid, exe.working_dir / "in")
        exe.asset_file_path("Execution_Asset", "model.pt").write_bytes(b"v2")
    (out,) = exe.commit_output_assets().assets
    assert ml.lookup_asset(out.asset_rid).md5 != ml.lookup_asset(committed.asset_rid).md5


def test_registration_ids_are_never_reused_after_a_commit_deletes_them(ml):
    exe = run(ml, {"a.bin": b"a"})
    (first_id,) = rows(ml.store.journal_path, "SELECT id FROM registrations")[0]
    exe.commit_output_assets()
    run(ml, {"b.bin": b"b"})
    (second_id,) = rows(ml.store.journal_path, "SELECT id FROM registrations")[0]
    assert second_id > first_id


def test_a_change_marked_done_is_deleted_and_its_seq_never_reused(ml):
    run(ml, {"a.bin": b"a"}).commit_output_assets()
    journal = ml.store.journal_path
    with sqlite3.connect(journal) as conn:
        (top,) = conn.execute("SELECT max(seq) FROM changes").fetchone()
        conn.execute("UPDATE changes SET state = 'done' WHERE seq = ?", (top,))
        assert conn.execute("SELECT count(*) FROM changes WHERE seq = ?", (top,)).fetchone() == (0,)
        conn.execute("UPDATE changes SET state = 'done'")
    assert rows(journal, "SELECT count(*) FROM changes") == [(0,)]
    run(ml, {"b.bin": b"b"})
    assert min(s for (s,) in rows(journal, "SELECT seq FROM changes")) > top
    assert ml.status()["pending_changes"] == {"execution": 1, "execution_status": 2}  # created, Running, Stopped


def test_the_migration_drops_committed_registrations_and_done_changes_and_keeps_the_rest(tmp_path: Path):
    path = tmp_path / "store" / "journal.db"
    path.parent.mkdir()
    engine = make_engine(path)
    migrate.upgrade(engine, BEFORE)
    engine.dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO store_info (key, value) VALUES ('store_id', 'OLDSTORE01'), ('rid_serial', '9')")
        conn.execute(
            "INSERT INTO executions (id, rid, description, status, configuration, created_at, origin, sync_state)"
            " VALUES (1, 'L_OLDSTORE01_1', '', 'Pending_Upload', '{}', ?, 'local', 'local')", (AT,)
        )
        conn.execute(
            "INSERT INTO assets (id, rid, asset_table, filename, length, md5, blake3, url, asset_metadata, created_at,"
            " origin, sync_state) VALUES (1, 'L_OLDSTORE01_2', 'Execution_Asset', 'done.bin', 1, 'm', 'b',"
            " '/hatrac/Execution_Asset/m.done.bin', '{}', ?, 'local', 'local')", (AT,)
        )
        conn.execute("INSERT INTO asset_tags (asset_id, term, sync_state) VALUES (1, 'Output_File', 'local')")
        conn.execute("INSERT INTO asset_links (asset_id, execution_id, role, sync_state) VALUES (1, 1, 'Output', 'local')")
        reg = ("INSERT INTO registrations (id, execution_id, asset_table, file_name, staged_path, mode, asset_types,"
               " asset_metadata, asset_id, registered_at) VALUES (?, 1, 'Execution_Asset', ?, ?, 'new', '[]', '{}', ?, ?)")
        conn.execute(reg, (7, "pending.bin", "/s/pending.bin", None, AT))
        conn.execute(reg, (8, "done.bin", "/s/done.bin", 1, AT))  # the highest id: deleted, never reused
        chg = ("INSERT INTO changes (seq, kind, entity_kind, entity_id, detail, created_at, state, attempts)"
               " VALUES (?, ?, ?, 1, '{}', ?, ?, 0)")
        conn.execute(chg, (1, "execution", "execution", AT, "done"))
        conn.execute(chg, (2, "asset", "asset", AT, "pending"))
        conn.execute(chg, (3, "execution_status", "execution", AT, "done"))
    with DerivaML("example.org", "1", working_dir=path.parent) as ml:
        assert rows(path, "SELECT version_num FROM alembic_version") == [(migrate.LATEST,)]
        assert rows(path, "SELECT id, file_name FROM registrations") == [(7, "pending.bin")]
        assert rows(path, "SELECT seq, kind FROM changes") == [(2, "asset")]
        assert rows(path, "SELECT asset_id, term FROM asset_tags") == [(1, "Output_File")]
        assert ml.status()["pending_changes"] == {"asset": 1}
        exe = ml.resume_execution("L_OLDSTORE01_1")
        assert [p.file_name for p in exe._handed_out.values()] == ["pending.bin"]
        with pytest.raises(DuplicateAssetError):  # committed before the migration: still taken
            exe.asset_file_path("Execution_Asset", "done.bin")
        exe.asset_file_path("Execution_Asset", "new.bin")
        ml.add_term("Asset_Type", "Later", description="after the migration")
    assert rows(path, "SELECT max(id) > 8 FROM registrations") == [(1,)], "ids continue past every old one"
    assert rows(path, "SELECT min(seq) > 3 FROM changes WHERE kind = 'term'") == [(1,)], "seqs too"


def test_the_migrated_journal_has_the_models_triggers(tmp_path: Path):
    with DerivaML("example.org", "1", working_dir=tmp_path / "store") as ml:
        found = dict(rows(ml.store.journal_path, "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
    assert found == TRIGGERS


# what status asks of a big table, and the index that answers it alone (no row read, no sort)
STATUS_PLANS = {
    report.ASSETS_SQL.format(state="local"): "COVERING INDEX ix_assets_local",
    report.SENT_SQL: "COVERING INDEX ix_assets_local",
    report.PENDING_SQL: "COVERING INDEX ix_changes_pending",
    report.STATE_SQL.format(table="asset_tags", state="local"): "COVERING INDEX ix_asset_tags_sync_state",
    report.STATE_SQL.format(table="asset_links", state="local"): "COVERING INDEX ix_asset_links_sync_state",
    report.STATE_SQL.format(table="asset_links", state="failed"): "COVERING INDEX ix_asset_links_sync_state",
    report.ASSETS_SQL.format(state="failed"): "INDEX ix_assets_sync_state",  # failed rows only: few
}


@pytest.mark.parametrize("sql", list(STATUS_PLANS))
def test_status_counts_come_from_indexes(ml, sql):
    plan = " ".join(r[3] for r in rows(ml.store.journal_path, "EXPLAIN QUERY PLAN " + sql))
    assert STATUS_PLANS[sql] in plan and "TEMP B-TREE" not in plan, plan


def test_push_finds_local_assets_by_the_partial_index(ml):
    sql = "SELECT id FROM assets WHERE sync_state = ? AND object_url IS NULL"
    plan = " ".join(r[3] for r in rows(ml.store.journal_path, "EXPLAIN QUERY PLAN " + sql, ("local",)))
    assert "INDEX ix_assets_local" in plan, plan


def test_the_committed_name_check_seeks_by_file_name_not_through_the_executions_outputs(ml):
    """Registering after a big commit costs a seek, not a pass over the execution's outputs."""
    sql = TRIGGERS["tr_registrations_committed_name"]
    check = sql.split("WHEN EXISTS (", 1)[1].rsplit(") BEGIN", 1)[0].replace("NEW.", ":")
    plan = [r[3] for r in rows(ml.store.journal_path, "EXPLAIN QUERY PLAN " + check,
                               {"file_name": "x.bin", "asset_table": "File", "execution_id": 1})]
    assert plan[0] == "SEARCH a USING INDEX ix_assets_filename (filename=?)", plan
    assert "(asset_id=? AND execution_id=?)" in plan[-1], plan


def test_marking_changes_done_by_entity_seeks_the_pending_index(ml):
    sql = "UPDATE changes SET state = 'done' WHERE state = ? AND kind = ? AND entity_id IN (?, ?)"
    plan = " ".join(r[3] for r in rows(ml.store.journal_path, "EXPLAIN QUERY PLAN " + sql, ("pending", "asset", 1, 2)))
    assert "INDEX ix_changes_pending (kind=? AND entity_id=?" in plan, plan


def test_indexes_and_triggers_of_the_models_are_those_of_the_migrations(tmp_path: Path):
    """Down to partial-index predicates, which the models-vs-migrations comparison of alembic does not see."""
    from sqlalchemy import create_engine

    from satchel.journal.models import Base

    engine = make_engine(tmp_path / "migrated.db")
    migrate.upgrade(engine)
    engine.dispose()
    made = create_engine(f"sqlite:///{tmp_path / 'made.db'}")
    Base.metadata.create_all(made)
    made.dispose()

    def schema(path: Path) -> dict[str, str]:
        return {name: " ".join(sql.split()) for name, sql in rows(
            path, "SELECT name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') AND sql IS NOT NULL")}

    assert schema(tmp_path / "made.db") == schema(tmp_path / "migrated.db")

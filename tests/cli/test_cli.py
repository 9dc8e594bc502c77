"""The command line: thin over the library, errors as exit codes, --json as a contract."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from satchel import DerivaML, ExecutionConfiguration
from satchel.cli import main
from satchel.testing.pytest_plugin import deriva_server  # noqa: F401
from workflows import config


@pytest.fixture
def populated(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    with DerivaML("example.org", "1", working_dir=store) as ml:
        exe = ml.create_execution(config(ml, "cli test"))
        with exe:
            exe.asset_file_path("Execution_Asset", "a.bin", asset_types=["Model_File"]).write_bytes(b"a" * 2048)
            exe.asset_file_path("Execution_Metadata", "b.txt").write_text("b")
        exe.commit_output_assets()
    return store


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_status_json_counts_what_is_not_on_the_remote(populated):
    res = invoke("status", "--store", str(populated), "--json")
    assert res.exit_code == 0
    data = json.loads(res.output)
    assert data["executions"] == 1 and data["assets"] == 2 and data["asset_bytes"] == 2049
    assert data["executions_by_status"] == {"Uploaded": 1}  # uploaded into the store, not yet pushed
    assert data["remote"] == "https://example.org" and data["remote_configured"] is False  # push's rule too


_STATUS_IN_A_FRESH_PROCESS = """
import json, sys
from satchel.cli import main
main(["status", "--json", "--store", sys.argv[1]], standalone_mode=False)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("sqlalchemy", "alembic", "rich", "httpx"))))
"""


def status_in_a_fresh_process(store: Path) -> tuple[dict, list[str]]:
    """``satchel status --json`` in a new interpreter: (the status, the heavy modules it imported)."""
    res = subprocess.run([sys.executable, "-c", _STATUS_IN_A_FRESH_PROCESS, str(store)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    status, _, imported = res.stdout.rpartition("\n[")
    return json.loads(status), json.loads("[" + imported)


def test_status_of_a_current_store_needs_neither_sqlalchemy_nor_rich(populated):
    status, imported = status_in_a_fresh_process(populated)
    assert imported == []
    assert status == json.loads(invoke("status", "--store", str(populated), "--json").output)
    with DerivaML("example.org", "1", working_dir=populated) as ml:
        assert status == ml.status()


def test_status_of_a_store_at_an_older_revision_migrates_it_first(tmp_path):
    from satchel.journal import make_engine, migrate

    store = tmp_path / "old"
    store.mkdir()
    engine = make_engine(store / "journal.db")
    migrate.upgrade(engine, "0006_changes_state_kind")
    engine.dispose()
    with sqlite3.connect(store / "journal.db") as conn:
        conn.execute("INSERT INTO store_info (key, value) VALUES ('store_id', 'OLDSTORE01'), ('rid_serial', '0'),"
                     " ('hostname', 'example.org'), ('catalog_id', '1')")
    status, imported = status_in_a_fresh_process(store)
    assert "alembic" in imported, "the older journal was opened in full, and migrated"
    assert status["store_id"] == "OLDSTORE01" and status["assets"] == 0
    with sqlite3.connect(store / "journal.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (migrate.LATEST,)
    assert status_in_a_fresh_process(store) == (status, [])


def test_status_human(populated):
    res = invoke("status", "--store", str(populated))
    assert res.exit_code == 0 and "not yet on the remote" in res.output and "2.0 KiB" in res.output


def test_ls_and_show(populated):
    res = invoke("ls", "--store", str(populated), "--json", "--type", "Model_File")
    (asset,) = json.loads(res.output)
    assert asset["Filename"] == "a.bin" and "Output_File" in asset["Asset_Type"]
    shown = json.loads(invoke("show", "--store", str(populated), asset["RID"], "--json").output)
    assert shown["kind"] == "asset" and shown["executions"][0]["Asset_Role"] == "Output"
    exe_rid = shown["executions"][0]["Execution"]
    exe = json.loads(invoke("show", "--store", str(populated), exe_rid, "--json").output)
    assert exe["Status"] == "Uploaded" and len(exe["assets"]) == 2
    assert [h["to"] for h in exe["history"]] == ["Created", "Running", "Stopped", "Pending_Upload", "Uploaded"]
    executions = json.loads(invoke("ls", "--store", str(populated), "--executions", "--json").output)
    assert [e["RID"] for e in executions] == [exe_rid]


def test_unknown_rid_exits_3_with_one_line(populated):
    res = CliRunner().invoke(main, ["show", "--store", str(populated), "9-NOPE"])
    assert res.exit_code == 3
    assert res.output.startswith("error: no asset or execution has RID 9-NOPE")


def test_not_a_store_exits_5(tmp_path):
    res = CliRunner().invoke(main, ["status", "--store", str(tmp_path)])
    assert res.exit_code == 5 and "not a satchel store" in res.output


def test_the_only_store_is_found_under_satchel_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SATCHEL_HOME", str(tmp_path / "home"))
    res = CliRunner().invoke(main, ["status"])
    assert res.exit_code == 5 and "no store under" in res.output
    with DerivaML("h.example.org", "4"):
        pass
    res = invoke("status", "--json")
    assert json.loads(res.output)["store"] == str(tmp_path / "home" / "h.example.org" / "4")


def test_verify_finds_corruption_and_exits_4(populated):
    assert invoke("verify", "--store", str(populated)).exit_code == 0
    obj = next(p for p in (populated / "cache" / "objects").rglob("*") if p.is_file())
    obj.chmod(0o644)
    obj.write_bytes(b"rotten")
    res = CliRunner().invoke(main, ["verify", "--store", str(populated), "--json"])
    assert res.exit_code == 4
    data = json.loads(res.output)
    assert not data["ok"] and len(data["quarantined"]) == 1 and len(data["lost_assets"]) == 1


def test_every_command_is_documented():
    doc = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
    for name in main.list_commands(None):
        assert f"## satchel {name}" in doc, f"docs/cli.md lacks a section for `satchel {name}`"


def test_demo_runs_as_a_user_runs_it(tmp_path):
    exe = shutil.which("satchel") or str(Path(sys.executable).parent / "satchel")
    res = subprocess.run([exe, "demo", "--store", str(tmp_path / "demo")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "lineage of" in res.stdout and "verify:" in res.stdout and "ok" in res.stdout


def test_sync_from_the_command_line(populated, deriva_server, monkeypatch):
    monkeypatch.setenv("SATCHEL_TOKEN", deriva_server.token)
    store = str(populated)
    assert invoke("remote", "set", "--store", store, deriva_server.url).exit_code == 0
    plan = json.loads(invoke("push", "--store", store, "--dry-run", "--json").output)
    assert plan["assets"] == 2 and plan["objects"] == 2
    dry = json.loads(CliRunner().invoke(main, ["sync", "--store", store, "--dry-run", "--json"]).stdout)
    assert dry["push"]["assets"] == 2 and dry["pull"]["watermarks"] == {}  # one document, both plans
    res = CliRunner().invoke(main, ["sync", "--store", store, "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)  # one document: the push and the pull
    assert doc["ok"] and doc["push"]["done"]["assets"] == 2 and doc["pull"]["ok"]
    status = json.loads(invoke("status", "--store", store, "--json").output)
    assert status["assets"] == 0 and status["executions"] == 0 and status["would_send"]["assets"] == 0
    assert status["remote"] == deriva_server.url
    dry = json.loads(invoke("pull", "--store", store, "--dry-run", "--json").output)
    assert dry["model_known"] and dry["watermarks"]
    res = CliRunner().invoke(main, ["resolve", "--store", store, "9-NOPE", "--keep", "local"])
    assert res.exit_code == 3 and "no asset" in res.output


def test_push_without_credentials_exits_6(populated, deriva_server, monkeypatch):
    monkeypatch.delenv("SATCHEL_TOKEN", raising=False)
    monkeypatch.delenv("SATCHEL_COOKIE", raising=False)
    monkeypatch.setenv("DERIVA_CREDENTIAL_FILE", str(populated / "no-such-file.json"))
    invoke("remote", "set", "--store", str(populated), deriva_server.url)
    res = CliRunner().invoke(main, ["push", "--store", str(populated)])
    assert res.exit_code == 6 and "no credentials" in res.output

"""Issue 10, from outside: each failure is one clear line with its exit code, and nothing changes.

Every test here failed before its fix (a traceback, a raw exception or a wrong answer), and drives
satchel as a user does: the real command line in a subprocess, real files, the emulator over loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from satchel import BadNameError, DerivaML, RemoteURLError, SatchelError
from satchel.testing.pytest_plugin import deriva_server  # noqa: F401
from satchel.testing.server import READER
from workflows import config


def satchel(*args: str, check: bool = False, env: dict | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("satchel") or str(Path(sys.executable).parent / "satchel")
    full_env = {**os.environ, **(env or {})}
    full_env.pop("SATCHEL_DEBUG", None) if "SATCHEL_DEBUG" not in (env or {}) else None
    res = subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, env=full_env)
    if check:
        assert res.returncode == 0, res.stderr
    return res


def one_line_error(res: subprocess.CompletedProcess, code: int) -> str:
    assert res.returncode == code, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr and res.stderr.startswith("error: "), res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    return res.stderr


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    with DerivaML("example.org", "1", working_dir=path) as ml:
        exe = ml.create_execution(config(ml, "edges"))
        with exe:
            exe.asset_file_path("Execution_Asset", "a.bin").write_bytes(b"a" * 100)
        exe.commit_output_assets()
    return path


def test_a_damaged_journal_is_named_with_what_to_do(store):
    with open(store / "journal.db", "r+b") as f:
        f.write(b"not sqlite at all" * 8)
    before = (store / "journal.db").read_bytes()
    err = one_line_error(satchel("status", "--store", str(store)), 5)
    assert str(store / "journal.db") in err and "damaged" in err and "nothing was changed" in err
    assert "backup" in err
    assert (store / "journal.db").read_bytes() == before
    debug = satchel("status", "--store", str(store), env={"SATCHEL_DEBUG": "1"})
    assert debug.returncode != 0 and "Traceback" in debug.stderr  # the switch for bug reports


def test_a_damaged_stat_cache_is_rebuilt(store):
    with open(store / "cache" / "index.db", "r+b") as f:
        f.write(b"garbage" * 20)
    res = satchel("verify", "--store", str(store))
    assert res.returncode == 0, res.stderr
    assert list((store / "cache").glob("index.db.damaged-*"))


@pytest.mark.parametrize("url", ["127.0.0.1:43847", "htp://example.org", "https://", "http://user:PW@example.org"])
def test_bad_remote_urls_are_refused_and_never_stored(store, url):
    err = one_line_error(satchel("remote", "set", url, "--store", str(store)), 1)
    assert "PW" not in err
    shown = satchel("remote", "show", "--json", "--store", str(store), check=True)
    assert json.loads(shown.stdout)["url"] == "https://example.org"
    journal = b"".join(p.read_bytes() for p in store.glob("journal.db*"))
    assert b"PW" not in journal


def test_every_command_names_the_same_remote(store):
    status = json.loads(satchel("status", "--json", "--store", str(store), check=True).stdout)
    shown = json.loads(satchel("remote", "show", "--json", "--store", str(store), check=True).stdout)
    assert status["remote"] == shown["url"] == "https://example.org" and status["remote_configured"] is False
    plan = satchel("push", "--dry-run", "--store", str(store), check=True).stdout
    assert "would push to https://example.org" in plan
    satchel("remote", "set", "http://127.0.0.1:9/", "--store", str(store), check=True)
    status = json.loads(satchel("status", "--json", "--store", str(store), check=True).stdout)
    assert status["remote"] == "http://127.0.0.1:9" and status["remote_configured"] is True


def test_rids_are_case_insensitive_and_show_names_the_execution_fully(store):
    with DerivaML("example.org", "1", working_dir=store) as ml:
        asset = next(iter(ml.find_assets()))
        exe_rid = ml.list_executions()[0].execution_rid
    shown = satchel("show", asset.rid.lower(), "--json", "--store", str(store), check=True)
    assert json.loads(shown.stdout)["RID"] == asset.rid
    text = satchel("show", exe_rid.lower(), "--store", str(store), check=True).stdout
    assert f"execution {exe_rid}" in text and "workflow " in text and "description: edges" in text


def test_unusable_file_names_are_refused_at_registration(store):
    with DerivaML("example.org", "1", working_dir=store) as ml:
        exe = ml.create_execution(config(ml, "names"))
        with exe:
            for name in ("x" * 5000, "a\0b"):
                with pytest.raises(BadNameError, match="file name") as caught:
                    exe.asset_file_path("Execution_Asset", name)
                assert isinstance(caught.value, SatchelError) and isinstance(caught.value, ValueError)
        assert exe.commit_output_assets().assets == []


def test_a_file_system_refusal_is_one_line_not_a_traceback(store, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be")
    err = one_line_error(satchel("bundle", "export", str(blocked / "sub" / "x.zip"), "--store", str(store)), 1)
    assert "does not exist" in err
    err = one_line_error(satchel("bundle", "export", "/proc/satchel-test.zip", "--store", str(store)), 5)
    assert "SATCHEL_DEBUG" in err


def test_a_403_says_what_to_check(deriva_server, store):
    from satchel import PermissionDenied

    with DerivaML("example.org", "1", working_dir=store) as ml, deriva_server.remote(READER) as remote:
        with pytest.raises(PermissionDenied, match="ask the catalog's owner"):
            ml.push(remote=remote)
        assert ml.status()["assets"] == 1  # nothing was lost or marked


def test_pull_of_a_rid_the_server_lacks_does_not_advise_itself(deriva_server, store):
    satchel("remote", "set", deriva_server.url, "--store", str(store), check=True)
    with DerivaML("example.org", "1", working_dir=store) as ml, deriva_server.remote() as remote:
        with pytest.raises(SatchelError) as caught:
            ml.pull(remote=remote, assets=["1-ZZZZ"])
    assert "satchel pull --asset" not in str(caught.value) and "had no asset with RID 1-ZZZZ" in str(caught.value)


def test_remote_url_errors_are_value_errors_too():
    from satchel.api.syncing import check_remote_url

    with pytest.raises(RemoteURLError):
        check_remote_url("ftp://example.org")
    assert check_remote_url("https://Example.org:8443/") == "https://example.org:8443"


def test_shell_completion_works_as_documented():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    assert '_SATCHEL_COMPLETE=bash_source satchel' in docs
    res = satchel("bundle", env={"_SATCHEL_COMPLETE": "bash_complete", "COMP_WORDS": "satchel bun", "COMP_CWORD": "1"})
    assert "bundle" in res.stdout


def test_connection_refused_is_said_at_once_and_keeps_the_work(store):
    import socket
    import time

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    satchel("remote", "set", f"http://127.0.0.1:{port}", "--store", str(store), check=True)
    started = time.monotonic()
    err = one_line_error(satchel("push", "--store", str(store), env={"SATCHEL_TOKEN": "a-token"}), 6)
    assert time.monotonic() - started < 8  # one quick retry, not the whole backoff (about 15 s)
    assert "connection refused" in err and "satchel remote show" in err and "nothing is lost" in err
    status = json.loads(satchel("status", "--json", "--store", str(store), check=True).stdout)
    assert status["assets"] == 1


def test_a_pull_with_nothing_changed_reads_nothing_and_says_up_to_date(deriva_server, store, tmp_path):
    from syncsupport_cli import push_some

    push_some(deriva_server, store)
    other = tmp_path / "other"
    DerivaML("example.org", "1", working_dir=other).close()  # a second machine's store
    env = {"SATCHEL_TOKEN": deriva_server.token}
    satchel("remote", "set", deriva_server.url, "--store", str(other), check=True)
    first = satchel("pull", "--store", str(other), env=env, check=True).stdout
    assert "pulled:" in first and "asset rows" in first
    before = deriva_server.stats.requests()
    second = satchel("pull", "--store", str(other), env=env, check=True).stdout
    assert "up to date" in second
    assert deriva_server.stats.requests() - before <= 4  # login, catalog, model: no table read
    with DerivaML("example.org", "1", working_dir=store) as ml, deriva_server.remote() as remote:
        ml.update_asset(next(iter(ml.find_assets())).rid, description="changed")
        assert ml.push(remote=remote).ok
    third = satchel("pull", "--store", str(other), env=env, check=True).stdout
    assert "pulled:" in third


def test_dry_run_and_push_count_statuses_alike(deriva_server, store):
    with DerivaML("example.org", "1", working_dir=store) as ml, deriva_server.remote() as remote:
        running = ml.create_execution(config(ml, "still running"))
        running.execution_start()
        plan = ml.sync_plan()
        result = ml.push(remote=remote)
    assert result.ok and plan.status_updates == result.done["status"] == 1


def test_hardlink_mode_never_hands_out_bytes_changed_in_place(tmp_path):
    """A cache object changed through a shared inode, its size and mtime put back, is caught (by its ctime)."""
    from satchel import IntegrityError

    with DerivaML("example.org", "1", working_dir=tmp_path / "s", link_modes=("reflink", "hardlink", "copy")) as ml:
        exe = ml.create_execution(config(ml, "links"))
        with exe:
            exe.asset_file_path("Execution_Asset", "w.bin").write_bytes(b"w" * 5000)
        exe.commit_output_assets()
        asset = next(iter(ml.find_assets()))
        first = asset.download(tmp_path / "one")  # a hardlink to the cache object
        assert first.stat().st_nlink > 1
        st = first.stat()
        with open(first, "r+b") as f:  # the user edits their copy in place ... and so the object
            f.write(b"X")
        os.utime(first, ns=(st.st_atime_ns, st.st_mtime_ns))  # size and mtime as they were
        with pytest.raises(IntegrityError, match="corrupt"):
            asset.download(tmp_path / "two")
        assert not (tmp_path / "two" / "w.bin").exists()


def test_a_pull_with_a_credential_the_server_refuses_says_so(deriva_server, store):
    satchel("remote", "set", deriva_server.url, "--store", str(store), check=True)
    res = satchel("pull", "--store", str(store), env={"SATCHEL_COOKIE": "webauthn=not-a-session"}, check=True)
    said = " ".join(res.stdout.split())  # rich wraps long lines
    assert "did not take the credential" in said and "only what anyone may read" in said
    ok = satchel("pull", "--store", str(store), env={"SATCHEL_TOKEN": deriva_server.token}, check=True)
    assert "did not take" not in ok.stdout


def test_a_catalog_filename_too_long_for_the_disk_is_shortened_not_a_crash(store, tmp_path):
    import sqlite3

    db = sqlite3.connect(store / "journal.db")  # as a pull mirrors a 5,000-character Filename from the catalog
    db.execute("UPDATE assets SET filename = ?", ("é" * 2500 + ".bin",))
    db.commit()
    db.close()
    with DerivaML("example.org", "1", working_dir=store) as ml:
        asset = next(iter(ml.find_assets()))
        got = asset.download(tmp_path / "out")
        assert got.read_bytes() == b"a" * 100
        assert len(os.fsencode(got.name)) <= 255 and got.name.endswith(f"-{asset.rid}.bin")


def test_a_table_name_with_nul_is_a_clear_error_everywhere(store):
    from satchel import UnknownAssetTableError

    with DerivaML("example.org", "1", working_dir=store) as ml:
        exe = ml.create_execution(config(ml, "nul"))
        calls = [lambda: ml.create_asset_table("Bad\0Name"), lambda: ml.list_assets("Bad\0Name"),
                 lambda: list(ml.find_assets(asset_table="Bad\0Name")),
                 lambda: exe.asset_file_path("Bad\0Name", "a.txt")]
        with exe:
            for call in calls:
                with pytest.raises(UnknownAssetTableError, match="Bad"):
                    call()

"""``satchel bundle export|import`` through the real command line, and bundles checked by bdbag itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from satchel import DerivaML
from workflows import config


def satchel(*args: str, home: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "SATCHEL_HOME": str(home)}
    exe = shutil.which("satchel") or str(Path(sys.executable).parent / "satchel")
    res = subprocess.run([exe, *args], capture_output=True, text=True, env=env,
                         timeout=120)
    if check:
        assert res.returncode == 0, res.stderr
    return res


@pytest.fixture
def offline_store(tmp_path: Path) -> Path:
    store = tmp_path / "lab" / "store"
    with DerivaML("example.org", "1", working_dir=store) as ml:
        exe = ml.create_execution(config(ml, "field run"))
        with exe:
            exe.asset_file_path("Execution_Asset", "weights.bin", asset_types=["Model_File"]).write_bytes(b"w" * 5000)
            exe.asset_file_path("Execution_Asset", "log.txt").write_text("epoch 1\n")
        exe.commit_output_assets()
    return store


@pytest.mark.parametrize("suffix", ["zip", "tar"])
def test_export_then_import_on_a_machine_with_no_store(offline_store, tmp_path, suffix):
    out = tmp_path / f"usb/work.{suffix}"
    out.parent.mkdir()
    exported = json.loads(satchel("bundle", "export", str(out), "--store", str(offline_store), "--json",
                                  home=tmp_path / "lab-home").stdout)
    assert exported["records"]["asset"] == 2 and exported["objects"] == 2
    # another machine, no store yet: the first import makes the one for the bundle's catalog
    home = tmp_path / "connected-home"
    imported = json.loads(satchel("bundle", "import", str(out), "--json", home=home).stdout)
    assert imported["applied"]["assets"] == 2 and (home / "example.org" / "1" / "journal.db").exists()
    status = json.loads(satchel("status", "--json", home=home).stdout)
    assert status["assets"] == 2 and status["executions"] == 1
    again = satchel("bundle", "import", str(out), home=home)
    assert "imported here before; nothing changed" in again.stdout


def test_bdbag_validates_our_bundles(offline_store, tmp_path):
    for suffix in ("zip", "tar"):
        out = tmp_path / f"work.{suffix}"
        satchel("bundle", "export", str(out), "--store", str(offline_store), home=tmp_path / "h")
        bdbag = shutil.which("bdbag") or str(Path(sys.executable).with_name("bdbag"))
        res = subprocess.run([bdbag, "--validate", "full", str(out)], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0 and "is valid" in res.stderr + res.stdout, res.stderr


def test_bad_bundle_is_one_clear_line_and_exit_1(offline_store, tmp_path):
    out = tmp_path / "work.zip"
    satchel("bundle", "export", str(out), "--store", str(offline_store), home=tmp_path / "h")
    bad = tmp_path / "cut.zip"
    bad.write_bytes(out.read_bytes()[:-200])
    res = satchel("bundle", "import", str(bad), "--store", str(offline_store), home=tmp_path / "h", check=False)
    assert res.returncode == 1
    assert res.stderr.startswith("error: ") and "Traceback" not in res.stderr and "copy it again" in res.stderr


def test_export_option_mistakes_are_refused(offline_store, tmp_path):
    res = satchel("bundle", "export", str(tmp_path / "x.zip"), "--asset", "1-ABC", "--store", str(offline_store),
                  home=tmp_path / "h", check=False)
    assert res.returncode == 1 and "--for-offline" in res.stderr
    assert not (tmp_path / "x.zip").exists()
    res = satchel("bundle", "export", str(tmp_path / "missing" / "x.zip"), "--store", str(offline_store),
                  home=tmp_path / "h", check=False)
    assert res.returncode == 1 and "does not exist" in res.stderr


def test_since_keeps_newer_work_only(offline_store, tmp_path):
    out = tmp_path / "x.zip"
    future = json.loads(satchel("bundle", "export", str(out), "--since", "2999-01-01", "--json", "--store",
                                str(offline_store), home=tmp_path / "h").stdout)
    assert future["records"].get("asset", 0) == 0 and future["objects"] == 0
    past = json.loads(satchel("bundle", "export", str(out), "--since", "2000-01-01T00:00+02:00", "--json",
                              "--store", str(offline_store), home=tmp_path / "h").stdout)
    assert past["records"]["asset"] == 2
    res = satchel("bundle", "export", str(out), "--since", "yesterday", "--store", str(offline_store),
                  home=tmp_path / "h", check=False)
    assert res.returncode == 1 and "ISO 8601" in res.stderr


def test_a_corrupt_cached_object_is_never_exported(offline_store, tmp_path):
    from satchel import IntegrityError

    objects = [p for p in (offline_store / "cache" / "objects").rglob("*") if p.is_file()]
    victim = max(objects, key=lambda p: p.stat().st_size)  # weights.bin's object
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[100] ^= 1
    victim.write_bytes(bytes(data))
    with DerivaML("example.org", "1", working_dir=offline_store) as ml:
        with pytest.raises(IntegrityError, match="corrupt"):
            ml.export_bundle(tmp_path / "out.zip")
    assert not (tmp_path / "out.zip").exists() and not list(tmp_path.glob(".out.zip*"))
    res = satchel("bundle", "export", str(tmp_path / "out.tar"), "--store", str(offline_store), home=tmp_path / "h",
                  check=False)
    assert res.returncode == 4 and "Traceback" not in res.stderr  # the object was quarantined by the first try

"""``satchel server`` runs the emulator in the foreground and stops cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import httpx


def run_server(*args):
    return subprocess.Popen(
        [sys.executable, "-c", "from satchel.cli import main; main()", "server", "--json", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    return out, err


def test_server_command_serves_and_keeps_state(tmp_path):
    proc = run_server("--data-dir", str(tmp_path / "state"))
    try:
        info = json.loads(proc.stdout.readline())
        with httpx.Client(base_url=info["url"], headers={"Authorization": f"Bearer {info['token']}"}) as c:
            assert c.get("/authn/session").json()["client"]["id"] == "writer"
            r = c.put("/hatrac/Image/demo/a.txt?parents=true", content=b"hi")
            assert r.status_code == 201
    finally:
        stop(proc)
    proc = run_server("--data-dir", str(tmp_path / "state"))
    try:
        again = json.loads(proc.stdout.readline())
        assert again["token"] == info["token"]
        with httpx.Client(base_url=again["url"]) as c:
            assert c.get("/hatrac/Image/demo/a.txt").content == b"hi"
    finally:
        stop(proc)


def test_help_lists_options():
    from click.testing import CliRunner

    from satchel.cli import main

    result = CliRunner().invoke(main, ["server", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--data-dir"):
        assert option in result.output

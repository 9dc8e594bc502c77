"""Crash anywhere, pull side: a pull (the metadata mirror and a prefetch of bytes) SIGKILLed at random
moments while it is at work, then pulled to completion, leaves the same mirror and cache as a pull that
was never interrupted."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

from syncsupport import kill_at_work, make_remote, mirror_of, populate

from satchel import DerivaML

PULL_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from satchel import DerivaML
    sys.path.insert(0, os.environ["SYNC_SUPPORT"])
    from syncsupport import make_remote
    with DerivaML("localhost", "1", working_dir=sys.argv[1]) as ml, make_remote(sys.argv[2], sys.argv[3]) as remote:
        result = ml.pull(remote=remote, tables=["Model", "Image", "Execution_Metadata"], transfers=2)
        print("OK" if result.ok else f"FAILED {result.failed}")
    """
)


def _pull(store: Path, server, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, SYNC_SUPPORT=str(Path(__file__).parent))
    return subprocess.run([sys.executable, "-c", PULL_SCRIPT, str(store), server.url, server.token],
                          capture_output=True, text=True, timeout=timeout, env=env)


def _mirror(store: Path) -> dict:
    with DerivaML("localhost", "1", working_dir=store) as ml:
        return mirror_of(ml)


def test_pull_killed_at_random_moments_ends_as_an_uninterrupted_pull(deriva_server, tmp_path):
    there = tmp_path / "there"
    with DerivaML("localhost", "1", working_dir=there) as ml:
        populate(ml)
        with make_remote(deriva_server.url, deriva_server.token) as remote:
            assert ml.push(remote=remote, chunked_threshold=64 * 1024, chunk_size=32 * 1024).ok
    clean = _pull(tmp_path / "clean", deriva_server)
    assert clean.returncode == 0 and "OK" in clean.stdout, clean.stdout + clean.stderr

    victim = tmp_path / "victim"
    rng = random.Random(20261204)
    script = [sys.executable, "-c", PULL_SCRIPT, str(victim), deriva_server.url, deriva_server.token]
    env = dict(os.environ, SYNC_SUPPORT=str(Path(__file__).parent))
    interrupted = kill_at_work(script, env, deriva_server, rng, requests=(2, 20))
    assert interrupted >= 3, f"only {interrupted} of 6 kills landed while the pull was at work"
    done = _pull(victim, deriva_server)
    assert done.returncode == 0 and "OK" in done.stdout, done.stdout + done.stderr

    expected = _mirror(tmp_path / "clean")
    assert len(expected["assets"]) == 5 and expected["would_send"]["assets"] == 0
    assert _mirror(victim) == expected

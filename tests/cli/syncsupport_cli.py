"""Helpers of the command-line tests that need the emulator."""

from __future__ import annotations

from pathlib import Path

from satchel import DerivaML


def push_some(server, store: Path) -> None:
    """Push what ``store`` holds to ``server`` (as its writer)."""
    with DerivaML("example.org", "1", working_dir=store) as ml, server.remote() as remote:
        assert ml.push(remote=remote).ok

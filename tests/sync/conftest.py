"""Fixtures for sync tests: stores, the emulator, a remote with fast retries."""

from __future__ import annotations

from pathlib import Path

import pytest
from syncsupport import make_remote

from satchel import DerivaML
from satchel.testing.pytest_plugin import deriva_server, fault_proxy  # noqa: F401


@pytest.fixture
def remote(deriva_server):
    with make_remote(deriva_server.url, deriva_server.token) as r:
        yield r


@pytest.fixture
def new_store(tmp_path: Path):
    made = []

    def make(name: str = "store") -> DerivaML:
        ml = DerivaML("localhost", "1", working_dir=tmp_path / name)
        made.append(ml)
        return ml

    yield make
    for ml in made:
        ml.close()

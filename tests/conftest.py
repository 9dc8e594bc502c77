"""Shared fixtures: a real store in a temp directory, and helpers to make files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from satchel import DerivaML

# CI shares 2 cores with everything else: a wall-clock deadline per example only measures the
# neighbours. Properties fail on wrong answers, never on slow ones.
settings.register_profile("satchel", deadline=None, print_blob=True)
settings.load_profile("satchel")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test touches the real ~/.satchel."""
    monkeypatch.setenv("SATCHEL_HOME", str(tmp_path_factory.mktemp("satchel-home")))


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def ml(store_dir: Path) -> Iterator[DerivaML]:
    """A DerivaML on a fresh store, with a Workflow_Type term so workflows can be made."""
    with DerivaML("example.org", "1", working_dir=store_dir) as m:
        m.add_term("Workflow_Type", "Training", description="Model training")
        yield m


@pytest.fixture
def workflow(ml: DerivaML):
    return ml.create_workflow("train.py", "Training", description="trains a model")


def write_file(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


@pytest.fixture
def make_file(tmp_path: Path):
    """make_file(name, data) -> Path of a real file under tmp_path/src."""

    def make(name: str, data: bytes | str = b"") -> Path:
        return write_file(tmp_path / "src" / name, data or os.urandom(64))

    return make


@pytest.fixture
def count_byte_reads(monkeypatch: pytest.MonkeyPatch):
    """``count_byte_reads()`` starts counting every read of file bytes by the cache: a list, one entry
    per call of ``_hash_fd`` or ``_read_all`` (instrumentation around the real functions, not a mock)."""
    from satchel.cache import objects as objects_mod

    def start() -> list[int]:
        calls: list[int] = []
        real_hash, real_read = objects_mod._hash_fd, objects_mod._read_all

        def hash_fd(fd, size_hint, out):
            calls.append(size_hint)
            return real_hash(fd, size_hint, out)

        def read_all(fd, size_hint):
            calls.append(size_hint)
            return real_read(fd, size_hint)

        monkeypatch.setattr(objects_mod, "_hash_fd", hash_fd)
        monkeypatch.setattr(objects_mod, "_read_all", read_all)
        return calls

    return start

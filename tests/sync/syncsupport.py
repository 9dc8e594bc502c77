"""Helpers for sync tests (imported by their modules and by conftest.py)."""

from __future__ import annotations

import random

import httpx

from satchel import DerivaML, ExecutionConfiguration
from satchel.remote import Credential, Remote, RetryPolicy

FAST_RETRY = RetryPolicy(attempts=6, base_delay=0.01, max_delay=0.05, max_retry_after=0.2, deadline=20,
                         rng=random.Random(11))
FAST_TIMEOUT = httpx.Timeout(connect=2.0, read=5.0, write=5.0, pool=5.0)


def make_remote(url: str, token: str) -> Remote:
    return Remote(url, "1", credential=Credential.bearer(token), retry=FAST_RETRY, timeout=FAST_TIMEOUT)


def record_run(ml: DerivaML, outputs: dict[str, tuple[str, bytes, list[str]]], *, inputs: list[str] = ()) -> tuple:
    """One execution producing ``outputs`` {file name: (table, bytes, types)}; returns (execution, {name: rid})."""
    if "Training" not in {t.name for t in ml.list_vocabulary_terms("Workflow_Type")}:
        ml.add_term("Workflow_Type", "Training", description="training")
    exe = ml.create_execution(ExecutionConfiguration(workflow=ml.create_workflow("train.py", "Training"), description="run"))
    with exe:
        for rid in inputs:
            exe.download_asset(rid, exe.working_dir / "in")
        for name, (table, data, types) in outputs.items():
            exe.asset_file_path(table, name, asset_types=types).write_bytes(data)
    report = exe.commit_output_assets()
    return exe, {a.file_name: a.asset_rid for a in report.assets}


def catalog_rows(remote: Remote, table: str, schema: str = "test-schema") -> list[dict]:
    return remote.catalog.get(schema, table, limit=None)


def random_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n) if n else b""


__all__ = ["catalog_rows", "make_remote", "random_bytes", "record_run"]

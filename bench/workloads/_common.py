"""What several workloads share: deterministic data, a fresh store, an execution, counters."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from pathlib import Path

from bench.harness import Counter

HOST = "bench.example.org"
SEED = 5  # issue 5


def payloads(n: int, size: int, seed: int = SEED) -> list[bytes]:
    """``n`` distinct, deterministic byte strings of ``size`` bytes (so content addressing dedups nothing)."""
    rng = random.Random(seed)
    return [rng.randbytes(size) for _ in range(n)]


def write_tree(root: Path, datas: list[bytes]) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, data in enumerate(datas):
        p = root / f"f{i:06d}.bin"
        p.write_bytes(data)
        paths.append(p)
    return paths


def open_store(path: Path, **kwargs):
    """A DerivaML on a new store at ``path``, with a workflow type to run executions under."""
    from satchel import DerivaML

    ml = DerivaML(HOST, "1", working_dir=path, **kwargs)
    ml.add_term("Workflow_Type", "Benchmark", description="satchel bench")
    return ml


def new_execution(ml, description: str = "bench"):
    from satchel import ExecutionConfiguration

    wf = ml.create_workflow("bench", "Benchmark", description="satchel bench")
    return ml.create_execution(ExecutionConfiguration(workflow=wf, description=description, argv=["bench"]))


@contextlib.contextmanager
def count_rehash_and_recopy() -> Iterator[Counter]:
    """Count every byte-level hash, whole-file read and export in the cache while the block runs.

    ``_hash_fd`` hashes a file (and copies it when it has an output), ``_read_all``
    reads a small file whole to hash it, and ``ObjectCache.export`` places bytes
    at a destination (link or copy). A no-op re-download must call none of them.
    """
    from satchel.cache import objects

    counter = Counter()
    with counter.patch(objects, "_hash_fd", "hash_fd"), counter.patch(objects, "_read_all", "read_all"), \
            counter.patch(objects.ObjectCache, "export", "export"):
        yield counter

"""Workload 5, push of one large file: sync workload 2's asset to the emulator over loopback.

To measure, once the sync engine exists: MB/s and peak RSS, against one raw
streaming httpx PUT of the same file to the same emulator in the same run.
Implement ``run`` and drop ``BLOCKED``.
"""

from __future__ import annotations

NAME = "push-large"
NUMBER = 5
TITLE = "push one large file to the emulator over loopback"
BLOCKED = "not yet runnable: needs the sync engine (issue 4)"
TARGETS = ["≥ 0.8× the raw PUT throughput", "peak RSS < 150 MiB whatever the file size"]


def sizes(quick: bool) -> dict[str, int]:
    return {"file_bytes": (16 if quick else 1024) << 20}

"""Workload 4, push of many small files: sync workload 1's execution to the emulator over loopback.

To measure, once the sync engine exists: assets/s and HTTP requests per asset
(catalog side), against the same files uploaded the way deriva-ml 1.24 does
with deriva-py (a Hatrac ``put_obj`` and a catalog insert per file, then the
association rows) to the same emulator in the same run. Implement ``run`` and
drop ``BLOCKED``; the harness does the rest.
"""

from __future__ import annotations

NAME = "push-small"
NUMBER = 4
TITLE = "push many small files to the emulator over loopback"
BLOCKED = "not yet runnable: needs the sync engine (issue 4)"
TARGETS = [
    "≥ 1,000 assets/s",
    "≥ 10× the deriva-py reference",
    "< 0.1 catalog HTTP requests per asset",
]


def sizes(quick: bool) -> dict[str, int]:
    return {"files": 1_000 if quick else 10_000, "file_bytes": 4096}

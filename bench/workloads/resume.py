"""Workload 6, resume: kill the sync of workload 5 at about half way, sync again; count bytes sent again.

Needs the sync engine and the fault proxy (``satchel.testing.proxy``) to cut the
transfer. Implement ``run`` and drop ``BLOCKED``.
"""

from __future__ import annotations

NAME = "resume"
NUMBER = 6
TITLE = "resume an interrupted large push"
BLOCKED = "not yet runnable: needs the sync engine (issue 4)"
TARGETS = ["at most one chunk sent again"]


def sizes(quick: bool) -> dict[str, int]:
    return {"file_bytes": (16 if quick else 1024) << 20}

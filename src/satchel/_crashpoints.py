"""Named crash points for crash tests (inert unless SATCHEL_CRASH_AT names one).

Tests run satchel in a real subprocess with ``SATCHEL_CRASH_AT=<name>``; when
execution reaches that point, the process kills itself with SIGKILL, exactly
as a power cut or an OOM kill would stop it: no cleanup, no atexit, no flush.
"""

from __future__ import annotations

import os
import signal

_TARGET = os.environ.get("SATCHEL_CRASH_AT")


def crash_point(name: str) -> None:
    if _TARGET is not None and _TARGET == name:
        os.kill(os.getpid(), signal.SIGKILL)

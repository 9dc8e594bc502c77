"""Named crash points for crash tests (inert unless SATCHEL_CRASH_AT names one).

Tests run satchel in a real subprocess with ``SATCHEL_CRASH_AT=<name>`` (or
``<name>#<n>`` to die at the n-th time the point is reached); when execution
gets there, the process kills itself with SIGKILL, exactly as a power cut or an
OOM kill would stop it: no cleanup, no atexit, no flush.
"""

from __future__ import annotations

import os
import signal
import threading

_SPEC = os.environ.get("SATCHEL_CRASH_AT")
_TARGET, _, _NTH = (_SPEC or "").partition("#")
_remaining = int(_NTH) if _NTH else 1
_lock = threading.Lock()


def crash_point(name: str) -> None:
    global _remaining
    if _SPEC is None or name != _TARGET:
        return
    with _lock:
        _remaining -= 1
        if _remaining <= 0:
            os.kill(os.getpid(), signal.SIGKILL)

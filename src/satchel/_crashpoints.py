"""Named crash points for crash tests (inert unless SATCHEL_CRASH_AT or SATCHEL_PAUSE_AT names one).

Tests run satchel in a real subprocess with ``SATCHEL_CRASH_AT=<name>`` (or
``<name>#<n>`` to die at the n-th time the point is reached); when execution
gets there, the process kills itself with SIGKILL, exactly as a power cut or an
OOM kill would stop it: no cleanup, no atexit, no flush.

``SATCHEL_PAUSE_AT=<name>`` instead holds the process there for
``SATCHEL_PAUSE_SECONDS`` (default 3), after creating the file
``SATCHEL_PAUSE_MARK``: a test waits for the file, then does what must not
slip into that moment (a gc between a commit's capture and its journal write).
"""

from __future__ import annotations

import os
import signal
import threading

_SPEC = os.environ.get("SATCHEL_CRASH_AT")
_TARGET, _, _NTH = (_SPEC or "").partition("#")
_remaining = int(_NTH) if _NTH else 1
_lock = threading.Lock()
_PAUSE = os.environ.get("SATCHEL_PAUSE_AT")


def crash_point(name: str) -> None:
    global _remaining
    if _PAUSE is not None and name == _PAUSE:
        _pause()
    if _SPEC is None or name != _TARGET:
        return
    with _lock:
        _remaining -= 1
        if _remaining <= 0:
            os.kill(os.getpid(), signal.SIGKILL)


def _pause() -> None:
    import time

    mark = os.environ.get("SATCHEL_PAUSE_MARK")
    if mark:
        with open(mark, "w") as f:
            f.write(str(os.getpid()))
    time.sleep(float(os.environ.get("SATCHEL_PAUSE_SECONDS", "3")))

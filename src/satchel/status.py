"""The execution status state machine (deriva-ml main's, kept exactly)."""

from __future__ import annotations

from enum import Enum

from satchel.errors import InvalidTransitionError


class Status(str, Enum):
    Created = "Created"
    Running = "Running"
    Stopped = "Stopped"
    Failed = "Failed"
    Pending_Upload = "Pending_Upload"
    Uploaded = "Uploaded"
    Aborted = "Aborted"

    def __str__(self) -> str:
        return self.value


def status_of(value: str) -> Status | str:
    """A stored status as a ``Status``; a free-text one (deriva-ml 1.24 wrote those, and pulls keep them) as is."""
    try:
        return Status(value)
    except ValueError:
        return value


#: the statuses an error is kept with (``Execution.error``)
TERMINAL = (Status.Failed, Status.Aborted)

ALLOWED: dict[Status, frozenset[Status]] = {
    Status.Created: frozenset({Status.Running, Status.Aborted}),
    Status.Running: frozenset({Status.Stopped, Status.Failed, Status.Aborted, Status.Pending_Upload}),
    Status.Stopped: frozenset({Status.Pending_Upload, Status.Aborted}),
    Status.Pending_Upload: frozenset({Status.Uploaded, Status.Failed}),
    Status.Failed: frozenset({Status.Pending_Upload, Status.Aborted}),
    Status.Uploaded: frozenset({Status.Pending_Upload}),
    Status.Aborted: frozenset(),
}

_FIXES = {
    (Status.Stopped, Status.Running): "an execution runs once; create a new execution for more work, "
    "or register more outputs on this one and call commit_output_assets()",
    (Status.Aborted, Status.Running): "it was aborted; create a new execution",
}


def check_transition(rid: str, current: str, target: str) -> Status:
    try:
        cur, tgt = Status(current), Status(target)
    except ValueError:
        raise InvalidTransitionError(
            f"execution {rid}: unknown status {target!r}; valid statuses are {', '.join(s.value for s in Status)}"
        ) from None
    if tgt not in ALLOWED[cur]:
        allowed = ", ".join(sorted(s.value for s in ALLOWED[cur])) or "nothing (it is final)"
        fix = _FIXES.get((cur, tgt), f"from {cur.value} it may go to {allowed}")
        raise InvalidTransitionError(f"execution {rid} cannot go from {cur.value} to {tgt.value}: {fix}")
    return tgt

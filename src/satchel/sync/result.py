"""What a sync did: typed, so the CLI can print it and scripts can check it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: the push steps, in the order they run (bytes before the rows that name them)
PUSH_STEPS = ("terms", "workflows", "executions", "objects", "assets", "tags", "links", "status")


@dataclass(frozen=True)
class Failure:
    """One item the remote refused (or that could not be sent), with the reason."""

    step: str
    rid: str
    reason: str


@dataclass
class SyncResult:
    """Counts per step: ``done`` (the remote has it now), ``skipped`` (it had it already, or nothing to send)."""

    done: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    failed: list[Failure] = field(default_factory=list)
    bytes_sent: int = 0
    bytes_received: int = 0
    pulled: Counter = field(default_factory=Counter)
    #: things the user should know that did not stop the sync (e.g. a credential the server did not take)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def merge(self, other: SyncResult) -> SyncResult:
        """This result and ``other`` (a push and the pull after it) as one."""
        return SyncResult(self.done + other.done, self.skipped + other.skipped, self.failed + other.failed,
                          self.bytes_sent + other.bytes_sent, self.bytes_received + other.bytes_received,
                          self.pulled + other.pulled, self.warnings + other.warnings)

    def fail(self, step: str, rid: str, reason: str) -> None:
        self.failed.append(Failure(step, rid, reason))

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "done": dict(self.done),
            "skipped": dict(self.skipped),
            "failed": [{"step": f.step, "rid": f.rid, "reason": f.reason} for f in self.failed],
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "pulled": dict(self.pulled),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class ProgressEvent:
    """Reported to the progress callback: ``step`` with ``done`` of ``total`` items (or bytes)."""

    step: str
    done: int
    total: int
    unit: str = "items"  # or "bytes"

"""What one push would send, read from the journal alone (no network): ``--dry-run`` prints it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from satchel.journal import queries as q
from satchel.journal import report
from satchel.journal.models import AssetRow


@dataclass
class PushPlan:
    """Counts of what is waiting, per push step, and the bytes that may have to travel."""

    terms: int = 0
    workflows: int = 0
    executions: int = 0
    objects: int = 0
    object_bytes: int = 0
    assets: int = 0
    tags: int = 0
    tag_removals: int = 0
    links: int = 0
    descriptions: int = 0
    status_updates: int = 0
    failed: int = 0
    in_flight_uploads: int = 0
    lines: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(
            (self.terms, self.workflows, self.executions, self.objects, self.assets, self.tags,
             self.tag_removals, self.links, self.descriptions, self.status_updates)
        )

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "lines"}

    def describe(self) -> list[str]:
        rows = [
            ("vocabulary terms to add", self.terms),
            ("workflows to insert", self.workflows),
            ("executions to insert", self.executions),
            (f"objects to upload ({self.object_bytes:,} bytes at most: none the server has already)", self.objects),
            ("asset rows to insert", self.assets),
            ("tags to add", self.tags),
            ("tags to remove", self.tag_removals),
            ("execution links to insert", self.links),
            ("descriptions to update", self.descriptions),
            ("execution statuses to update", self.status_updates),
        ]
        out = [f"{n:>8}  {what}" for what, n in rows if n]
        if self.in_flight_uploads:
            out.append(f"{self.in_flight_uploads:>8}  chunked uploads to resume")
        if self.failed:
            out.append(f"{self.failed:>8}  items failed earlier (retry with --retry-failed)")
        return out or ["nothing to send"]


def make_plan(conn: Connection) -> PushPlan:
    return PushPlan(**report.push_counts(conn.connection.driver_connection))


def pull_plan(conn: Connection, prefetch_ids: list[int] | None = None) -> dict[str, Any]:
    """What a pull would do, from the journal alone: tables read since which watermark, bytes to fetch."""
    info = q.store_info(conn)
    marks = {k.split(":", 1)[1]: v for k, v in info.items() if k.startswith("pull:")}
    out: dict[str, Any] = {"model_known": "model_pulled_at" in info, "watermarks": marks}
    if prefetch_ids is not None:
        rows = []
        for part in q.chunks(prefetch_ids):
            rows += conn.execute(select(AssetRow.blake3, AssetRow.length).where(AssetRow.id.in_(part))).all()
        missing = [r for r in rows if not r.blake3]
        out["fetch_objects"] = len(missing)
        out["fetch_bytes"] = sum(r.length for r in missing)
    return out

"""What ``satchel gc`` removes: a plan over the cache's objects, made before anything is deleted.

The plan knows nothing of the journal: the caller says which objects must stay
and why (:data:`KEEP_REASONS`, from the journal); the plan adds the objects
kept for their age (``keep_days``) or because the cache is already within its
size target (``max_size``), and lists the rest, least recently used first.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field

from satchel.cache.objects import CachedObject

#: why an object stays, in the order they are checked (an object is counted under the first that applies)
KEEP_REASONS = ("unsynced", "open-execution", "pinned", "not-ours", "recent", "within-size")

DAY = 86400.0


@dataclass
class CollectionPlan:
    """The objects to remove and, for every reason, those kept for it."""

    remove: list[CachedObject] = field(default_factory=list)
    kept: dict[str, list[CachedObject]] = field(default_factory=lambda: {r: [] for r in KEEP_REASONS})
    size_before: int = 0
    max_size: int | None = None

    @property
    def bytes_to_free(self) -> int:
        return sum(o.size for o in self.remove)

    @property
    def size_after(self) -> int:
        return self.size_before - self.bytes_to_free

    @property
    def over_target(self) -> int:
        """Bytes the cache stays above ``max_size`` because everything left must be kept (0 when met)."""
        return 0 if self.max_size is None else max(0, self.size_after - self.max_size)

    def kept_summary(self) -> dict[str, dict[str, int]]:
        return {r: {"objects": len(objs), "bytes": sum(o.size for o in objs)} for r, objs in self.kept.items()}


def plan_collection(
    objects: Iterable[CachedObject], keep: Mapping[str, str], *, keep_days: float | None = None,
    max_size: int | None = None, now: float | None = None, named: Set[str] | None = None,
) -> CollectionPlan:
    """Decide which objects go.

    ``keep`` maps a blake3 digest to the reason it must stay. Without
    ``keep_days`` and ``max_size`` every other object goes; ``keep_days`` keeps
    those used in the last N days; ``max_size`` removes only as many as bring the
    cache to that many bytes, least recently used first.
    """
    now = time.time() if now is None else now
    plan = CollectionPlan(max_size=max_size)
    candidates: list[CachedObject] = []
    for obj in objects:
        plan.size_before += obj.size
        reason = keep.get(obj.blake3)
        if reason is None and named is not None and obj.blake3 not in named:
            reason = "not-ours"  # no asset of this store names it: another store's, or a crash's debris
        if reason is None and keep_days is not None and now - obj.last_used < keep_days * DAY:
            reason = "recent"
        if reason is None:
            candidates.append(obj)
        else:
            plan.kept[reason].append(obj)
    candidates.sort(key=lambda o: (o.last_used, o.blake3))  # least recently used first; ties stable
    if max_size is None:
        plan.remove = candidates
        return plan
    size = plan.size_before
    for i, obj in enumerate(candidates):
        if size <= max_size:
            plan.kept["within-size"].extend(candidates[i:])
            break
        plan.remove.append(obj)
        size -= obj.size
    return plan

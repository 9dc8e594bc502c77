"""Freeing disk: ``gc`` of the object cache, pins, and the storage summary (deriva-ml's names too).

``gc`` removes cached objects the server has confirmed and nothing needs
(:mod:`satchel.journal.retention` says what is needed, :mod:`satchel.cache.collect`
plans). It never races a commit or a download: it holds the cache's use lock
exclusive (:mod:`satchel.cache.uselock`) and the store's sync lock while it
decides and deletes. Removing an object is one ``unlink``: a crash between two
leaves a cache that is simply partly collected, which the next ``gc`` finishes.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from satchel._crashpoints import crash_point
from satchel.api.workspace import Workspace
from satchel.cache.collect import CollectionPlan, plan_collection
from satchel.errors import BadArgumentError, StoreError
from satchel.journal import queries as q
from satchel.journal import read_transaction, retention, write_transaction
from satchel.journal.resolve import asset_id
from satchel.store import now
from satchel.sync.lock import sync_lock

_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1000, "KIB": 1024, "M": 1024**2, "MB": 1000**2, "MIB": 1024**2,
          "G": 1024**3, "GB": 1000**3, "GIB": 1024**3, "T": 1024**4, "TB": 1000**4, "TIB": 1024**4}


def parse_size(text: str | int) -> int:
    """``10G``, ``500MiB``, ``2.5GB``, ``1048576`` -> bytes (K/M/G/T alone are binary, as ``du`` reads them)."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(text))
        unit = m.group(2).upper() if m else None
        if m is None or unit not in _UNITS:
            raise BadArgumentError(f"cannot read {text!r} as a size; write it as bytes or with a unit: "
                                   "500M, 10G, 2.5GB, 1TiB")
        value = int(float(m.group(1)) * _UNITS[unit])
    if value < 0:
        raise BadArgumentError(f"a size cannot be negative ({text!r}); pass 0 or more bytes")
    return value


@dataclass
class GcReport:
    """What ``gc`` removed (with ``dry_run``: would remove) and what it kept, by reason."""

    dry_run: bool
    removed_objects: int
    removed_bytes: int
    size_before: int
    size_after: int
    kept: dict[str, dict[str, int]] = field(default_factory=dict)
    max_size: int | None = None
    over_target: int = 0  # bytes still above max_size: everything left had to stay
    temp_removed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_options(keep_days: float | None, max_size: int | str | None) -> int | None:
    if keep_days is not None and (isinstance(keep_days, bool) or not isinstance(keep_days, (int, float))
                                  or not math.isfinite(keep_days) or keep_days < 0):
        raise BadArgumentError(f"keep_days must be a number of days, 0 or more (got {keep_days!r})")
    return None if max_size is None else parse_size(max_size)


def _report(plan: CollectionPlan, *, dry_run: bool, removed: int, freed: int, temp_removed: int = 0) -> GcReport:
    return GcReport(dry_run=dry_run, removed_objects=removed, removed_bytes=freed, size_before=plan.size_before,
                    size_after=plan.size_before - freed,
                    kept=plan.kept_summary(), max_size=plan.max_size,
                    over_target=plan.over_target, temp_removed=temp_removed)


def _tree_size(root: Path) -> tuple[int, int]:
    """(files, bytes) under a directory, tolerating files that vanish or cannot be read."""
    files = total = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            files += 1
            total += st.st_size
    return files, total


class RetentionCalls:
    workspace: Workspace

    # --- gc ------------------------------------------------------------------------------------

    def gc_plan(self, *, keep_days: float | None = None, max_size: int | str | None = None) -> CollectionPlan:
        """What :meth:`gc` would remove, without removing anything (reads only; works on read-only media)."""
        limit = _check_options(keep_days, max_size)
        store = self.workspace.store
        with read_transaction(self.workspace.engine) as conn:
            keep = retention.digests_to_keep(conn)
            named = retention.named_digests(conn)
        return plan_collection(store.cache.object_stats(), keep, keep_days=keep_days, max_size=limit, named=named)

    def gc(self, *, keep_days: float | None = None, max_size: int | str | None = None, dry_run: bool = False,
           progress: Callable[[int, int], None] | None = None,
           on_wait: Callable[[], None] | None = None) -> GcReport:
        """Free the cache of objects the server has confirmed and nothing needs.

        Never removes the bytes of an asset the server has not confirmed, of an
        input or output of an open execution, or of a pinned asset.
        ``keep_days`` keeps objects used (captured, fetched or read out) in the
        last N days; ``max_size`` (bytes, or ``"10G"``) removes only what brings
        the cache down to that size, least recently used first. ``on_wait`` is
        called if a commit or download in another process must finish first.
        """
        limit = _check_options(keep_days, max_size)
        store = self.workspace.store
        if dry_run:
            plan = self.gc_plan(keep_days=keep_days, max_size=limit)
            return _report(plan, dry_run=True, removed=len(plan.remove), freed=plan.bytes_to_free)
        if store.read_only or store.cache.read_only:
            raise StoreError(f"the store at {store.root} is on read-only media: nothing can be removed from it; "
                             "`satchel gc --dry-run` shows what a gc would free on a writable copy")
        cache = store.cache
        with sync_lock(store.root), cache.use.exclusive(on_wait):
            with read_transaction(self.workspace.engine) as conn:
                keep = retention.digests_to_keep(conn)
                named = retention.named_digests(conn)
            plan = plan_collection(cache.object_stats(), keep, keep_days=keep_days, max_size=limit, named=named)
            freed = removed = 0
            for i, obj in enumerate(plan.remove, 1):
                size = cache.remove(obj.blake3)
                removed += 1 if size or obj.size == 0 else 0
                freed += size
                crash_point("gc.after_remove")
                if progress is not None:
                    progress(i, len(plan.remove))
            temp_removed = cache.remove_temp_debris()
        return _report(plan, dry_run=False, removed=removed, freed=freed, temp_removed=temp_removed)

    # --- pins ----------------------------------------------------------------------------------

    def pin_assets(self, asset_rids: Sequence[str], *, reason: str = "pin") -> int:
        """Keep these assets' bytes in the cache through any ``gc``; returns how many were not pinned yet."""
        self._check_writable("pin")
        with write_transaction(self.workspace.engine) as conn:
            ids = [asset_id(conn, r) for r in asset_rids]
            return retention.pin(conn, ids, reason, now())

    def unpin_assets(self, asset_rids: Sequence[str]) -> int:
        """Let ``gc`` remove these assets' bytes again once the server has them; returns how many were pinned."""
        self._check_writable("unpin")
        with write_transaction(self.workspace.engine) as conn:
            ids = [asset_id(conn, r) for r in asset_rids]
            return retention.unpin(conn, ids)

    def _check_writable(self, what: str) -> None:
        if self.workspace.store.read_only:
            raise StoreError(f"the store at {self.workspace.store.root} is on read-only media: cannot {what} "
                             "assets there; copy the store to a writable disk")

    # --- what the disk holds -------------------------------------------------------------------

    def storage_summary(self) -> dict[str, Any]:
        """Where the store's disk space goes: cache objects by why they stay, what ``gc`` would free, the rest."""
        store = self.workspace.store
        plan = self.gc_plan()
        cache = store.cache
        quarantine = _tree_size(cache.quarantine_dir) if cache.quarantine_dir.is_dir() else (0, 0)
        temp = _tree_size(cache.tmp_dir) if cache.tmp_dir.is_dir() else (0, 0)
        exec_root = store.root / "executions"
        exec_dirs = [p for p in exec_root.iterdir() if p.is_dir()] if exec_root.is_dir() else []
        executions = [_tree_size(p) for p in exec_dirs]
        journal = sum(p.stat().st_size for p in store.root.glob("journal.db*") if p.is_file())
        kept = {r: v for r, v in plan.kept_summary().items() if r in ("unsynced", "open-execution", "pinned", "not-ours")}
        with read_transaction(self.workspace.engine) as conn:
            pins = conn.connection.driver_connection.execute("SELECT count(*) FROM cache_pins").fetchone()[0]
        return {
            "store": str(store.root),
            "cache_dir": str(cache.root),
            "objects": sum(len(v) for v in plan.kept.values()) + len(plan.remove),
            "object_bytes": plan.size_before,
            "kept": kept,
            "reclaimable": {"objects": len(plan.remove), "bytes": plan.bytes_to_free},
            "pinned_assets": pins,
            "quarantine": {"files": quarantine[0], "bytes": quarantine[1]},
            "temp": {"files": temp[0], "bytes": temp[1]},
            "executions": {"dirs": len(exec_dirs), "files": sum(f for f, _ in executions),
                           "bytes": sum(b for _, b in executions)},
            "journal_bytes": journal,
        }

    def get_storage_summary(self) -> dict[str, Any]:
        """deriva-ml's storage summary (its keys; satchel has no dataset bags, so those are 0), plus ours."""
        s = self.storage_summary()
        mb = 1024 * 1024
        cache_bytes = s["object_bytes"] + s["quarantine"]["bytes"] + s["temp"]["bytes"]
        return {
            "working_dir": s["store"], "cache_dir": s["cache_dir"],
            "cache_size_mb": cache_bytes / mb,
            "cache_file_count": s["objects"] + s["quarantine"]["files"] + s["temp"]["files"],
            "execution_dir_count": s["executions"]["dirs"], "execution_size_mb": s["executions"]["bytes"] / mb,
            "total_size_mb": (cache_bytes + s["executions"]["bytes"]) / mb,
            "bag_count": 0, "bag_size_mb": 0.0,
            "asset_count": s["objects"], "asset_size_mb": s["object_bytes"] / mb,
            "satchel": s,
        }

    def get_cache_size(self) -> dict[str, int | float]:
        """deriva-ml's cache size: bytes, MB, files and directories under the cache."""
        files = total = dirs = 0
        for dirpath, dirnames, names in os.walk(self.workspace.store.cache.root):
            dirs += len(dirnames)
            for name in names:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_size
                    files += 1
                except OSError:
                    continue
        return {"total_bytes": total, "total_mb": total / (1024 * 1024), "file_count": files, "dir_count": dirs}

    def clear_cache(self, older_than_days: int | None = None) -> dict[str, int]:
        """deriva-ml's ``clear_cache``, as a ``gc``: only objects the server has and nothing needs go
        (deriva-ml's cache holds downloads only; satchel's also holds the only copy of unsynced work)."""
        report = self.gc(keep_days=older_than_days)
        return {"files_removed": report.removed_objects, "dirs_removed": 0,
                "bytes_freed": report.removed_bytes, "errors": 0}

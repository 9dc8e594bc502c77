"""Bundle calls of ``DerivaML``: carry work across an air gap as files, both ways (docs/airgap.md)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from satchel.journal.synclog import KEPT, Recording, clip


def bundle_summary(report: Any) -> dict[str, Any]:
    """What the sync history keeps of a ``BundleReport``."""
    return {"bundle_id": report.bundle_id, "kind": report.kind, "records": dict(report.records),
            "objects": report.objects, "object_bytes": report.object_bytes, "applied": dict(report.applied),
            "already_imported": report.already_imported, "warnings": [clip(w) for w in report.warnings[:KEPT]]}


def _where(path: os.PathLike[str] | str) -> str:
    return str(Path(path).expanduser().absolute())


class BundleCalls:
    store: Any

    def export_bundle(
        self, out: os.PathLike[str] | str, *, executions: Sequence[str] = (), since: str | None = None,
        for_offline: bool = False, assets: Sequence[str] = (), tables: Sequence[str] = (), rid_pool: int = 0,
        mirror: bool = True, remote: Any = None, progress: Any = None,
    ) -> Any:
        """Write a bundle file (``.zip``, or ``.tar``) and return a ``BundleReport``.

        Outbound (the default), offline: what the server has not confirmed yet (executions, workflows,
        terms, assets with their bytes, tags, links, description edits, statuses), or the chosen
        ``executions`` and everything they need; ``since`` keeps work made from that ISO time on.

        ``for_offline=True``, on a connected store: the catalog model, every row mirrored from the catalog,
        the bytes of the chosen ``assets`` and of the assets of the chosen ``executions`` and ``tables``
        (fetched first if the cache lacks them), ``rid_pool``
        RIDs leased for the offline store, and what became of the rows earlier bundles brought here;
        ``mirror=False`` leaves out the mirrored rows nobody chose. Only fetching and leasing reach the network.
        """
        from satchel.bundle import export_bundle

        with Recording(self.store, "bundle-export", _where(out), bundle_summary) as recording:
            return recording.done(export_bundle(
                self, out, executions=executions, since=since, for_offline=for_offline, assets=assets,
                tables=tables, rid_pool=rid_pool, mirror=mirror, remote=remote, progress=progress))

    def import_bundle(self, path: os.PathLike[str] | str, *, progress: Any = None) -> Any:
        """Verify a bundle completely, then apply it in one transaction; a second import changes nothing.

        Never reaches the network. A tampered, truncated or foreign bundle, or one from a newer satchel,
        raises ``BundleError`` and leaves the store as it was. Returns a ``BundleReport``.
        """
        from satchel.bundle import import_bundle

        with Recording(self.store, "bundle-import", _where(path), bundle_summary) as recording:
            return recording.done(import_bundle(self, path, progress=progress))

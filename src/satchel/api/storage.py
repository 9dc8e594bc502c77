"""Whole-store calls of ``DerivaML``: verify the cache against the journal, and what is not synced yet."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from satchel.api.records import StoreReport
from satchel.api.workspace import Workspace
from satchel.journal import read_transaction
from satchel.journal.models import AssetRow


class StoreCalls:
    workspace: Workspace

    # --- whole-store operations ----------------------------------------------------------------

    def verify(self, progress: Any = None) -> StoreReport:
        """Re-hash every cached object (quarantining corrupt ones) and list assets whose bytes are gone.

        Assets recorded here but not yet on the remote whose bytes are missing
        cannot be synced: they are reported as ``lost``.
        """
        report = self.workspace.store.cache.verify(progress=progress)
        lost: list[str] = []
        with read_transaction(self.workspace.engine) as conn:
            rows = conn.execute(
                select(AssetRow.rid, AssetRow.blake3).where(
                    AssetRow.origin == "local", AssetRow.sync_state.in_(("local", "failed"))
                )
            ).all()
        for rid, b3 in rows:
            if not b3 or not self.workspace.store.cache.has(b3):
                lost.append(rid)
        return StoreReport(
            objects_checked=report.checked, bytes_checked=report.bytes_checked,
            quarantined=report.quarantined, temp_removed=report.temp_removed, lost_assets=lost,
        )

    def status(self) -> dict[str, Any]:
        """What the remote does not have yet: counts and bytes, conflicts, failures and what one push would send.

        One read transaction, counted from indexes (``satchel.journal.report``).
        """
        from satchel.journal import report

        with read_transaction(self.workspace.engine) as conn:
            summary = report.status(conn.connection.driver_connection)
        summary["store"] = str(self.workspace.store.root)
        return summary

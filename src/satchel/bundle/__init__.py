"""Air-gap bundles: work carried across the gap as BagIt bags, verified and applied exactly once.

``export_bundle`` writes what a store has not had confirmed by the server (or
the chosen executions), or, ``for_offline``, what an offline store needs: the
catalog model, mirrored rows, the chosen assets' bytes, leased RIDs and the
confirmations of earlier bundles. ``import_bundle`` verifies a bundle entirely
before it changes anything, then applies it in one journal transaction. The
format is in docs/internals.md.
"""

from satchel.bundle.transfer import BundleReport, export_bundle, import_bundle

__all__ = ["BundleReport", "export_bundle", "import_bundle"]

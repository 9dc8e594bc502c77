"""DerivaML: the offline-first facade users hold (deriva-ml's API, with no network needed).

Its calls come from one module per concern, each a small class it inherits:
:mod:`~satchel.api.vocabulary`, :mod:`~satchel.api.workflows`,
:mod:`~satchel.api.executions`, :mod:`~satchel.api.lineage`, :mod:`~satchel.api.assets`,
:mod:`~satchel.api.syncing`, :mod:`~satchel.api.storage`, :mod:`~satchel.api.retention` and
:mod:`~satchel.api.bundles`. They share one
:class:`~satchel.api.workspace.Workspace`: the store and what it knows.
"""

from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Sequence
from typing import Any

from satchel.api.assets import AssetCalls
from satchel.api.bundles import BundleCalls
from satchel.api.config import ConnectionMode, DerivaMLConfig
from satchel.api.executions import ExecutionCalls
from satchel.api.lineage import LineageCalls
from satchel.api.retention import RetentionCalls
from satchel.api.storage import StoreCalls
from satchel.api.syncing import SyncCalls
from satchel.api.vocabulary import VocabularyCalls
from satchel.api.workflows import WorkflowCalls
from satchel.api.workspace import Workspace
from satchel.cache import DEFAULT_LINK_MODES
from satchel.store import Store, default_store_dir

class DerivaML(VocabularyCalls, WorkflowCalls, ExecutionCalls, LineageCalls, AssetCalls, SyncCalls, StoreCalls,
               RetentionCalls, BundleCalls):
    """An offline-first ``deriva_ml.DerivaML``: the same calls, answered from the local store.

    Constructing it never touches the network, whatever ``mode`` says: satchel
    records everything locally in either mode, and reaches the catalog only
    when asked (``push``, ``sync``, ``commit_pending_executions``). The store
    lives at ``working_dir`` if given, else ``$SATCHEL_HOME/<hostname>/<catalog_id>``
    (``SATCHEL_HOME`` defaults to ``~/.satchel``).
    """

    def __init__(
        self,
        hostname: str,
        catalog_id: str | int,
        domain_schemas: str | set[str] | None = None,
        default_schema: str | None = None,
        project_name: str | None = None,
        cache_dir: os.PathLike[str] | str | None = None,
        working_dir: os.PathLike[str] | str | None = None,
        hydra_runtime_output_dir: os.PathLike[str] | str | None = None,
        ml_schema: str = "deriva-ml",
        logging_level: Any = None,
        deriva_logging_level: Any = None,
        credential: Any = None,
        s3_bucket: str | None = None,
        use_minid: bool | None = None,
        clean_execution_dir: bool = True,
        mode: ConnectionMode | str = ConnectionMode.online,
        reuse_schema_json: Any = None,
        *,
        link_modes: Sequence[str] = DEFAULT_LINK_MODES,
    ) -> None:
        """deriva-ml's arguments, in its order. Those about the connection, logging, MINIDs and the schema
        cache have nothing to do offline and are accepted unused; ``domain_schemas`` / ``default_schema``
        name the schema of asset tables created offline (``"schema/Table"`` keys of upload reports)."""
        self.hostname = hostname
        self.catalog_id = str(catalog_id)
        self.mode = ConnectionMode(str(mode))
        self.credential = credential
        if default_schema is None and domain_schemas:
            schemas = {domain_schemas} if isinstance(domain_schemas, str) else set(domain_schemas)
            default_schema = next(iter(schemas)) if len(schemas) == 1 else None
        root = Path(working_dir) if working_dir is not None else default_store_dir(hostname, self.catalog_id)
        store = Store(root, hostname=hostname, catalog_id=self.catalog_id, cache_dir=cache_dir,
                      link_modes=tuple(link_modes))
        self.workspace = Workspace(store, clean_execution_dir=clean_execution_dir, default_schema=default_schema)
        self.store = store
        self.working_dir = store.root
        self.cache_dir = store.cache.root
        self.clean_execution_dir = clean_execution_dir
        self.default_schema = default_schema

    @classmethod
    def instantiate(cls, config: DerivaMLConfig) -> DerivaML:
        """A DerivaML from a :class:`DerivaMLConfig` (deriva-ml's hydra-zen entry point)."""
        return cls(**config.model_dump())

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> DerivaML:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<DerivaML {self.hostname}/{self.catalog_id} store={self.store.root}>"

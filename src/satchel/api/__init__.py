"""The API users hold: ``DerivaML`` and what its calls return, as in deriva-ml.

Modules, lowest first (each imports only those above it):

- ``records``: what calls return (``Asset``, ``AssetFilePath``, reports, records); ``config``:
  what executions are configured with (``ExecutionConfiguration``, ``Workflow``...)
- ``placement``: assets' bytes into a directory (downloads)
- ``workspace``: the store, its model knowledge and asset records, shared by the rest
- ``registration``: files registered as outputs; ``commit``: their capture and recording
- ``execution``: ``Execution``
- ``vocabulary``, ``workflows``, ``executions``, ``lineage``, ``assets``, ``syncing``, ``storage``: the
  calls of ``DerivaML``, one module per concern; ``facade``: ``DerivaML`` itself
"""

from __future__ import annotations

from satchel.api.config import (
    AssetSpec, ConnectionMode, DatasetSpec, DerivaMLConfig, ExecutionConfiguration, LocalFile, Workflow,
)
from satchel.api.execution import Execution
from satchel.api.facade import DerivaML
from satchel.api.records import (
    Asset, AssetExecution, AssetFilePath, ExecutionRecord, ExecutionSnapshot, StoreReport, UpdateAssetResult,
    UploadCallback, UploadProgress, UploadReport, VocabularyTerm,
)

__all__ = [
    "Asset", "AssetExecution", "AssetFilePath", "AssetSpec", "ConnectionMode", "DatasetSpec", "DerivaML",
    "DerivaMLConfig", "Execution", "ExecutionConfiguration", "ExecutionRecord", "ExecutionSnapshot", "LocalFile",
    "StoreReport", "UpdateAssetResult", "UploadCallback", "UploadProgress", "UploadReport", "VocabularyTerm",
    "Workflow",
]

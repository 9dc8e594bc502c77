"""satchel: a local-first provenance store for ML assets, synced to DERIVA later.

The errors and ``Status`` are imported here; every other name loads with its
module on first use, so that ``satchel status`` (and any other light import of
a submodule) does not pay for SQLAlchemy and the cache until it needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from satchel.errors import (
    AuthenticationError,
    BadArgumentError,
    BadNameError,
    DerivaMLConfigurationError,
    DerivaMLDataError,
    DerivaMLDirtyWorkflowError,
    DerivaMLException,
    DerivaMLInvalidTerm,
    DerivaMLMaterializeLimitExceeded,
    DerivaMLNotFoundError,
    DerivaMLOfflineError,
    DerivaMLRidsNotFound,
    DerivaMLTableNotFound,
    DerivaMLTableTypeError,
    DerivaMLValidationError,
    BundleError,
    CacheError,
    CommitError,
    Conflict,
    ConflictError,
    DestinationError,
    DuplicateAssetError,
    ExecutionError,
    FileChangedError,
    IntegrityError,
    Interrupted,
    InvalidTransitionError,
    MissingSourceError,
    NotFound,
    NotFoundError,
    ObjectMissingError,
    PermissionDenied,
    PreconditionFailed,
    ProtocolError,
    RemoteError,
    RemoteStatusError,
    RemoteURLError,
    RequestTooLong,
    SatchelError,
    SchemaVersionError,
    StoreBusyError,
    StoreError,
    SyncError,
    TransportError,
    UnknownAssetTableError,
    UnknownRIDError,
    UnknownTermError,
)
from satchel.status import Status

if TYPE_CHECKING:
    from satchel.api import (
        Asset, AssetExecution, AssetFilePath, AssetSpec, ConnectionMode, DatasetSpec, DerivaML, DerivaMLConfig,
        Execution, ExecutionConfiguration, ExecutionRecord, ExecutionSnapshot, LocalFile, StoreReport,
        UpdateAssetResult, UploadCallback, UploadProgress, UploadReport, VocabularyTerm, Workflow,
    )
    from satchel.cache import Digest
    from satchel.provenance import LineageGraph
    from satchel.mlschema import RID, ExecAssetType, ExecMetadataType, MLAsset, MLTable, MLVocab

#: name -> the module it loads from, on first use
_LAZY = {
    **{name: "satchel.api" for name in (
        "Asset", "AssetExecution", "AssetFilePath", "AssetSpec", "ConnectionMode", "DatasetSpec", "DerivaML",
        "DerivaMLConfig", "Execution", "ExecutionConfiguration", "ExecutionRecord", "ExecutionSnapshot", "LocalFile",
        "StoreReport", "UpdateAssetResult", "UploadCallback", "UploadProgress", "UploadReport", "VocabularyTerm",
        "Workflow",
    )},
    **{name: "satchel.mlschema" for name in ("RID", "ExecAssetType", "ExecMetadataType", "MLAsset", "MLTable", "MLVocab")},
    "Digest": "satchel.cache",
    "LineageGraph": "satchel.provenance",
    "BundleReport": "satchel.bundle",
}
#: deriva-ml's name for the execution status enum
ExecutionStatus = Status


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__version__ = "0.1.0"

__all__ = [
    "Asset",
    "AssetExecution",
    "AssetFilePath",
    "AssetSpec",
    "AuthenticationError",
    "BadArgumentError",
    "BadNameError",
    "BundleError",
    "BundleReport",
    "CacheError",
    "CommitError",
    "Conflict",
    "ConflictError",
    "ConnectionMode",
    "DatasetSpec",
    "DerivaML",
    "DerivaMLConfig",
    "DerivaMLConfigurationError",
    "DerivaMLDataError",
    "DerivaMLDirtyWorkflowError",
    "DerivaMLException",
    "DerivaMLInvalidTerm",
    "DerivaMLMaterializeLimitExceeded",
    "DerivaMLNotFoundError",
    "DerivaMLOfflineError",
    "DerivaMLRidsNotFound",
    "DerivaMLTableNotFound",
    "DerivaMLTableTypeError",
    "DerivaMLValidationError",
    "DestinationError",
    "Digest",
    "DuplicateAssetError",
    "ExecAssetType",
    "ExecMetadataType",
    "Execution",
    "ExecutionConfiguration",
    "ExecutionError",
    "ExecutionRecord",
    "ExecutionSnapshot",
    "ExecutionStatus",
    "FileChangedError",
    "IntegrityError",
    "Interrupted",
    "InvalidTransitionError",
    "LineageGraph",
    "LocalFile",
    "MLAsset",
    "MLTable",
    "MLVocab",
    "MissingSourceError",
    "NotFound",
    "NotFoundError",
    "ObjectMissingError",
    "PermissionDenied",
    "PreconditionFailed",
    "ProtocolError",
    "RID",
    "RemoteError",
    "RemoteStatusError",
    "RemoteURLError",
    "RequestTooLong",
    "SatchelError",
    "SchemaVersionError",
    "Status",
    "StoreBusyError",
    "StoreError",
    "StoreReport",
    "SyncError",
    "TransportError",
    "UnknownAssetTableError",
    "UnknownRIDError",
    "UnknownTermError",
    "UpdateAssetResult",
    "UploadCallback",
    "UploadProgress",
    "UploadReport",
    "VocabularyTerm",
    "Workflow",
]

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
    from satchel.asset import Asset, AssetExecution, AssetFilePath
    from satchel.cache import Digest
    from satchel.config import AssetSpec, DatasetSpec, ExecutionConfiguration, Workflow
    from satchel.execution import Execution, UploadReport
    from satchel.ml import DerivaML, StoreReport, UpdateAssetResult, VocabularyTerm

#: name -> the module it loads from, on first use
_LAZY = {
    "Asset": "satchel.asset",
    "AssetExecution": "satchel.asset",
    "AssetFilePath": "satchel.asset",
    "AssetSpec": "satchel.config",
    "DatasetSpec": "satchel.config",
    "DerivaML": "satchel.ml",
    "Digest": "satchel.cache",
    "Execution": "satchel.execution",
    "ExecutionConfiguration": "satchel.config",
    "StoreReport": "satchel.ml",
    "UpdateAssetResult": "satchel.ml",
    "UploadReport": "satchel.execution",
    "VocabularyTerm": "satchel.ml",
    "Workflow": "satchel.config",
}


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
    "BundleError",
    "CacheError",
    "CommitError",
    "Conflict",
    "ConflictError",
    "DatasetSpec",
    "DerivaML",
    "DestinationError",
    "Digest",
    "DuplicateAssetError",
    "Execution",
    "ExecutionConfiguration",
    "ExecutionError",
    "FileChangedError",
    "IntegrityError",
    "InvalidTransitionError",
    "MissingSourceError",
    "NotFound",
    "NotFoundError",
    "ObjectMissingError",
    "PermissionDenied",
    "PreconditionFailed",
    "ProtocolError",
    "RemoteError",
    "RemoteStatusError",
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
    "UploadReport",
    "VocabularyTerm",
    "Workflow",
]

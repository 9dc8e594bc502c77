"""satchel: a local-first provenance store for ML assets, synced to DERIVA later."""

from satchel.asset import Asset, AssetExecution, AssetFilePath
from satchel.cache import Digest
from satchel.config import AssetSpec, DatasetSpec, ExecutionConfiguration, Workflow
from satchel.errors import (
    AuthenticationError,
    BundleError,
    CacheError,
    CommitError,
    Conflict,
    ConflictError,
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

from satchel.execution import Execution, UploadReport
from satchel.ml import DerivaML, StoreReport, UpdateAssetResult, VocabularyTerm
from satchel.status import Status

__version__ = "0.1.0"

__all__ = sorted(
    [
        "Asset",
        "AssetExecution",
        "AssetFilePath",
        "AssetSpec",
        "DatasetSpec",
        "DerivaML",
        "Digest",
        "Execution",
        "ExecutionConfiguration",
        "Status",
        "StoreReport",
        "UpdateAssetResult",
        "UploadReport",
        "VocabularyTerm",
        "Workflow",
        "AuthenticationError",
        "BundleError",
        "CacheError",
        "CommitError",
        "Conflict",
        "ConflictError",
        "DuplicateAssetError",
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
        "SatchelError",
        "SchemaVersionError",
        "StoreBusyError",
        "StoreError",
        "SyncError",
        "TransportError",
        "UnknownAssetTableError",
        "UnknownRIDError",
        "UnknownTermError",
    ]
)

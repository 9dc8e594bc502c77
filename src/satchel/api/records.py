"""What the API hands back: ``Asset`` (a catalog row), ``AssetFilePath``, terms, reports.

Records hold no store of their own: an ``Asset`` reaches its store, and an
``AssetFilePath`` its execution, through a small interface (``AssetOwner``,
``Registrar``) that the workspace and the execution provide, so this module
imports nothing else of the API.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from satchel.errors import ExecutionError

_PathBase = type(Path())


class Registrar(Protocol):
    """What a pending ``AssetFilePath`` changes its registration through (its execution)."""

    def update_registration(self, afp: AssetFilePath, **changes: Any) -> None: ...


class AssetOwner(Protocol):
    """What an ``Asset`` changes its row and reads its bytes through (the workspace of its store)."""

    def update_asset(self, asset_rid: str, asset_types: Sequence[str] | None = None,
                     description: str | None = None, **kw: Any) -> Any: ...

    def download(self, asset_rid: str, dest_dir: Path) -> Path: ...


class AssetFilePath(_PathBase):  # type: ignore[misc,valid-type]
    """A ``pathlib.Path`` that also says which asset it is.

    Returned by ``asset_file_path`` (the staged path to write, or the link to
    your file) and by ``download_asset`` (the downloaded file). ``asset_rid``
    is set once the asset is committed.
    """

    asset_table: str | None = None
    file_name: str | None = None
    asset_types: list[str] = []  # noqa: RUF012 - class default, replaced per instance
    asset_metadata: dict[str, Any] = {}  # noqa: RUF012
    asset_rid: str | None = None
    description: str | None = None
    _execution: Registrar | None = None

    def __new__(cls, *args: Any, **kwargs: Any) -> AssetFilePath:
        return super().__new__(cls, *args)  # the keyword attributes are for __init__

    def __init__(
        self,
        *args: Any,
        asset_table: str | None = None,
        file_name: str | None = None,
        asset_types: Sequence[str] | None = None,
        asset_metadata: dict[str, Any] | None = None,
        asset_rid: str | None = None,
        description: str | None = None,
        execution: Registrar | None = None,
    ) -> None:
        if sys.version_info >= (3, 12):
            super().__init__(*args)
        self.asset_table = asset_table
        self.file_name = file_name
        self.asset_types = list(asset_types or [])
        self.asset_metadata = dict(asset_metadata or {})
        self.asset_rid = asset_rid
        self.description = description
        self._execution = execution

    @property
    def path(self) -> Path:
        """This path as a plain ``pathlib.Path``."""
        return Path(self)

    @property
    def asset_name(self) -> str | None:
        """deriva-ml's older name for ``asset_table``."""
        return self.asset_table

    def with_segments(self, *pathsegments: Any) -> Path:
        """Paths derived from this one (``parent``, ``with_name``...) are plain paths (Python 3.12+)."""
        return Path(*pathsegments)

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.asset_metadata)

    @metadata.setter
    def metadata(self, value: dict[str, Any]) -> None:
        """Replace the whole metadata dict (before commit)."""
        self._require_registration().update_registration(self, asset_metadata=dict(value))

    def set_metadata(self, column: str, value: Any) -> None:
        meta = dict(self.asset_metadata)
        meta[column] = value
        self._require_registration().update_registration(self, asset_metadata=meta)

    def set_asset_types(self, asset_types: Sequence[str] | str) -> None:
        """Replace the types this file will be tagged with at commit (the journal is the one source)."""
        types = [asset_types] if isinstance(asset_types, str) else list(asset_types)
        self._require_registration().update_registration(self, asset_types=types)

    def _require_registration(self) -> Registrar:
        if self._execution is None or self.asset_rid is not None:
            raise ExecutionError(
                f"{self} is not a pending registration; change a committed asset with ml.update_asset(rid, ...)"
            )
        return self._execution


@dataclass(frozen=True)
class AssetExecution:
    """One ``<Asset>_Execution`` link as seen from the asset."""

    execution_rid: str
    asset_role: str


#: catalog column names readable with ``asset["..."]``
_COLUMNS = {
    "RID": "rid",
    "Filename": "filename",
    "Length": "length",
    "MD5": "md5",
    "URL": "url",
    "Description": "description",
    "Asset_Type": "asset_types",
}


class Asset:
    """An asset row: catalog columns, its tags, and the executions it is linked to.

    Read it as attributes (``asset.filename``) or as catalog columns
    (``asset["Filename"]``). ``asset_types`` are the tags current when it was
    looked up, kept current by :meth:`add_asset_type` and :meth:`remove_asset_type`.
    Setting ``description`` records the edit (offline; synced like ``update_asset``).
    """

    def __init__(
        self, rid: str, asset_table: str, filename: str, length: int, md5: str, url: str,
        description: str | None, asset_types: list[str], executions: list[AssetExecution],
        metadata: dict[str, Any] | None = None, synced: bool = False, workspace: AssetOwner | None = None,
    ) -> None:
        self.rid = rid
        self.asset_table = asset_table
        self.filename = filename
        self.length = length
        self.md5 = md5
        self.url = url
        self._description = description
        self.asset_types = list(asset_types)
        self.executions = list(executions)
        self.metadata = dict(metadata or {})
        self.synced = synced
        self._workspace = workspace

    def __repr__(self) -> str:
        return (f"Asset(rid={self.rid!r}, asset_table={self.asset_table!r}, filename={self.filename!r}, "
                f"length={self.length}, md5={self.md5!r}, asset_types={self.asset_types!r})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Asset):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable: tags and description change
    __iter__ = None  # type: ignore[assignment]  # a row, not a sequence (``__getitem__`` takes column names)

    def _fields(self) -> tuple:
        return (self.rid, self.asset_table, self.filename, self.length, self.md5, self.url, self._description,
                self.asset_types, self.executions, self.metadata, self.synced)

    @property
    def asset_rid(self) -> str:
        """deriva-ml's name for ``rid``."""
        return self.rid

    @property
    def description(self) -> str | None:
        return self._description

    @description.setter
    def description(self, value: str | None) -> None:
        stored = value if value is not None else ""  # as update_asset stores it
        self._owner().update_asset(self.rid, description=stored)
        self._description = stored

    @property
    def execution_rid(self) -> str | None:
        """The first execution that produced this asset (role Output), if any."""
        return next((e.execution_rid for e in self.executions if e.asset_role == "Output"), None)

    def list_executions(self, asset_role: str | None = None) -> list[AssetExecution]:
        return [e for e in self.executions if asset_role is None or e.asset_role == asset_role]

    def add_asset_type(self, type_name: str) -> None:
        """Tag the asset (an ``Asset_Type`` term); recorded offline, synced later."""
        self._owner().update_asset(self.rid, add=[type_name])
        self.asset_types = sorted({*self.asset_types, type_name})

    def remove_asset_type(self, type_name: str) -> None:
        """Remove a tag; recorded offline, synced later (removing an absent tag does nothing)."""
        self._owner().update_asset(self.rid, remove=[type_name])
        self.asset_types = [t for t in self.asset_types if t != type_name]

    def get_metadata(self) -> dict[str, Any]:
        return dict(self.metadata)

    def __getitem__(self, column: str) -> Any:
        if column in _COLUMNS:
            return getattr(self, _COLUMNS[column])
        if column in self.metadata:
            return self.metadata[column]
        raise KeyError(column)

    def get(self, column: str, default: Any = None) -> Any:
        try:
            return self[column]
        except KeyError:
            return default

    def download(self, dest_dir: str | Path) -> Path:
        """Write the bytes to ``dest_dir/<Filename>`` and return the path. Records no provenance."""
        return self._owner().download(self.rid, Path(dest_dir))

    def _owner(self) -> AssetOwner:
        if self._workspace is None:
            raise ExecutionError("this Asset is detached from any store; look it up with ml.lookup_asset")
        return self._workspace


@dataclass(frozen=True)
class VocabularyTerm:
    """A term of a vocabulary table. ``rid`` is the catalog's once synced, else the store's provisional one."""

    vocabulary: str
    name: str
    description: str
    synonyms: list[str] = field(default_factory=list)
    rid: str | None = None
    synced: bool = False

    @property
    def id(self) -> str:
        return self.rid or ""


@dataclass(frozen=True)
class UpdateAssetResult:
    """What ``update_asset`` changed, in one transaction."""

    asset_rid: str
    added: list[str]
    removed: list[str]
    description_changed: bool


@dataclass(frozen=True)
class StoreReport:
    """What ``verify`` found: ``ok`` when nothing was corrupt and nothing unsynced lost its bytes."""

    objects_checked: int
    bytes_checked: int
    quarantined: list[str]
    temp_removed: int
    lost_assets: list[str]

    @property
    def ok(self) -> bool:
        return not self.quarantined and not self.lost_assets


@dataclass
class UploadProgress:
    """What a ``progress_callback`` of ``commit_output_assets`` receives (deriva-ml's fields).

    A commit captures files into the store: ``bytes_completed``/``bytes_total``
    count files captured in the ``capture`` phase, then assets in ``commit``.
    """

    file_path: str = ""
    file_name: str = ""
    bytes_completed: int = 0
    bytes_total: int = 0
    percent_complete: float = 0.0
    phase: str = ""
    message: str = ""


class UploadCallback(Protocol):
    """deriva-ml's type of a ``progress_callback``: called with an :class:`UploadProgress`."""

    def __call__(self, progress: UploadProgress) -> None: ...


@dataclass
class UploadReport:
    """What ``commit_output_assets`` (or ``commit_pending_executions``) did, in deriva-ml's shape.

    Offline, "uploaded" means committed into the store: the bytes are in the cache and the rows in
    the journal, durable, waiting for the next push (docs/api.md, "What Uploaded means").
    ``per_table`` is keyed ``"schema/Table"``, each ``{"uploaded": n, "failed": n}``.
    """

    execution_rids: list[str]
    total_uploaded: int = 0
    total_failed: int = 0
    per_table: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    assets: list[AssetFilePath] = field(default_factory=list)
    bytes_captured: int = 0
    new_objects: int = 0

    @property
    def committed(self) -> int:
        return self.total_uploaded

    def count(self, table_key: str, outcome: str = "uploaded", n: int = 1) -> None:
        entry = self.per_table.setdefault(table_key, {"uploaded": 0, "failed": 0})
        entry[outcome] += n


class ExecutionOwner(Protocol):
    """What an ``ExecutionRecord`` reopens its execution through (the ``DerivaML`` of its store)."""

    def resume_execution(self, execution_rid: str) -> Any: ...


@dataclass
class ExecutionRecord:
    """An execution as ``lookup_execution`` / ``find_executions`` return it (deriva-ml's ``ExecutionRecord``).

    A value read from the store; ``update_status`` changes the execution itself (recorded offline).
    """

    execution_rid: str
    workflow: Any  # the Workflow, or None
    status: Any  # a Status
    description: str
    start_time: Any = None
    stop_time: Any = None
    duration: float | None = None  # seconds the run took
    synced: bool = False
    owner: ExecutionOwner | None = field(default=None, repr=False, compare=False)

    @property
    def workflow_rid(self) -> str | None:
        return self.workflow.rid if self.workflow is not None else None

    def update_status(self, status: Any, status_detail: str = "") -> None:
        if self.owner is None:
            raise ExecutionError("this record is detached from any store; look it up with ml.lookup_execution")
        self.owner.resume_execution(self.execution_rid).update_status(status, status_detail or None)
        self.status = status


@dataclass(frozen=True)
class ExecutionSnapshot:
    """One row of ``list_executions`` / ``find_incomplete_executions`` (deriva-ml's fields), read locally.

    ``sync_pending`` is true while the catalog lacks something of it; ``pending_files`` counts
    its files registered but not committed, and committed outputs not yet in the catalog.
    """

    rid: str
    workflow_rid: str | None
    description: str | None
    status: Any
    mode: Any
    working_dir_rel: str
    start_time: Any
    stop_time: Any
    last_activity: Any
    error: str | None
    sync_pending: bool
    created_at: Any
    pending_rows: int = 0
    failed_rows: int = 0
    pending_files: int = 0
    failed_files: int = 0

    @property
    def execution_rid(self) -> str:
        return self.rid

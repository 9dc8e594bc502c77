"""Asset records as users see them: ``Asset`` (a catalog row) and ``AssetFilePath``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from satchel.execution import Execution
    from satchel.ml import DerivaML

_PathBase = type(Path())


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
    _execution: Execution | None = None

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
        execution: Execution | None = None,
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

    def _require_registration(self) -> Execution:
        if self._execution is None or self.asset_rid is not None:
            from satchel.errors import ExecutionError

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


@dataclass(frozen=True)
class Asset:
    """An asset row: catalog columns, its tags, and the executions it is linked to.

    Read it as attributes (``asset.filename``) or as catalog columns
    (``asset["Filename"]``). ``asset_types`` are the tags current when it was
    looked up.
    """

    rid: str
    asset_table: str
    filename: str
    length: int
    md5: str
    url: str
    description: str | None
    asset_types: list[str]
    executions: list[AssetExecution]
    metadata: dict[str, Any] = field(default_factory=dict)
    synced: bool = False
    _ml: DerivaML | None = field(default=None, repr=False, compare=False)

    @property
    def execution_rid(self) -> str | None:
        """The first execution that produced this asset (role Output), if any."""
        return next((e.execution_rid for e in self.executions if e.asset_role == "Output"), None)

    def list_executions(self, asset_role: str | None = None) -> list[AssetExecution]:
        return [e for e in self.executions if asset_role is None or e.asset_role == asset_role]

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
        if self._ml is None:
            raise RuntimeError("this Asset is detached from any store; look it up with ml.lookup_asset")
        return self._ml._download_bytes(self.rid, Path(dest_dir))

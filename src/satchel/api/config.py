"""What an execution is configured with: workflow, input assets, datasets.

Same names and fields as deriva-ml's pydantic models, as plain dataclasses, so
scripts build them the same way (keyword arguments) and they round-trip to
JSON for the journal.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any


class ConnectionMode(str, Enum):
    """deriva-ml's modes. satchel works the same in both: everything is recorded locally, and the
    catalog is reached only when asked (``push``, ``sync``, ``commit_pending_executions``)."""

    online = "online"
    offline = "offline"

    def __str__(self) -> str:
        return self.value


@dataclass
class DerivaMLConfig:
    """deriva-ml's constructor arguments as one value: ``DerivaML.instantiate(config)`` builds from it."""

    hostname: str
    catalog_id: str | int = 1
    domain_schemas: str | set[str] | None = None
    default_schema: str | None = None
    project_name: str | None = None
    cache_dir: str | Path | None = None
    working_dir: str | Path | None = None
    hydra_runtime_output_dir: str | Path | None = None
    ml_schema: str = "deriva-ml"
    logging_level: Any = None
    deriva_logging_level: Any = None
    credential: Any = None
    s3_bucket: str | None = None
    use_minid: bool | None = None
    clean_execution_dir: bool = True
    mode: ConnectionMode | str = ConnectionMode.online

    def model_dump(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class Workflow:
    """A unit of code that executions run: a script, a notebook, a pipeline stage."""

    name: str
    workflow_type: str | list[str]
    url: str | None = None
    version: str | None = None
    description: str = ""
    checksum: str | None = None
    rid: str | None = None
    is_notebook: bool = False

    def __post_init__(self) -> None:
        # deriva-ml normalizes a single type to a list: ``create_workflow(..., "Training").workflow_type == ["Training"]``
        self.workflow_type = [self.workflow_type] if isinstance(self.workflow_type, str) else list(self.workflow_type)

    @property
    def workflow_types(self) -> list[str]:
        return list(self.workflow_type)

    @property
    def workflow_rid(self) -> str | None:
        """deriva-ml's name for ``rid``: set once the workflow is recorded."""
        return self.rid

    @workflow_rid.setter
    def workflow_rid(self, value: str | None) -> None:
        self.rid = value


@dataclass
class AssetSpec:
    """An input asset of an execution, by RID."""

    rid: str
    cache: bool = False


@dataclass
class LocalFile:
    """A file on this machine an execution reads, not yet an asset (deriva-ml's ``LocalFile``).

    ``create_execution`` records it as a ``File`` asset (its bytes captured into the store, so
    the push sends them: deriva-ml uploads no bytes for it) and links it as an ``Input``.
    """

    path: str
    cache: bool = False

    def __post_init__(self) -> None:
        self.path = str(self.path)


@dataclass
class DatasetSpec:
    """A dataset version an execution reads (recorded; bags are not materialized offline)."""

    rid: str
    version: str | None = None
    materialize: bool = True
    description: str = ""


@dataclass
class ExecutionConfiguration:
    """Everything an execution is created from (deriva-ml's ``ExecutionConfiguration``)."""

    datasets: list[DatasetSpec] = field(default_factory=list)
    assets: list[AssetSpec | LocalFile] = field(default_factory=list)
    workflow: Workflow | str | None = None
    description: str = ""
    argv: list[str] = field(default_factory=lambda: list(sys.argv))
    config_choices: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.workflow, dict):  # as stored by to_json(): build the Workflow again
            self.workflow = Workflow(**{k: v for k, v in self.workflow.items() if k in Workflow.__dataclass_fields__})
        self.assets = [_asset_spec(a) for a in self.assets]
        self.datasets = [_dataset_spec(d) for d in self.datasets]

    def to_json(self) -> dict[str, Any]:
        wf = self.workflow
        return {
            "datasets": [asdict(d) for d in self.datasets],
            "assets": [asdict(a) for a in self.assets],
            "workflow": asdict(wf) if isinstance(wf, Workflow) else wf,
            "description": self.description,
            "argv": list(self.argv),
            "config_choices": dict(self.config_choices),
        }


def _asset_spec(a: Any) -> AssetSpec | LocalFile:
    if isinstance(a, AssetSpec | LocalFile):
        return a
    if isinstance(a, str):
        return AssetSpec(rid=a)
    if isinstance(a, dict) and "rid" in a:
        return AssetSpec(rid=a["rid"], cache=bool(a.get("cache", False)))
    if isinstance(a, dict) and isinstance(a.get("path"), str) and a["path"]:
        return LocalFile(path=a["path"], cache=bool(a.get("cache", False)))
    raise TypeError(f"an input asset must be a RID string, an AssetSpec, a LocalFile, or a dict with 'rid' or "
                    f"'path', not {a!r}")


def _dataset_spec(d: Any) -> DatasetSpec:
    if isinstance(d, DatasetSpec):
        return d
    if isinstance(d, str):
        rid, _, version = d.partition("@")
        return DatasetSpec(rid=rid, version=version or None)
    if isinstance(d, dict) and "rid" in d:
        return DatasetSpec(**{k: v for k, v in d.items() if k in DatasetSpec.__dataclass_fields__})
    raise TypeError(f"a dataset must be 'RID@version', a DatasetSpec or a dict with 'rid', not {d!r}")

"""What an execution is configured with: workflow, input assets, datasets.

Same names and fields as deriva-ml's pydantic models, as plain dataclasses, so
scripts build them the same way (keyword arguments) and they round-trip to
JSON for the journal.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from typing import Any


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

    @property
    def workflow_types(self) -> list[str]:
        return [self.workflow_type] if isinstance(self.workflow_type, str) else list(self.workflow_type)


@dataclass
class AssetSpec:
    """An input asset of an execution, by RID."""

    rid: str
    cache: bool = False


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
    assets: list[AssetSpec] = field(default_factory=list)
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


def _asset_spec(a: Any) -> AssetSpec:
    if isinstance(a, AssetSpec):
        return a
    if isinstance(a, str):
        return AssetSpec(rid=a)
    if isinstance(a, dict) and "rid" in a:
        return AssetSpec(rid=a["rid"], cache=bool(a.get("cache", False)))
    raise TypeError(f"an input asset must be a RID string, an AssetSpec or a dict with 'rid', not {a!r}")


def _dataset_spec(d: Any) -> DatasetSpec:
    if isinstance(d, DatasetSpec):
        return d
    if isinstance(d, str):
        rid, _, version = d.partition("@")
        return DatasetSpec(rid=rid, version=version or None)
    if isinstance(d, dict) and "rid" in d:
        return DatasetSpec(**{k: v for k, v in d.items() if k in DatasetSpec.__dataclass_fields__})
    raise TypeError(f"a dataset must be 'RID@version', a DatasetSpec or a dict with 'rid', not {d!r}")

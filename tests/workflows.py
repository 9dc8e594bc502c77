"""A workflow for tests that need one: deriva-ml refuses an execution without a workflow, and so do we."""

from __future__ import annotations

from satchel import DerivaML, ExecutionConfiguration


def a_workflow(ml: DerivaML, name: str = "test.py", workflow_type: str = "Testing"):
    ml.add_term("Workflow_Type", workflow_type, description="workflows of the tests")
    return ml.create_workflow(name, workflow_type)


def config(ml: DerivaML, description: str = "", **kw) -> ExecutionConfiguration:
    """An ExecutionConfiguration with a workflow and ``description``."""
    return ExecutionConfiguration(workflow=a_workflow(ml), description=description, **kw)

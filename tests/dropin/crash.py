"""A run that dies mid-way (deriva-ml user guide, executions chapter, "How to handle a crash":
the process is killed inside the block, so __exit__ never runs and the status stays Running).

Written for deriva-ml; only the import lines differ.
"""

import os
import signal

from satchel import DerivaML, ExecutionConfiguration  # was: from deriva_ml import ...

ml = DerivaML(hostname="deriva.example.org", catalog_id="1")
workflow = ml.create_workflow(name="Long training", workflow_type="Training", description="dies mid-way")
with ml.create_execution(ExecutionConfiguration(workflow=workflow, description="interrupted")) as exe:
    print(f"Execution RID: {exe.execution_rid}", flush=True)
    for epoch in range(2):
        path = exe.asset_file_path("Model", f"checkpoint_{epoch}.pt")
        path.write_bytes(f"weights after epoch {epoch}".encode())
    os.kill(os.getpid(), signal.SIGKILL)  # the node is pre-empted here

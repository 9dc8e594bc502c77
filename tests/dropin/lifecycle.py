"""The execution lifecycle as deriva-ml's tests and user guide drive it: the context manager,
failures, abort, imperative start/stop, status rules, the keyword form of create_execution,
and the queries over executions.

Written for deriva-ml; only the import lines differ (deriva-ml keeps ExecutionStatus and
InvalidTransitionError in submodules).
"""

from datetime import datetime, timedelta, timezone

from satchel import DerivaML, DerivaMLException, ExecutionConfiguration, MLVocab  # was: from deriva_ml import ...
from satchel import ExecutionStatus, InvalidTransitionError  # was: from deriva_ml.execution... import ...

ml = DerivaML(hostname="deriva.example.org", catalog_id="1")
before = datetime.now(timezone.utc) - timedelta(seconds=1)

ml.add_term(MLVocab.workflow_type, "Test Workflow", description="A workflow for tests")
wf = ml.create_workflow(name="B1", workflow_type="Test Workflow", description="lifecycle checks")
assert wf.workflow_type == ["Test Workflow"]

# the context manager
execution = ml.create_execution(ExecutionConfiguration(workflow=wf, description="context manager"))
assert execution.start_time is None
with execution.execute() as exe:
    assert exe.status is ExecutionStatus.Running
assert execution.status is ExecutionStatus.Stopped
assert execution.stop_time is not None and execution.start_time <= execution.stop_time
execution.commit_output_assets()
assert execution.status is ExecutionStatus.Uploaded
print("context", execution.execution_rid, execution.status.value)

# an exception inside the block fails the execution and propagates
failing = ml.create_execution(ExecutionConfiguration(workflow=wf, description="fails"))
try:
    with failing.execute():
        raise RuntimeError("boom")
except RuntimeError:
    pass
assert failing.status is ExecutionStatus.Failed and "boom" in (failing.error or "")
print("failed", failing.execution_rid, failing.error)

# abort from Created
aborted = ml.create_execution(ExecutionConfiguration(workflow=wf, description="aborted"))
aborted.abort()
assert aborted.status is ExecutionStatus.Aborted

# imperative start/stop (a notebook)
manual = ml.create_execution(ExecutionConfiguration(workflow=wf, description="notebook"))
manual.execution_start()
assert ml.lookup_execution(manual.execution_rid).status == ExecutionStatus.Running
manual.execution_stop()
assert ml.lookup_execution(manual.execution_rid).status == ExecutionStatus.Stopped
manual.commit_output_assets()
assert ml.lookup_execution(manual.execution_rid).status == ExecutionStatus.Uploaded

# start, then commit directly: commit stops it first
auto = ml.create_execution(ExecutionConfiguration(workflow=wf, description="auto-stop"))
auto.execution_start()
auto.commit_output_assets()
assert auto.status is ExecutionStatus.Uploaded

# status rules
exe = ml.create_execution(description="valid", workflow=wf)  # keyword form
exe.update_status(ExecutionStatus.Running)
exe.update_status(ExecutionStatus.Failed, error="Network timeout")
assert exe.error == "Network timeout"
other = ml.create_execution(description="other", workflow=wf)
try:
    other.update_status(ExecutionStatus.Uploaded)
    raise SystemExit("Created -> Uploaded was allowed")
except InvalidTransitionError as e:
    assert isinstance(e, DerivaMLException)
    print("refused", e)
try:
    ml.create_execution(ExecutionConfiguration(workflow=wf), description="mixed")
    raise SystemExit("mixed forms were allowed")
except TypeError:
    pass
try:
    ml.create_execution(ExecutionConfiguration(description="no workflow"))
    raise SystemExit("an execution without a workflow was allowed")
except DerivaMLException as e:
    print("no-workflow", e)

# a workflow named by its URL
by_url = ml.create_execution(workflow=wf.url, description="string workflow")
assert by_url.workflow_rid == ml.lookup_workflow_by_url(wf.url).workflow_rid
rid = ml.add_workflow(wf)
assert ml.lookup_workflow(rid).workflow_rid == rid == by_url.workflow_rid

# queries over executions
snapshots = ml.list_executions(workflow_rid=rid, since=before)
print("listed", len(snapshots))
print("incomplete", ",".join(sorted(s.status.value for s in ml.find_incomplete_executions())))
print("uploaded", len(ml.list_executions(status=ExecutionStatus.Uploaded)))
print("found", len(list(ml.find_executions(workflow=rid, status=ExecutionStatus.Failed))))
print("workflows", ",".join(w.name for w in ml.find_workflows()))

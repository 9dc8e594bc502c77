"""The next morning: find the interrupted run, resume it and upload what it wrote (deriva-ml
user guide, executions chapter, "How to handle a crash", and "One method, three callers").

Written for deriva-ml; only the import lines differ.
"""

from satchel import DerivaML  # was: from deriva_ml import DerivaML
from satchel import ExecutionStatus  # was: from deriva_ml.execution.state_store import ExecutionStatus

ml = DerivaML(hostname="deriva.example.org", catalog_id="1")

incomplete = ml.find_incomplete_executions()
for snap in incomplete:
    print("incomplete", snap.rid, snap.status.value, snap.pending_files)

(snap,) = [s for s in incomplete if s.status is ExecutionStatus.Running]
exe = ml.resume_execution(snap.rid)
exe.update_status(ExecutionStatus.Pending_Upload)  # the Running -> Pending_Upload recovery edge
report = exe.commit_output_assets()
print("committed", report.total_uploaded, exe.status.value)

# nothing left to upload; the push part of commit_pending_executions runs when online
again = ml.commit_pending_executions()
print("pending", again.total_uploaded, again.total_failed, len(again.errors))
print("still incomplete", len(ml.find_incomplete_executions()))

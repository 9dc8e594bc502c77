"""An evaluation run that consumes the trained model, as deriva-ml's user guide writes it
(executions chapter: inputs, "How to find what consumed an artifact", "How to trace
lineage"; assets chapter: "How to download an asset").

Written for deriva-ml; only the import lines differ.
"""

import pickle
import sys
from pathlib import Path

from satchel import AssetSpec, DerivaML, ExecutionConfiguration  # was: from deriva_ml import ...

model_rid = sys.argv[1]  # printed by the training run

ml = DerivaML(hostname="deriva.example.org", catalog_id="1")
workflow = ml.create_workflow(name="ResNet50 Evaluation", workflow_type="Testing",
                              description="Evaluate the fine-tuned model")
config = ExecutionConfiguration(workflow=workflow, description="Evaluation on the test split",
                                assets=[AssetSpec(rid=model_rid)])

with ml.create_execution(config) as exe:
    # create_execution placed the model; download_asset gives a copy where we want it
    local = exe.download_asset(model_rid, exe.working_dir / "weights")
    with open(local, "rb") as f:
        weights = pickle.load(f)
    report_path = exe.asset_file_path("Execution_Asset", "evaluation.txt", asset_types=["Output_File"])
    report_path.write_text(f"weights {weights['layer.weight']}\n")

exe.commit_output_assets()

model = ml.lookup_asset(model_rid)
print("model", model.asset_rid, model.filename, ",".join(sorted(model.asset_types)))
print("inputs", ",".join(a.asset_rid for a in exe.list_assets(asset_role="Input")))
print("outputs", ",".join(a.filename for a in exe.list_assets(asset_role="Output")))
print("consumers", ",".join(e.execution_rid for e in ml.find_executions_consuming(model_rid)))

# an ad-hoc look without a provenance edge
peek = model.download(Path(sys.argv[2]))
print("peek", peek.name, peek.read_bytes() == local.read_bytes())

(evaluation,) = exe.list_assets(asset_role="Output")
lineage = ml.lookup_lineage(evaluation.asset_rid)
print("root", lineage.root.type, lineage.root.producing_execution.rid)
print("chain", lineage.lineage.execution.rid, "<-", ",".join(p.execution.rid for p in lineage.lineage.parents))
print("consumed", ",".join(a.rid for a in lineage.lineage.consumed_assets))
print("visited", lineage.executions_visited, lineage.walked_complete)
print("executions", exe.execution_rid)

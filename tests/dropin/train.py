"""A training run as deriva-ml's user guide writes it (executions chapter: "How to run an
execution", "How to write asset files", "How to record training metrics").

Written for deriva-ml; only the import lines differ. torch.save is pickle here, so that
the test needs no torch.
"""

import json
import pickle
import sys
from pathlib import Path

from satchel import DerivaML, ExecutionConfiguration, MLVocab  # was: from deriva_ml import ...

scratch = Path(sys.argv[1])  # where the preprocessing step left its images

ml = DerivaML(hostname="deriva.example.org", catalog_id="1")
ml.add_term(MLVocab.asset_type, "Segmentation_Mask", description="A segmentation mask")
ml.add_term(MLVocab.asset_type, "Derived", description="Derived from another image")

workflow = ml.create_workflow(
    name="ResNet50 Training",
    workflow_type="Training",
    description="Fine-tune ResNet50 on retinal images",
)
config = ExecutionConfiguration(
    workflow=workflow,
    description="Training run - learning rate 0.001",
)

with ml.create_execution(config) as exe:
    print(f"Execution RID: {exe.execution_rid}")

    # new file: write to the returned path
    model_path = exe.asset_file_path("Model", "best_model.pt", description="Best validation loss")
    with open(model_path, "wb") as f:
        pickle.dump({"layer.weight": [0.25, 0.5]}, f)

    # an existing file, copied
    exe.asset_file_path("Image", scratch / "processed.png", copy_file=True)
    # an existing file, staged under a new name
    exe.asset_file_path("Image", scratch / "temp_scan.png", rename_file="scan_001.png")
    # custom asset types
    mask = exe.asset_file_path("Image", "mask.png", asset_types=["Segmentation_Mask", "Derived"])
    mask.write_bytes(b"\x89PNG mask")

    for epoch in range(3):
        train_loss, val_loss = 1.0 / (epoch + 1), 1.5 / (epoch + 1)
        with exe.metrics_file().open("a") as f:
            json.dump({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss}, f)
            f.write("\n")

# Upload happens after the context manager exits.
report = exe.commit_output_assets()

print("status", exe.status.value)
print("uploaded", report.total_uploaded, json.dumps(report.per_table, sort_keys=True))
for table, paths in sorted(exe.uploaded_assets.items()):
    for p in paths:
        print("asset", table, p.asset_rid, p.file_name, ",".join(sorted(p.asset_types)))

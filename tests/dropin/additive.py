"""The upload result's shape and additive uploads, as deriva-ml's own execution tests check
them (create_test_asset, test_asset_upload, test_additive_upload_after_uploaded).

Written for deriva-ml; only the import lines differ.
"""

from satchel import DerivaML, ExecAssetType, ExecutionConfiguration, MLAsset, UploadProgress  # was: deriva_ml

ml = DerivaML(hostname="deriva.example.org", catalog_id="1")
workflow = ml.create_workflow(name="Kernel", workflow_type="Analysis", description="additive uploads")
basic_execution = ml.create_execution(ExecutionConfiguration(workflow=workflow, description="additive"))


def create_test_asset(execution, filename, content):
    asset_path = execution.asset_file_path(MLAsset.execution_asset, f"TestAsset/{filename}",
                                           asset_types=ExecAssetType.model_file)
    with asset_path.open("w") as fp:
        fp.write(content)
    assert asset_path.asset_name == "Execution_Asset" and "Model_File" in asset_path.asset_types
    return asset_path


seen = []
with basic_execution.execute() as execution:
    create_test_asset(execution, "kernel_output.txt", "kernel content")
first = basic_execution.commit_output_assets(progress_callback=lambda p: seen.append(p), chunk_size=50 * 1024 * 1024)
assert first.per_table["deriva-ml/Execution_Asset"]["uploaded"] == 1
assert all(isinstance(p, UploadProgress) for p in seen) and seen[-1].percent_complete == 100.0

create_test_asset(basic_execution, "runner_output.txt", "runner content")  # after Uploaded
second = basic_execution.commit_output_assets()  # Uploaded -> Pending_Upload -> Uploaded
assert second.per_table["deriva-ml/Execution_Asset"]["uploaded"] == 1
third = basic_execution.commit_output_assets()  # nothing pending: no-op

uploaded = basic_execution.uploaded_assets
assert len(uploaded["deriva-ml/Execution_Asset"]) == 2
for p in uploaded["deriva-ml/Execution_Asset"]:
    print("asset", p.asset_rid, p.file_name, ",".join(sorted(p.asset_types)))
print("third", third.total_uploaded, basic_execution.status.value)

"""``satchel demo``: the offline story, end to end, on a throwaway store."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click
from rich.console import Console
from rich.tree import Tree

from satchel.cli._common import handle_errors, human_bytes
from satchel.config import ExecutionConfiguration
from satchel.ml import DerivaML


@click.command("demo")
@click.option("--store", type=click.Path(file_okay=False, path_type=Path), help="Keep the demo store here.")
@handle_errors
def command(store: Path | None) -> None:
    """Record a training run and an evaluation run offline, then show what the journal holds."""
    console = Console()
    tmp = tempfile.TemporaryDirectory(prefix="satchel-demo-") if store is None else None
    root = Path(tmp.name) if tmp else store
    try:
        run_demo(root, console)
    finally:
        if tmp:
            tmp.cleanup()


def run_demo(root: Path, console: Console) -> None:
    assert root is not None
    work = root / "work"
    work.mkdir(parents=True, exist_ok=True)
    console.rule("[bold]satchel demo: offline[/bold]")
    console.print(f"store at {root / 'store'} (no server is contacted)")
    with DerivaML("demo.example.org", "1", working_dir=root / "store") as ml:
        ml.add_term("Workflow_Type", "Training", description="Model training")
        ml.add_term("Workflow_Type", "Evaluation", description="Model evaluation")
        ml.add_term("Asset_Type", "Model_Weights", description="Serialized model weights")

        # 1. a training run: one new file, one existing file registered by symlink, a metrics file
        config_file = work / "hyperparameters.json"
        config_file.write_text('{"lr": 0.001, "epochs": 3}\n')
        train = ml.create_execution(
            ExecutionConfiguration(workflow=ml.create_workflow("train.py", "Training"), description="train a tiny model")
        )
        with train:
            weights = train.asset_file_path("Execution_Asset", "model.bin", asset_types=["Model_Weights", "Model_File"])
            weights.write_bytes(os.urandom(256 * 1024))
            train.asset_file_path("Execution_Metadata", config_file, asset_types="Execution_Config")
            with train.metrics_file().open("w") as f:
                for epoch in range(3):
                    f.write(f'{{"epoch": {epoch}, "loss": {1.0 / (epoch + 1):.3f}}}\n')
        report = train.commit_output_assets()
        console.print(
            f"training run {train.rid}: committed {report.total_uploaded} assets "
            f"({human_bytes(report.bytes_captured)}) -> status {train.status.value}"
        )
        model_rid = next(a.asset_rid for a in report.assets if a.asset_table == "Execution_Asset")

        # 2. an evaluation run reads the model (from the local cache) and writes a report
        evaluate = ml.create_execution(
            ExecutionConfiguration(workflow=ml.create_workflow("eval.py", "Evaluation"), description="evaluate it")
        )
        with evaluate:
            local = evaluate.download_asset(model_rid, work / "downloads")
            again = evaluate.download_asset(model_rid, work / "downloads")  # same bytes: a no-op
            out = evaluate.asset_file_path("Execution_Asset", "eval-report.txt", asset_types=["Execution_Asset"])
            out.write_text(f"evaluated {local.name}: accuracy 0.93\n")
        evaluate.commit_output_assets()
        console.print(f"evaluation run {evaluate.rid} read {model_rid} into {local} (second download: no-op, {again == local})")
        ml.update_asset(model_rid, asset_types=["Model_Weights", "Model_File"], description="tiny demo model")

        console.rule("what the journal holds")
        for a in ml.find_assets():
            console.print(f"  {a.rid}  {a.asset_table}/{a.filename}  {human_bytes(a.length)}  tags: {', '.join(a.asset_types)}")
        tree = Tree(f"lineage of [bold]{model_rid}[/bold]")
        model = ml.lookup_asset(model_rid)
        for link in model.executions:
            node = tree.add(f"{link.asset_role} of execution {link.execution_rid}")
            for h in ml.execution_history(link.execution_rid):
                node.add(f"{h['to']} at {h['at'][11:19]}")
        console.print(tree)
        status = ml.status()
        console.rule("satchel status")
        console.print(
            f"  not yet on the remote: {status['executions']} executions, {status['assets']} assets "
            f"({human_bytes(status['asset_bytes'])}), {status['links']} links, {status['terms']} terms"
        )
        check = ml.verify()
        console.print(f"  verify: {check.objects_checked} objects re-hashed, {'ok' if check.ok else 'PROBLEMS'}")

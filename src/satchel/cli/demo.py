"""``satchel demo``: the whole story on a throwaway store and the embedded DERIVA emulator.

Offline first (the server is not even running), then a sync with progress, a
second sync that sends nothing, a second machine that pulls and reads the
model, and the lineage of the model.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click
from rich.console import Console

from satchel.cli._common import handle_errors, human_bytes
from satchel.cli.lineage import lineage_tree
from satchel.cli._progress import SyncBars
from satchel.api import ExecutionConfiguration
from satchel.errors import RemoteError
from satchel.api import DerivaML
from satchel.remote import Credential, RetryPolicy

MiB = 1 << 20


@click.command("demo")
@click.option("--store", type=click.Path(file_okay=False, path_type=Path), help="Keep the demo's files here.")
@click.option("--offline-only", is_flag=True, help="Stop after the offline part (no emulator).")
@handle_errors
def command(store: Path | None, offline_only: bool) -> None:
    """Record runs offline, sync them to an embedded DERIVA emulator, read them from a second machine."""
    console = Console()
    tmp = tempfile.TemporaryDirectory(prefix="satchel-demo-") if store is None else None
    root = Path(tmp.name) if tmp else store
    assert root is not None
    try:
        run_demo(root, console, offline_only=offline_only)
    finally:
        if tmp:
            tmp.cleanup()


def run_demo(root: Path, console: Console, *, offline_only: bool = False) -> None:
    work = root / "work"
    work.mkdir(parents=True, exist_ok=True)
    console.rule("[bold]1. offline: the server is not running[/bold]")
    laptop = DerivaML("localhost", "1", working_dir=root / "laptop")
    try:
        model_rid, train_rid = record_offline(laptop, work, console)
        try:  # nothing listens there yet: the push fails cleanly, nothing is lost
            laptop.set_remote("http://127.0.0.1:9")
            quick = RetryPolicy(attempts=2, base_delay=0.1, max_delay=0.2, deadline=3)
            laptop.push(remote=laptop.connect(credential=Credential.bearer("demo"), timeout=2.0, retry=quick))
        except RemoteError as exc:
            console.print(f"push while unreachable: [yellow]{type(exc).__name__}[/yellow]; everything stays local")
        print_status(laptop, console)
        if offline_only:
            return
        from satchel.testing import DerivaServer

        with DerivaServer(root / "server") as server:
            sync_and_read(laptop, server, root, work, console, model_rid, train_rid)
    finally:
        laptop.close()


def record_offline(ml: DerivaML, work: Path, console: Console) -> tuple[str, str]:
    ml.add_term("Workflow_Type", "Training", description="Model training")
    ml.add_term("Workflow_Type", "Evaluation", description="Model evaluation")
    ml.add_term("Asset_Type", "Model_Weights", description="Serialized model weights")
    hparams = work / "hyperparameters.json"
    hparams.write_text('{"lr": 0.001, "epochs": 3}\n')
    train = ml.create_execution(
        ExecutionConfiguration(workflow=ml.create_workflow("train.py", "Training"), description="train a tiny model")
    )
    with train:
        weights = train.asset_file_path("Model", "model.bin", asset_types=["Model_Weights", "Model_File"])
        weights.write_bytes(os.urandom(3 * MiB))
        train.asset_file_path("Execution_Metadata", hparams, asset_types="Execution_Config")
        with train.metrics_file().open("w") as f:
            for epoch in range(3):
                f.write(f'{{"epoch": {epoch}, "loss": {1.0 / (epoch + 1):.3f}}}\n')
    report = train.commit_output_assets()
    console.print(
        f"training run {train.rid}: {report.total_uploaded} assets committed "
        f"({human_bytes(report.bytes_captured)}), status {train.status.value}; RIDs are known offline"
    )
    model_rid = next(a.asset_rid for a in report.assets if a.asset_table == "Model")
    evaluate = ml.create_execution(
        ExecutionConfiguration(workflow=ml.create_workflow("eval.py", "Evaluation"), description="evaluate it")
    )
    with evaluate:
        local = evaluate.download_asset(model_rid, work / "eval-inputs")
        evaluate.asset_file_path("Image", "confusion.png").write_bytes(os.urandom(2048))
    evaluate.commit_output_assets()
    console.print(f"evaluation run {evaluate.rid} read the model from the local cache: {local}")
    return model_rid, train.rid


def print_status(ml: DerivaML, console: Console) -> None:
    s = ml.status()
    plan = s["would_send"]
    console.print(
        f"status: {s['executions']} executions, {s['assets']} assets ({human_bytes(s['asset_bytes'])}), "
        f"{s['links']} links, {plan['tags']} tags, {s['terms']} terms wait for the remote"
    )


def sync_and_read(laptop: DerivaML, server, root: Path, work: Path, console: Console, model_rid: str, train_rid: str) -> None:
    console.rule(f"[bold]2. sync to the emulator at {server.url}[/bold]")
    laptop.set_remote(server.url)
    credential = Credential.bearer(server.token)
    with laptop.connect(credential=credential) as remote:
        with SyncBars(console, enabled=console.is_terminal) as bars:
            first = laptop.sync(remote=remote, progress=bars)
        done = ", ".join(f"{n} {k}" for k, n in first.done.items() if n and k != "rid_pool")
        console.print(f"first sync: {done}; {human_bytes(first.bytes_sent)} sent; ok={first.ok}")
        server.stats.reset()
        second = laptop.sync(remote=remote)
        writes = sum(n for (method, _), (n, _) in server.stats.snapshot().items() if method in ("POST", "PUT", "DELETE"))
        console.print(f"second sync: {human_bytes(second.bytes_sent)} sent, {writes} writes: nothing new to send")
        model = laptop.lookup_asset(model_rid)
        console.print(f"the model was {model_rid} offline; in the catalog it is {model.rid} (both resolve)")

    console.rule("[bold]3. a second machine reads the model[/bold]")
    with DerivaML("localhost", "1", working_dir=root / "workstation") as other:
        other.set_remote(server.url)
        with other.connect(credential=credential) as remote:
            pulled = other.pull(remote=remote, assets=[model.rid])
        console.print(
            f"pull: {pulled.pulled['assets']} asset rows mirrored, {pulled.done['bytes']} object fetched "
            f"({human_bytes(pulled.bytes_received)}, MD5 verified)"
        )
        reuse = other.create_execution(
            ExecutionConfiguration(workflow=other.create_workflow("finetune.py", "Training"), description="fine-tune")
        )
        with reuse:
            got = reuse.download_asset(model.rid, work / "finetune-inputs")
            again = reuse.download_asset(model.rid, work / "finetune-inputs")
        same = again.stat().st_ino == got.stat().st_ino
        console.print(f"download: {got}; again: {'a no-op (same file, nothing copied)' if same else 'copied again'}")
        with other.connect(credential=credential) as remote:
            other.sync(remote=remote)
        with laptop.connect(credential=credential) as remote:
            laptop.pull(remote=remote)

    console.rule("[bold]4. lineage of the model, as the laptop now sees it[/bold]")
    graph = laptop.lineage(model.rid)  # offline: the journal, with the workstation's run mirrored by the pull
    console.print(lineage_tree(graph))
    console.print(f"[dim]the same as W3C PROV or a picture: satchel lineage {graph.root} --format prov-json|svg "
                  "-o FILE[/dim]")
    check = laptop.verify()
    console.print(f"verify: {check.objects_checked} objects re-hashed, {'ok' if check.ok else 'PROBLEMS'}")

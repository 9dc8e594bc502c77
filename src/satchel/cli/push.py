"""``satchel push``: send local work to the catalog and object store, exactly once."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from satchel.cli._common import (
    counted, emit_json, handle_errors, human_bytes, open_store, stop_on_ctrl_c, store_options,
)
from satchel.cli._progress import SyncBars

MiB = 1 << 20


def sync_options(fn):
    fn = click.option("--json", "as_json", is_flag=True, help="Print the result (or the plan) as JSON.")(fn)
    fn = click.option("--dry-run", is_flag=True, help="Print what would be sent, from the journal alone; send nothing.")(fn)
    fn = click.option("--retry-failed", is_flag=True, help="Try again the items the server refused before.")(fn)
    fn = click.option("--transfers", default=4, show_default=True, help="Objects uploaded in parallel.")(fn)
    fn = click.option("--chunk-threshold", "chunked_threshold", default=25, show_default=True,
                      help="Files above this many MiB go through resumable chunked uploads.")(fn)
    return fn


def print_push_plan(console: Console, ml, plan) -> None:
    console.print(f"would push to {ml.remote_url} (catalog {ml.catalog_id}):")
    for line in plan.describe():
        console.print(line)


def run_push(ml, *, as_json: bool, retry_failed: bool, transfers: int, chunked_threshold: int):
    """The push with progress bars (none under ``--json``), its result printed unless ``as_json``; returns it."""
    console = Console(stderr=as_json)
    with stop_on_ctrl_c(lambda text: console.print(text)) as stop, \
            SyncBars(console, enabled=not as_json and console.is_terminal) as bars:
        result = ml.push(progress=bars, retry_failed=retry_failed, transfers=transfers, stop=stop,
                         chunked_threshold=chunked_threshold * MiB, chunk_size=chunked_threshold * MiB)
    if not as_json:
        print_push(console, ml, result)
    return result


def print_push(console: Console, ml, result) -> None:
    done = counted(result.done) or "nothing new"
    console.print(f"pushed to {ml.remote_url}: {done}; {human_bytes(result.bytes_sent)} sent")
    skipped = counted(result.skipped)
    if skipped:
        console.print(f"already there: {skipped}")
    for f in result.failed:
        console.print(f"[red]failed[/red] {f.step} {f.rid}: {f.reason}")


@click.command("push")
@store_options
@sync_options
@handle_errors
def command(store, hostname, catalog_id, dry_run, as_json, retry_failed, transfers, chunked_threshold) -> None:
    """Send executions, assets (bytes first), tags and links to the catalog, exactly once."""
    with open_store(store, hostname, catalog_id) as ml:
        if dry_run:
            plan = ml.sync_plan()
            if as_json:
                emit_json(plan.to_json())
            else:
                print_push_plan(Console(), ml, plan)
            return
        result = run_push(ml, as_json=as_json, retry_failed=retry_failed, transfers=transfers,
                          chunked_threshold=chunked_threshold)
    if as_json:
        emit_json(result.to_json())
    if not result.ok:
        sys.exit(7)

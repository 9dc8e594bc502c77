"""``satchel sync``: push local work, then pull the catalog's."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from satchel.cli._common import emit_json, handle_errors, open_store, stop_on_ctrl_c, store_options
from satchel.cli._progress import SyncBars
from satchel.cli.pull import print_pull, print_pull_plan
from satchel.cli.push import print_push_plan, run_push, sync_options


@click.command("sync")
@store_options
@sync_options
@handle_errors
def command(store, hostname, catalog_id, dry_run, as_json, retry_failed, transfers, chunked_threshold) -> None:
    """Reconcile the store with its catalog: push local work, then mirror the catalog's metadata.

    With --json, one document: {"ok", "push", "pull"} (with --dry-run, the two plans)."""
    console = Console(stderr=as_json)
    with open_store(store, hostname, catalog_id) as ml:
        if dry_run:
            push_plan, pull_plan = ml.sync_plan(), ml.pull_plan()
            if as_json:
                emit_json({"push": push_plan.to_json(), "pull": pull_plan})
            else:
                print_push_plan(console, ml, push_plan)
                print_pull_plan(console, ml, pull_plan)
            return
        pushed = run_push(ml, as_json=as_json, retry_failed=retry_failed, transfers=transfers,
                          chunked_threshold=chunked_threshold)
        with stop_on_ctrl_c(lambda text: console.print(text)) as stop, \
                SyncBars(console, enabled=not as_json and console.is_terminal) as bars:
            pulled = ml.pull(progress=bars, transfers=transfers, stop=stop)
        still_failed = ml.sync_plan().failed
    ok = pushed.ok and pulled.ok and not still_failed
    if as_json:
        emit_json({"ok": ok, "push": pushed.to_json(), "pull": pulled.to_json()})
    else:
        print_pull(console, pulled)
        for f in pulled.failed:
            console.print(f"[red]failed[/red] {f.step} {f.rid}: {f.reason}")
    if not ok:
        sys.exit(7)

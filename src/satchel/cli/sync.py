"""``satchel sync``: push local work, then pull the catalog's."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from satchel.cli._common import emit_json, handle_errors, open_store, store_options
from satchel.cli._progress import SyncBars
from satchel.cli.pull import print_pull
from satchel.cli.push import run_push, sync_options


@click.command("sync")
@store_options
@sync_options
@handle_errors
def command(store, hostname, catalog_id, dry_run, as_json, retry_failed, transfers, chunked_threshold) -> None:
    """Reconcile the store with its catalog: push local work, then mirror the catalog's metadata."""
    with open_store(store, hostname, catalog_id) as ml:
        run_push(ml, dry_run=dry_run, as_json=as_json, retry_failed=retry_failed, transfers=transfers,
                 chunked_threshold=chunked_threshold, exit_on_failure=False)
        if dry_run:
            return
        console = Console(stderr=as_json)
        with SyncBars(console, enabled=not as_json and console.is_terminal) as bars:
            result = ml.pull(progress=bars, transfers=transfers)
        if as_json:
            emit_json(result.to_json())
        else:
            print_pull(console, result)
        if not result.ok or ml.sync_plan().failed:
            sys.exit(7)

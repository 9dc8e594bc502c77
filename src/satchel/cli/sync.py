"""``satchel sync``: push, then pull (the pull half arrives with the metadata mirror)."""

from __future__ import annotations

import click

from satchel.cli._common import handle_errors, open_store, store_options
from satchel.cli.push import run_push, sync_options


@click.command("sync")
@store_options
@sync_options
@handle_errors
def command(store, hostname, catalog_id, dry_run, as_json, retry_failed, transfers, chunked_threshold) -> None:
    """Reconcile the store with its catalog: push local work (pull comes with the mirror)."""
    with open_store(store, hostname, catalog_id) as ml:
        run_push(ml, dry_run=dry_run, as_json=as_json, retry_failed=retry_failed, transfers=transfers,
                 chunked_threshold=chunked_threshold)

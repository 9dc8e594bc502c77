"""``satchel pull``: mirror the catalog's metadata; fetch bytes for offline use."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from satchel.cli._common import (
    counted, emit_json, handle_errors, human_bytes, open_store, stop_on_ctrl_c, store_options,
)
from satchel.cli._progress import SyncBars


def print_pull(console: Console, result) -> None:
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    pulled = counted(result.pulled)
    console.print(f"pulled: {pulled}" if pulled else "up to date: nothing changed on the server since the last pull")
    if result.done["bytes"] or result.skipped["bytes"]:
        console.print(f"bytes: fetched {result.done['bytes']} objects ({human_bytes(result.bytes_received)}), "
                      f"{result.skipped['bytes']} already here")
    if result.pulled["conflicts"]:
        console.print(f"[yellow]{result.pulled['conflicts']} conflict(s)[/yellow]: see `satchel status`, "
                      "settle with `satchel resolve RID --keep local|remote`")


@click.command("pull")
@store_options
@click.option("--asset", "assets", multiple=True, metavar="RID", help="Fetch this asset's bytes (repeatable).")
@click.option("--table", "tables", multiple=True, metavar="TABLE", help="Fetch the bytes of every asset of this table.")
@click.option("--execution", "executions", multiple=True, metavar="RID",
              help="Fetch the bytes of this execution's inputs and outputs.")
@click.option("--transfers", default=4, show_default=True, help="Downloads in parallel.")
@click.option("--dry-run", is_flag=True, help="Print what would be read and fetched, from the journal alone.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def command(store, hostname, catalog_id, assets, tables, executions, transfers, dry_run, as_json) -> None:
    """Mirror catalog metadata (assets, tags, links, executions, vocabulary, model) into the store,
    and fetch the bytes of the assets named, verified by MD5, so they work offline."""
    console = Console(stderr=as_json)
    with open_store(store, hostname, catalog_id) as ml:
        if dry_run:
            plan = ml.pull_plan(assets=assets, tables=tables, executions=executions)
            if as_json:
                emit_json(plan)
            else:
                print_pull_plan(console, ml, plan)
            return
        with stop_on_ctrl_c(lambda text: console.print(text)) as stop, \
                SyncBars(console, enabled=not as_json and console.is_terminal) as bars:
            result = ml.pull(progress=bars, assets=assets, tables=tables, executions=executions, transfers=transfers,
                             stop=stop)
    if as_json:
        emit_json(result.to_json())
    else:
        print_pull(console, result)
        for f in result.failed:
            console.print(f"[red]failed[/red] {f.step} {f.rid}: {f.reason}")
    if not result.ok:
        sys.exit(7)


def print_pull_plan(console: Console, ml, plan: dict) -> None:
    console.print(f"would pull from {ml.remote_url} (catalog {ml.catalog_id}):")
    if not plan["watermarks"]:
        console.print("  every table in full (first pull)")
    for table, mark in sorted(plan["watermarks"].items()):
        console.print(f"  {table}: rows changed since {mark} (less the overlap window)")
    if "fetch_objects" in plan:
        console.print(f"  fetch {plan['fetch_objects']} objects ({human_bytes(plan['fetch_bytes'])}) not in the cache "
                      "(of the assets known here; a pull first may find more)")

"""``satchel verify``: re-hash the cache, quarantine corrupt objects, report lost bytes."""

from __future__ import annotations

import sys

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from satchel.cli._common import emit_json, handle_errors, human_bytes, open_store, store_options


@click.command("verify")
@store_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def command(store, hostname, catalog_id, as_json: bool) -> None:
    """Re-hash every cached object; exit 4 if any was corrupt or an unsynced asset lost its bytes."""
    with open_store(store, hostname, catalog_id) as ml:
        with Progress(TextColumn("verifying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      transient=True, disable=as_json) as bar:
            task = bar.add_task("verify", total=None)
            report = ml.verify(progress=lambda done, total: bar.update(task, completed=done, total=total))
    if as_json:
        emit_json({"ok": report.ok, "objects_checked": report.objects_checked, "bytes_checked": report.bytes_checked,
                   "quarantined": report.quarantined, "lost_assets": report.lost_assets,
                   "temp_removed": report.temp_removed})
    else:
        click.echo(f"checked {report.objects_checked} objects ({human_bytes(report.bytes_checked)})")
        for name in report.quarantined:
            click.echo(f"corrupt object {name[:16]}… moved to quarantine")
        for rid in report.lost_assets:
            click.echo(f"asset {rid} is not on the remote and its bytes are gone from the cache")
        click.echo("ok" if report.ok else "PROBLEMS FOUND")
    if not report.ok:
        sys.exit(4)

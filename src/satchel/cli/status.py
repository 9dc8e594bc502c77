"""``satchel status``: what the remote does not have yet."""

from __future__ import annotations

import click

from satchel.cli._common import (
    emit_json,
    find_store,
    handle_errors,
    human_bytes,
    open_store,
    store_options,
)
from satchel.journal.report import read_status


@click.command("status")
@store_options
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON (a documented contract).")
@handle_errors
def command(store, hostname, catalog_id, as_json: bool) -> None:
    """Show executions and assets not yet on the remote: counts and bytes."""
    path = find_store(store, hostname, catalog_id)
    # a current journal is read with sqlite3 alone; anything else is opened in full (migrated, or refused)
    status = read_status(path.expanduser().absolute()) if path is not None else None
    if status is None:
        with open_store(store, hostname, catalog_id) as ml:
            status = ml.status()
    if as_json:
        emit_json(status)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"store  {status['store']}")
    console.print(f"remote {status['remote']}" + ("" if status.get("remote_configured") else
                                                   "  (the default for this host: set another with `satchel remote set URL`)"))
    table = Table(title="not yet on the remote", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("bytes", justify="right")
    table.add_row("executions", str(status["executions"]), "")
    table.add_row("assets", str(status["assets"]), human_bytes(status["asset_bytes"]))
    table.add_row("execution links", str(status["links"]), "")
    table.add_row("vocabulary terms", str(status["terms"]), "")
    if status["failed_assets"]:
        table.add_row("[red]failed assets[/red]", str(status["failed_assets"]), "")
    console.print(table)
    by_status = status["executions_by_status"]
    if by_status:
        console.print("executions by status: " + ", ".join(f"{k} {v}" for k, v in sorted(by_status.items())))
    if status["in_flight_uploads"]:
        console.print(f"in flight: {status['in_flight_uploads']} chunked upload(s); the next push resumes them")
    for f in status["failures"]:
        console.print(f"[red]failed[/red] {f['table']} {f['RID']}: {f['reason']}  (retry: satchel push --retry-failed)")
    for c in status["conflicts"]:
        if c["field"] == "Deleted":
            what = "deleted from the catalog, still recorded here"
            how = "--keep remote: forget it here; --keep local: send it again"
        else:
            what = f"{c['field']}: here {c['local']!r}, remote {c['remote']!r}"
            how = "--keep local|remote"
        console.print(f"[yellow]conflict[/yellow] {c['RID']} {what}  (settle: satchel resolve {c['RID']} {how})")
    from satchel.sync.plan import PushPlan

    plan = PushPlan(**{k: v for k, v in status["would_send"].items() if k in PushPlan.__dataclass_fields__})
    console.print("one sync would send:")
    for line in plan.describe():
        console.print(line)

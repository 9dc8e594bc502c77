"""``satchel show RID``: one asset or execution with its links."""

from __future__ import annotations

import click
from rich.console import Console

from satchel.cli._common import emit_json, handle_errors, human_bytes, open_store, store_options
from satchel.errors import UnknownRIDError


@click.command("show")
@store_options
@click.argument("rid")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def command(store, hostname, catalog_id, rid: str, as_json: bool) -> None:
    """Show an asset or an execution, with its provenance links."""
    console = Console()
    with open_store(store, hostname, catalog_id) as ml:
        try:
            a = ml.lookup_asset(rid)
        except UnknownRIDError as exc:
            if "is an execution" not in str(exc):
                raise UnknownRIDError(
                    f"no asset or execution has RID {rid} in this store; list them with `satchel ls` "
                    "(and `satchel ls --executions`)"
                ) from None
            a = None
        if a is not None:
            data = {
                "kind": "asset", "RID": a.rid, "Table": a.asset_table, "Filename": a.filename, "Length": a.length,
                "MD5": a.md5, "URL": a.url, "Description": a.description, "Asset_Type": a.asset_types,
                "executions": [{"Execution": e.execution_rid, "Asset_Role": e.asset_role} for e in a.executions],
                "metadata": a.metadata, "synced": a.synced,
            }
            if as_json:
                emit_json(data)
                return
            console.print(f"[bold]asset {a.rid}[/bold]  {a.asset_table}/{a.filename}  {human_bytes(a.length)}")
            console.print(f"  MD5 {a.md5}\n  URL {a.url}")
            if a.description:
                console.print(f"  description: {a.description}")
            console.print(f"  tags: {', '.join(a.asset_types) or '(none)'}")
            for e in a.executions:
                console.print(f"  {e.asset_role:6} of execution {e.execution_rid}")
            console.print(f"  on the remote: {'yes' if a.synced else 'not yet'}")
            return
        record = ml.lookup_execution(rid)
        first = ml.resume_execution(rid).rid  # the RID it was recorded under here
        links = [(a.rid, a.asset_table, role) for role in ("Input", "Output")
                 for a in ml.list_execution_assets(rid, role)]
        history = ml.execution_history(rid)
        workflow = record.workflow
        data = {"kind": "execution", "RID": record.execution_rid, "Status": record.status.value,
                "Description": record.description, "Workflow": record.workflow_rid,
                "Workflow_Name": getattr(workflow, "name", None), "synced": record.synced,
                "also_known_as": [first] if first != record.execution_rid else [], "history": history,
                "assets": [{"RID": r, "Table": t, "Asset_Role": role} for r, t, role in links]}
        if as_json:
            emit_json(data)
            return
        console.print(f"[bold]execution {record.execution_rid}[/bold]  status {record.status.value}"
                      + (f"  (recorded here as {first})" if first != record.execution_rid else ""))
        if workflow is not None:
            console.print(f"  workflow {record.workflow_rid}: {workflow.name}" + (f" {workflow.version}" if getattr(
                workflow, "version", None) else ""))
        if record.description:
            console.print(f"  description: {record.description}")
        console.print(f"  on the remote: {'yes' if record.synced else 'not yet'}")
        for h in history:
            console.print(f"  {h['at'][:19]}  {h['from'] or '-':>14} -> {h['to']}" + (f"  ({h['detail']})" if h["detail"] else ""))
        for r, t, role in links:
            console.print(f"  {role:6} {t}/{r}")

"""``satchel ls``: list assets (or executions) in the store."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from satchel.cli._common import emit_json, handle_errors, human_bytes, open_store, store_options


@click.command("ls")
@store_options
@click.option("--table", "asset_table", help="Only assets of this asset table.")
@click.option("--type", "asset_type", help="Only assets carrying this Asset_Type tag.")
@click.option("--executions", is_flag=True, help="List executions instead of assets.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def command(store, hostname, catalog_id, asset_table, asset_type, executions: bool, as_json: bool) -> None:
    """List assets (RID, table, file, size, tags, synced) or executions."""
    with open_store(store, hostname, catalog_id) as ml:
        if executions:
            rows = [{"RID": e.rid, "Status": str(e.status), "Description": e.description,
                     "created_at": e.created_at.isoformat(), "synced": not e.sync_pending}
                    for e in ml.list_executions()]
            if as_json:
                emit_json(rows)
                return
            table = Table("RID", "status", "description", "created", "synced")
            for r in rows:
                table.add_row(r["RID"], r["Status"], r["Description"] or "", r["created_at"][:19], "yes" if r["synced"] else "no")
            Console().print(table)
            return
        assets = list(ml.find_assets(asset_table=asset_table, asset_type=asset_type))
    if as_json:
        emit_json(
            [
                {"RID": a.rid, "Table": a.asset_table, "Filename": a.filename, "Length": a.length, "MD5": a.md5,
                 "URL": a.url, "Asset_Type": a.asset_types, "synced": a.synced}
                for a in assets
            ]
        )
        return
    table = Table("RID", "table", "file", "size", "tags", "synced")
    for a in assets:
        table.add_row(a.rid, a.asset_table, a.filename, human_bytes(a.length), ", ".join(a.asset_types), "yes" if a.synced else "no")
    Console().print(table)

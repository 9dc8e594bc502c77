"""``satchel get RID...``: put assets' verified bytes in a folder, from the cache (fetching first with ``--pull``)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from satchel.cli._common import emit_json, handle_errors, open_store, stop_on_ctrl_c, store_options
from satchel.errors import UnknownRIDError


@click.command("get")
@store_options
@click.argument("rids", nargs=-1, required=True)
@click.option("--to", "dest", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder to put the files in (made if missing).")
@click.option("--pull", "pull_first", is_flag=True,
              help="Fetch from the server what is not here yet (metadata and bytes), verified, first.")
@click.option("--for-execution", "execution_rid", metavar="RID",
              help="Record the assets as inputs of this execution (provenance, synced at the next push).")
@click.option("--pin", is_flag=True, help="Keep their bytes in the cache through `satchel gc`.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def command(store, hostname, catalog_id, rids: tuple[str, ...], dest: Path, pull_first: bool,
            execution_rid: str | None, pin: bool, as_json: bool) -> None:
    """Put assets' verified bytes in a folder (offline, from the cache)."""
    console = Console(stderr=True)
    with open_store(store, hostname, catalog_id) as ml:
        exe = ml.resume_execution(execution_rid) if execution_rid else None  # a bad RID fails before any file
        if pull_first:
            _fetch_missing(ml, list(rids), console)
        if exe is not None:
            paths = [Path(a) for a in exe.download_assets(list(rids), dest)]
        else:
            paths = ml.workspace.place(list(rids), dest)
        if pin:
            ml.pin_assets(list(rids), reason="get")
    if as_json:
        emit_json([{"RID": r, "path": str(p)} for r, p in zip(rids, paths, strict=True)])
        return
    for r, p in zip(rids, paths, strict=True):
        click.echo(f"{r}  {p}")
    if exe is not None:
        click.echo(f"recorded as inputs of execution {exe.execution_rid}")


def _fetch_missing(ml, rids: list[str], console: Console) -> None:
    """Pull the assets whose bytes are not in the cache (and, if any RID is unknown here, the metadata first)."""
    unknown, missing = [], []
    for rid in rids:
        try:
            if not ml.workspace.has_bytes(rid):
                missing.append(rid)
        except UnknownRIDError:
            unknown.append(rid)
    if not unknown and not missing:
        return
    with stop_on_ctrl_c(lambda text: console.print(text)) as stop:
        result = ml.pull(assets=unknown + missing, metadata=bool(unknown), stop=stop)
    for f in result.failed:
        console.print(f"[red]failed[/red] {f.step} {f.rid}: {f.reason}")

"""``satchel du``, ``gc``, ``pin`` and ``unpin``: what the store's disk holds, and freeing it."""

from __future__ import annotations

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from satchel.cli._common import emit_json, handle_errors, human_bytes, open_store, store_options

#: why gc keeps an object, as the summaries say it
KEPT_WORDS = {
    "unsynced": "not on the server yet",
    "open-execution": "used by open executions",
    "pinned": "pinned",
    "not-ours": "named by no asset of this store (a shared cache)",
    "recent": "used recently (--keep-days)",
    "within-size": "within --max-size",
}


def objects(n: int) -> str:
    return f"{n:,} object" + ("" if n == 1 else "s")


def _kept_lines(kept: dict[str, dict[str, int]]) -> list[str]:
    return [f"  kept {objects(v['objects'])}, {human_bytes(v['bytes'])}: {KEPT_WORDS[r]}"
            for r, v in kept.items() if v["objects"]]


@click.command("du")
@store_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def du(store, hostname, catalog_id, as_json: bool) -> None:
    """Show where the store's disk space goes, and what `satchel gc` would free."""
    with open_store(store, hostname, catalog_id) as ml:
        s = ml.storage_summary()
    if as_json:
        emit_json(s)
        return
    table = Table(title=f"store {s['store']}", show_header=True, header_style="bold")
    table.add_column("what")
    table.add_column("files", justify="right")
    table.add_column("size", justify="right")
    table.add_row("cache objects", f"{s['objects']:,}", human_bytes(s["object_bytes"]))
    for reason, v in s["kept"].items():
        table.add_row(f"  {KEPT_WORDS[reason]}", f"{v['objects']:,}", human_bytes(v["bytes"]))
    table.add_row("  on the server, unpinned (gc frees)", f"{s['reclaimable']['objects']:,}",
                  human_bytes(s["reclaimable"]["bytes"]))
    table.add_row("quarantined (corrupt)", f"{s['quarantine']['files']:,}", human_bytes(s["quarantine"]["bytes"]))
    table.add_row("temporary files", f"{s['temp']['files']:,}", human_bytes(s["temp"]["bytes"]))
    table.add_row(f"execution folders ({s['executions']['dirs']:,})", f"{s['executions']['files']:,}",
                  human_bytes(s["executions"]["bytes"]))
    table.add_row("journal", "", human_bytes(s["journal_bytes"]))
    Console().print(table)
    if s["reclaimable"]["objects"]:
        click.echo(f"`satchel gc` would free {human_bytes(s['reclaimable']['bytes'])}")


@click.command("gc")
@store_options
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@click.option("--keep-days", type=click.FloatRange(min=0, max=1e6), metavar="N",
              help="Keep objects used (captured, fetched or downloaded) in the last N days.")
@click.option("--max-size", metavar="SIZE",
              help="Remove only until the cache is this small (e.g. 10G, 500M), least recently used first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def gc(store, hostname, catalog_id, dry_run: bool, keep_days: float | None, max_size: str | None,
       as_json: bool) -> None:
    """Free the cache of objects the server has confirmed and nothing pins.

    Never removes bytes that are not on the server yet, that an open
    execution uses, or that are pinned (satchel pin, satchel get --pin).
    """
    def waiting() -> None:
        click.echo("waiting for a commit or download in another process to finish…", err=True)

    with open_store(store, hostname, catalog_id) as ml:
        console = Console(stderr=True)
        with Progress(TextColumn("removing"), BarColumn(), MofNCompleteColumn(), console=console, transient=True,
                      disable=as_json or dry_run or not console.is_terminal) as bar:
            task = bar.add_task("gc", total=None)
            report = ml.gc(keep_days=keep_days, max_size=max_size, dry_run=dry_run, on_wait=waiting,
                           progress=lambda done, total: bar.update(task, completed=done, total=total))
    if as_json:
        emit_json(report.as_dict())
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {objects(report.removed_objects)}, {human_bytes(report.removed_bytes)}; "
               f"cache {human_bytes(report.size_before)} -> {human_bytes(report.size_after)}")
    for line in _kept_lines(report.kept):
        click.echo(line)
    if report.over_target:
        click.echo(f"the cache stays {human_bytes(report.over_target)} above --max-size: everything left must be "
                   "kept (push to let gc free what is not on the server yet)")


@click.command("pin")
@store_options
@click.argument("rids", nargs=-1, required=True)
@handle_errors
def pin(store, hostname, catalog_id, rids: tuple[str, ...]) -> None:
    """Keep assets' bytes in the cache through any `satchel gc`."""
    with open_store(store, hostname, catalog_id) as ml:
        n = ml.pin_assets(list(rids))
    click.echo(f"pinned {n} asset(s)" + (f" ({len(rids) - n} already pinned)" if n < len(rids) else ""))


@click.command("unpin")
@store_options
@click.argument("rids", nargs=-1, required=True)
@handle_errors
def unpin(store, hostname, catalog_id, rids: tuple[str, ...]) -> None:
    """Let `satchel gc` remove assets' bytes again once the server has them."""
    with open_store(store, hostname, catalog_id) as ml:
        n = ml.unpin_assets(list(rids))
    click.echo(f"unpinned {n} asset(s)" + (f" ({len(rids) - n} were not pinned)" if n < len(rids) else ""))

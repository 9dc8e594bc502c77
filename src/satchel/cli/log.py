"""``satchel log``: the sync history, newest first: when, what, how much, and what failed."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any
from urllib.parse import urlsplit

import click

from satchel.cli._common import emit_json, handle_errors, human_bytes, open_store, store_options
from satchel.journal.synclog import KEPT, OPERATIONS, UNFINISHED, SyncLogRecord

#: outcomes as the table says them
OUTCOME_TEXT = {
    "ok": "[green]ok[/green]",
    "partial": "[yellow]partial[/yellow]",
    "failed": "[red]failed[/red]",
    "interrupted": "[yellow]interrupted[/yellow]",
    "running": "[cyan]running[/cyan]",
    UNFINISHED: "[red]did not finish[/red]",
}


def _counts(counts: dict[str, int]) -> tuple[int, int, int]:
    """Assets, executions and every other row, from counts named either way (``asset`` or ``assets``)."""
    assets = executions = other = 0
    for key, n in counts.items():
        kind = key.removesuffix("s")
        if kind == "asset":
            assets += n
        elif kind == "execution":
            executions += n
        elif kind not in ("object", "byte", "conflict", "adopted", "rid_pool", "lease") and not key.endswith(
                "_confirmed"):
            other += n
    return assets, executions, other


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _rows_text(counts: dict[str, int]) -> list[str]:
    assets, executions, other = _counts(counts)
    return [_plural(n, word) for n, word in ((assets, "asset"), (executions, "execution"), (other, "other row")) if n]


def moved(record: SyncLogRecord) -> str:
    """What an entry moved, in a few words: ``12 assets, 3 executions, 40.1 MiB sent``."""
    s = record.summary
    if not s:
        return ""
    if record.operation == "push":
        parts = _rows_text(s.get("done", {}))
        if s.get("bytes_sent"):
            parts.append(f"{human_bytes(s['bytes_sent'])} sent")
        return ", ".join(parts) or "nothing new"
    if record.operation == "pull":
        parts = _rows_text(s.get("pulled", {}))
        fetched = s.get("done", {}).get("bytes", 0)
        if fetched:
            parts.append(f"{_plural(fetched, 'object')} fetched ({human_bytes(s.get('bytes_received', 0))})")
        if not parts and s.get("skipped", {}).get("unchanged catalog"):
            return "catalog unchanged"
        return ", ".join(parts) or "nothing new"
    if s.get("already_imported"):
        return "imported before; nothing changed"
    counts = s.get("applied") if record.operation == "bundle-import" else s.get("records")
    parts = _rows_text(counts or {})
    if s.get("objects"):
        parts.append(f"{_plural(s['objects'], 'object')} ({human_bytes(s.get('object_bytes', 0))})")
    return ", ".join(parts) or "nothing"


def took(record: SyncLogRecord) -> str:
    seconds = record.duration
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def when(record: SyncLogRecord, *, seconds: bool = False) -> str:
    """The start, in local time."""
    return record.started_at.astimezone().strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


#: an operation and its remote as the table says them
WHAT = {"push": "push to {}", "pull": "pull from {}", "bundle-export": "bundle export to {}",
        "bundle-import": "bundle import from {}"}


def what(record: SyncLogRecord) -> str:
    """``push to www.example.org``, ``bundle import from work.zip`` (``--json`` has the full URL or path)."""
    remote = record.remote or "?"
    if record.operation in ("push", "pull"):
        remote = urlsplit(remote).netloc or remote
    else:
        remote = PurePath(remote).name or remote
    return WHAT.get(record.operation, record.operation + " {}").format(remote)


def failure_count(record: SyncLogRecord) -> int:
    return int(record.summary.get("failed", 0) or 0)


def print_failures(console: Any, records: list[SyncLogRecord]) -> None:
    """Each entry's error and its failed items (the first ones a history entry keeps)."""
    from rich.markup import escape
    from rich.padding import Padding
    from rich.text import Text

    def indented(text: str) -> None:
        console.print(Padding(Text(text), (0, 0, 0, 2)))

    shown = False
    for r in records:
        failures = r.summary.get("failures", [])
        if not (r.error or failures or r.outcome == UNFINISHED):
            continue
        shown = True
        console.print(f"\n[bold]#{r.id}[/bold] {escape(what(r))}, {when(r, seconds=True)}: "
                      f"{OUTCOME_TEXT.get(r.outcome, r.outcome)}", highlight=False)
        if r.outcome == UNFINISHED and r.operation.startswith("bundle"):
            indented("its process ended before it did (killed, crashed, or the machine went down): a bundle is "
                     "written or applied whole or not at all, so run it again")
        elif r.outcome == UNFINISHED:
            indented("its process ended before it did (killed, crashed, or the machine went down): what the server "
                     "confirmed was recorded, and the next sync goes on from there")
        if r.error:
            indented(r.error)
        for line in failures:
            indented(f"- {line}")
        more = failure_count(r) - len(failures)
        if more > 0:
            indented(f"… and {more:,} more (an entry keeps the first {KEPT}; `satchel status` lists the items still "
                     "failed)")
    if not shown:
        console.print("\nno failures in these entries", highlight=False)


@click.command("log")
@store_options
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=0),
              help="Show at most this many entries (0: all).")
@click.option("--operation", type=click.Choice(OPERATIONS), help="Only entries of this operation.")
@click.option("--failures", "show_failures", is_flag=True,
              help="Also print each entry's error and the items that failed.")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
@handle_errors
def command(store, hostname, catalog_id, limit: int, operation: str | None, show_failures: bool,
            as_json: bool) -> None:
    """Show the sync history: each push, pull and bundle export or import, newest first."""
    with open_store(store, hostname, catalog_id) as ml:
        records = ml.sync_history(limit=limit or None, operation=operation)
    if as_json:
        emit_json([r.to_json() for r in records])
        return
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not records:
        none = f"no {operation}" if operation else "nothing"
        console.print(f"{none} recorded in this store's sync history yet. `satchel push` sends local work to the "
                      "server (`satchel remote set URL` names it once), `satchel pull` mirrors the catalog, "
                      "`satchel bundle export|import` carries work across an air gap.", highlight=False)
        return
    table = Table(title="sync history, newest first", box=box.SIMPLE_HEAD)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("when", no_wrap=True)
    table.add_column("what")
    table.add_column("outcome")
    table.add_column("moved")
    table.add_column("took", justify="right", no_wrap=True)
    table.add_column("failed", justify="right", no_wrap=True)
    for r in records:
        failed = failure_count(r)
        table.add_row(str(r.id), when(r), escape(what(r)), OUTCOME_TEXT.get(r.outcome, r.outcome), moved(r), took(r),
                      f"[red]{failed:,}[/red]" if failed else "")
    console.print(table)
    if show_failures:
        print_failures(console, records)
    elif any(r.error or failure_count(r) or r.outcome == UNFINISHED for r in records):
        console.print("some entries failed or did not finish: `satchel log --failures` says what happened",
                      highlight=False)

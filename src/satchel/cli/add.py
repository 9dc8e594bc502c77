"""``satchel add PATH...``: record files as outputs of an execution from the shell, as ``dvc add`` does.

The files go through the same path as a script's ``asset_file_path`` then
``commit_output_assets``: each is staged as a link to where it is, captured
into the cache (hashed, copied, made durable) and recorded with its tags in one
transaction. The originals stay where they are. Everything given is checked
(paths, table, tags, names) before anything is recorded.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from satchel.cli._common import emit_json, handle_errors, human_bytes, open_store, store_options
from satchel.api.config import Workflow
from satchel.errors import BadArgumentError, ExecutionError, Interrupted, SatchelError


def files_to_add(paths: tuple[Path, ...]) -> list[Path]:
    """Every file named or under a named folder (recursively, not following folder links), each once."""
    found: dict[str, Path] = {}
    for given in paths:
        if given.is_dir():
            for dirpath, dirnames, names in os.walk(given):
                dirnames.sort()
                for name in sorted(names):
                    p = Path(dirpath) / name
                    if p.is_file():
                        found.setdefault(os.path.realpath(p), p)
        elif given.is_file():
            found.setdefault(os.path.realpath(given), given)
        elif given.exists():
            raise BadArgumentError(f"{given} is neither a file nor a folder; add regular files (or folders of them)")
        else:
            raise BadArgumentError(f"{given} does not exist; check the path (nothing was recorded)")
    files = list(found.values())
    by_name: dict[str, Path] = {}
    for f in files:
        other = by_name.setdefault(f.name, f)
        if other is not f:
            raise BadArgumentError(
                f"{other} and {f} would both be recorded as {f.name!r} (an execution's outputs in one table have "
                "distinct file names); add them in separate `satchel add` runs, or rename one (nothing was recorded)")
    if not files and paths:
        raise BadArgumentError(f"no files under {', '.join(map(str, paths))}; nothing to add")
    return files


@click.command("add")
@store_options
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--table", "table", default="Execution_Asset", show_default=True, help="Asset table to record them in.")
@click.option("--type", "types", multiple=True, metavar="TAG", help="Asset_Type tag (repeatable).")
@click.option("--execution", "execution_rid", metavar="RID",
              help="Add to this execution (also: commit what an interrupted add left registered).")
@click.option("--workflow", metavar="NAME|URL|RID",
              help="Workflow of the new execution: a recorded one (URL, checksum or RID), else the name of a new one.")
@click.option("--workflow-type", default="Ingest", show_default=True, help="Workflow_Type of a new workflow.")
@click.option("--description", default=None, help="Description of the new execution.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def command(store, hostname, catalog_id, paths: tuple[Path, ...], table: str, types: tuple[str, ...],
            execution_rid: str | None, workflow: str | None, workflow_type: str, description: str | None,
            as_json: bool) -> None:
    """Record files (folders recursively) as outputs of an execution, offline; `satchel push` sends them."""
    if execution_rid and workflow:
        raise click.UsageError("--execution adds to an existing execution, --workflow starts a new one: pass one")
    if not paths and not execution_rid:
        raise click.UsageError("name the files or folders to add")
    files = files_to_add(paths)
    with open_store(store, hostname, catalog_id, create=True) as ml:
        ws = ml.workspace
        ws.check_asset_table(table)
        ws.check_terms("Asset_Type", list(types))
        inside = [f for f in files if _within(f, ml.store.root) or _within(f, ml.store.cache.root)]
        if inside:
            raise BadArgumentError(f"{inside[0]} is part of the store itself ({ml.store.root}); add files outside "
                                   "it, or name the folders to add (nothing was recorded)")
        if execution_rid:
            exe = ml.resume_execution(execution_rid)
            if exe.status in ("Failed", "Aborted"):
                raise ExecutionError(f"execution {exe.execution_rid} is {exe.status}; add the files to a new "
                                     "execution (drop --execution) (nothing was recorded)")
        else:
            wf = _workflow(ml, workflow or "satchel add", workflow_type)
            exe = ml.create_execution(workflow=wf, description=description or _describe(paths, len(files)))
        try:
            if exe.status == "Created":
                exe.execution_start()
            for f in files:
                exe.asset_file_path(table, os.fspath(f.absolute()), asset_types=list(types))
            if exe.status == "Running":
                exe.execution_stop()
            report = _commit(exe, as_json)
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted: nothing more was committed to execution {exe.execution_rid}; finish "
                              f"with `satchel add --execution {exe.execution_rid}` (it commits the files already "
                              "registered)") from None
    rids = [a.asset_rid for a in report.assets]
    if as_json:
        emit_json({"execution": exe.execution_rid, "assets": [
            {"RID": a.asset_rid, "Filename": a.file_name, "Table": a.asset_table, "Asset_Type": a.asset_types}
            for a in report.assets], "bytes_captured": report.bytes_captured, "new_objects": report.new_objects})
        return
    click.echo(f"execution {exe.execution_rid}: recorded {len(rids)} asset(s) in {table}, "
               f"{human_bytes(report.bytes_captured)} ({report.new_objects} new in the cache)")
    for a in report.assets[:20]:
        click.echo(f"  {a.asset_rid}  {a.file_name}")
    if len(report.assets) > 20:
        click.echo(f"  … and {len(report.assets) - 20} more (`satchel show {exe.execution_rid}`)")
    click.echo("offline and durable; `satchel push` sends them to the catalog")


def _within(path: Path, root: Path) -> bool:
    real, top = os.path.realpath(path), os.path.realpath(root)
    return real == top or real.startswith(top + os.sep)


def _workflow(ml, name_or_url: str, workflow_type: str):
    for lookup in (ml.lookup_workflow_by_url, ml.lookup_workflow):
        try:
            return lookup(name_or_url)
        except SatchelError:
            continue
    # a new one, named: no script behind it to take a URL or checksum from (a later add of the name reuses it)
    ml.workspace.check_terms("Workflow_Type", [workflow_type])
    return Workflow(name=name_or_url, workflow_type=workflow_type, description="files recorded with `satchel add`")


def _describe(paths: tuple[Path, ...], n: int) -> str:
    shown = ", ".join(str(p) for p in paths[:3]) + (", …" if len(paths) > 3 else "")
    return f"satchel add: {n} file(s) from {shown}"


def _commit(exe, quiet: bool):
    console = Console(stderr=True)
    with Progress(TextColumn("capturing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True, disable=quiet or not console.is_terminal) as bar:
        task = bar.add_task("capture", total=None)
        return exe.commit_output_assets(progress_callback=lambda p: bar.update(
            task, completed=p.bytes_completed, total=p.bytes_total))

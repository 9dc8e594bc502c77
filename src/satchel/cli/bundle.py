"""``satchel bundle export|import``: carry work across an air gap as one verified file (docs/airgap.md)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from satchel.cli._common import emit_json, find_stores, handle_errors, human_bytes, open_store, store_options
from satchel.cli._progress import SyncBars


@click.group("bundle")
def command() -> None:
    """Export work to a bundle file, or import one (air-gapped sites, both ways)."""


def _print(console: Console, verb: str, report) -> None:
    what = ", ".join(f"{n} {k}{'' if n == 1 else 's'}" for k, n in report.records.items() if k != "table") or "nothing"
    console.print(f"{verb} {report.path} ({report.kind}): {what}; "
                  f"{report.objects} objects, {human_bytes(report.object_bytes)}")


@command.command("export")
@store_options
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--execution", "executions", multiple=True, metavar="RID",
              help="Only these executions and everything they need (repeatable).")
@click.option("--since", help="Only unsent work made from this ISO time on (e.g. 2026-12-01).")
@click.option("--for-offline", is_flag=True,
              help="On a connected store: what an offline store needs (model, rows, bytes, RIDs, confirmations).")
@click.option("--asset", "assets", multiple=True, metavar="RID", help="With --for-offline: assets to carry, with bytes.")
@click.option("--table", "tables", multiple=True, metavar="T", help="With --for-offline: every asset of a table.")
@click.option("--rid-pool", default=None, type=int,
              help="With --for-offline: RIDs to lease for the offline store  [default: 1000].")
@click.option("--no-mirror", is_flag=True,
              help="With --for-offline: only the chosen rows and confirmations, not every mirrored row.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@handle_errors
def export_command(store, hostname, catalog_id, out, executions, since, for_offline, assets, tables, rid_pool,
                   no_mirror, as_json) -> None:
    """Write OUT (.zip, or .tar): unsent work, or with --for-offline what an offline store needs."""
    if rid_pool is None:
        rid_pool = 1000 if for_offline else 0
    console = Console(stderr=as_json)
    with open_store(store, hostname, catalog_id) as ml:
        with SyncBars(console, enabled=not as_json and console.is_terminal) as bars:
            report = ml.export_bundle(out, executions=executions, since=since, for_offline=for_offline,
                                      assets=assets, tables=tables, rid_pool=rid_pool, mirror=not no_mirror,
                                      progress=bars)
    if as_json:
        emit_json(report.to_json())
    else:
        _print(console, "wrote", report)
        for warning in report.warnings:
            console.print(f"[yellow]warning:[/yellow] {warning}")
        console.print("carry it across, then run: satchel bundle import " + Path(report.path).name)


@command.command("import")
@store_options
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@handle_errors
def import_command(store, hostname, catalog_id, bundle, as_json) -> None:
    """Verify BUNDLE completely, then apply it to the store (never twice; no network)."""
    console = Console(stderr=as_json)
    if store is None and not (hostname and catalog_id) and not find_stores():
        from satchel.bundle.transfer import peek_catalog

        hostname, catalog_id = peek_catalog(bundle)  # a first import makes the store for the bundle's catalog
    with open_store(store, hostname, catalog_id) as ml:
        with SyncBars(console, enabled=not as_json and console.is_terminal) as bars:
            report = ml.import_bundle(bundle, progress=bars)
    if as_json:
        emit_json(report.to_json())
    elif report.already_imported:
        console.print(f"{bundle} was imported here before; nothing changed")
    else:
        applied = ", ".join(f"{n} {k}" for k, n in report.applied.items()) or "nothing new"
        console.print(f"imported {bundle} ({report.kind}): {applied}; {report.objects} objects, "
                      f"{human_bytes(report.object_bytes)} verified")
        if report.kind == "outbound":
            console.print("next: satchel push")

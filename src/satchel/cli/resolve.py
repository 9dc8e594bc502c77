"""``satchel resolve``: settle a description changed on both sides, or an asset the catalog deleted."""

from __future__ import annotations

import click

from satchel.cli._common import handle_errors, open_store, store_options


@click.command("resolve")
@store_options
@click.argument("rid")
@click.option("--keep", type=click.Choice(["local", "remote"]), required=True,
              help="local: the next push writes our value over theirs (a deleted asset is sent again); "
                   "remote: take theirs, drop our edit (a deleted asset is forgotten here).")
@handle_errors
def command(store, hostname, catalog_id, rid: str, keep: str) -> None:
    """Settle the open conflict(s) of asset RID."""
    with open_store(store, hostname, catalog_id) as ml:
        n = ml.resolve(rid, keep)
    click.echo(f"settled {n} conflict(s) of {rid}: keeping the {keep} value")

"""``satchel remote``: which server a store syncs to."""

from __future__ import annotations

import click

from satchel.cli._common import emit_json, handle_errors, open_store, store_options


@click.group("remote")
def command() -> None:
    """Show or set the server this store syncs to."""


@command.command("set")
@store_options
@click.argument("url")
@handle_errors
def set_remote(store, hostname, catalog_id, url: str) -> None:
    """Sync this store with the DERIVA server at URL (e.g. https://www.example.org)."""
    with open_store(store, hostname, catalog_id) as ml:
        ml.set_remote(url)
        click.echo(f"{ml.store.root} syncs with {ml.remote_url}, catalog {ml.catalog_id}")


@command.command("show")
@store_options
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def show_remote(store, hostname, catalog_id, as_json: bool) -> None:
    """Print the server and catalog this store syncs to, and where credentials come from."""
    from satchel.remote.auth import load_credential

    with open_store(store, hostname, catalog_id) as ml:
        url = ml.remote_url
        host = url.split("://", 1)[-1]
        cred = load_credential(host)
        data = {"url": url, "catalog": ml.catalog_id, "credential": str(cred) if cred else None}
    if as_json:
        emit_json(data)
    else:
        click.echo(f"{data['url']}  catalog {data['catalog']}  credential: {data['credential'] or 'none found'}")

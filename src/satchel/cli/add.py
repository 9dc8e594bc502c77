"""``satchel add``: being built."""

from __future__ import annotations

import click


@click.command("add")
def command() -> None:
    """(being built)"""
    raise click.UsageError("satchel add is not built yet")

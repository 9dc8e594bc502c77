"""``satchel get``: being built."""

from __future__ import annotations

import click


@click.command("get")
def command() -> None:
    """(being built)"""
    raise click.UsageError("satchel get is not built yet")

"""``satchel log``: being built."""

from __future__ import annotations

import click


@click.command("log")
def command() -> None:
    """(being built)"""
    raise click.UsageError("satchel log is not built yet")

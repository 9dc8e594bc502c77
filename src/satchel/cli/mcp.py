"""``satchel mcp``: being built."""

from __future__ import annotations

import click


@click.command("mcp")
def command() -> None:
    """(being built)"""
    raise click.UsageError("satchel mcp is not built yet")

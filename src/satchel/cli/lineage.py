"""``satchel lineage``: being built."""

from __future__ import annotations

import click


@click.command("lineage")
def command() -> None:
    """(being built)"""
    raise click.UsageError("satchel lineage is not built yet")

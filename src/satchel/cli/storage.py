"""``satchel du``, ``gc``, ``pin``, ``unpin``: being built."""

from __future__ import annotations

import click


@click.command("du")
def du() -> None:
    """(being built)"""


@click.command("gc")
def gc() -> None:
    """(being built)"""


@click.command("pin")
def pin() -> None:
    """(being built)"""


@click.command("unpin")
def unpin() -> None:
    """(being built)"""

"""The ``satchel`` command line: one module per command, thin over the library.

Each command module exposes a click command named ``command``; this module
collects them into the ``satchel`` group. Library code never draws progress
bars: commands pass callbacks and draw with rich.
"""

from __future__ import annotations

import importlib

import click

#: command modules under satchel.cli, in the order ``--help`` lists them
COMMAND_MODULES = (
    "demo",
    "status",
    "ls",
    "show",
    "verify",
    "push",
    "pull",
    "sync",
    "resolve",
    "remote",
    "server",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="satchel")
def main() -> None:
    """satchel: record ML assets offline, sync them to DERIVA later."""


def _register() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"satchel.cli.{name}")
        except ModuleNotFoundError as exc:  # a command still being written
            if exc.name != f"satchel.cli.{name}":
                raise
            continue
        main.add_command(module.command)


_register()

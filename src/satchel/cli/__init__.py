"""The ``satchel`` command line: one module per command, thin over the library.

Each command module exposes a click command named ``command``; the group
imports a module only when its command runs (or ``--help`` lists them), so a
quick ``satchel status`` does not pay for the emulator or the sync engine.
Library code never draws progress bars: commands pass callbacks and draw with
rich.
"""

from __future__ import annotations

import importlib

import click

#: command name -> module under satchel.cli (``module:attr`` when a module holds several commands)
COMMAND_MODULES = {
    "demo": "demo",
    "status": "status",
    "ls": "ls",
    "show": "show",
    "verify": "verify",
    "add": "add",
    "get": "get",
    "lineage": "lineage",
    "du": "storage:du",
    "gc": "storage:gc",
    "pin": "storage:pin",
    "unpin": "storage:unpin",
    "log": "log",
    "push": "push",
    "pull": "pull",
    "sync": "sync",
    "bundle": "bundle",
    "resolve": "resolve",
    "remote": "remote",
    "server": "server",
    "mcp": "mcp",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMAND_MODULES.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(f"satchel.cli.{module}"), attr or "command")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="satchel")
def main() -> None:
    """satchel: record ML assets offline, sync them to DERIVA later."""

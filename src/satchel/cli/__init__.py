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

#: command name -> module under satchel.cli, in the order ``--help`` lists them
COMMAND_MODULES = {
    "demo": "demo",
    "status": "status",
    "ls": "ls",
    "show": "show",
    "verify": "verify",
    "push": "push",
    "pull": "pull",
    "sync": "sync",
    "bundle": "bundle",
    "resolve": "resolve",
    "remote": "remote",
    "server": "server",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is None:
            return None
        return importlib.import_module(f"satchel.cli.{module}").command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="satchel")
def main() -> None:
    """satchel: record ML assets offline, sync them to DERIVA later."""

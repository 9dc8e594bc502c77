"""``python -m satchel.cli``: the ``satchel`` command, for environments without the console script on PATH."""

from satchel.cli import main

main(prog_name="satchel")

"""``satchel mcp``: serve a store's metadata calls to a Model Context Protocol client over stdio.

The SDK is imported only when this command runs (and only if installed), so
no other command pays for it.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
from typing import Any

import click

from satchel.cli._common import debugging, handle_errors, open_store, store_options
from satchel.errors import SatchelError


def require_sdk() -> None:
    if importlib.util.find_spec("mcp") is None:
        raise SatchelError("satchel mcp needs the Model Context Protocol SDK, which is not installed here; "
                           "install it with: pip install 'satchel[mcp]'")


@click.command("mcp")
@store_options
@handle_errors
def command(store, hostname, catalog_id) -> None:
    """Serve the store to an MCP client (an LLM app) over stdin/stdout, offline.

    Tools: lookup_asset, list_assets, find_assets, update_asset,
    list_asset_executions, lineage, status. update_asset records the change
    here; the next `satchel push` sends it. The client starts this command and
    speaks to it; it runs until the client closes the connection (or Ctrl-C).
    docs/mcp.md shows how to register it.
    """
    require_sdk()
    from satchel.mcpserver import StoreTools, build_server

    with open_store(store, hostname, catalog_id) as ml:
        tools = StoreTools(ml)

        def stop(signum: int, frame: Any) -> None:
            # The SDK reads stdin on a thread no cancellation reaches: a graceful stop would wait for the
            # client's next line. So: let the call under way finish (its transaction commits or rolls back
            # whole), close the store, and end the process.
            tools.last_call()
            ml.close()
            sys.stderr.flush()
            os._exit(128 + signum)

        previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            build_server(tools, log_level="DEBUG" if debugging() else "WARNING").run("stdio")
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

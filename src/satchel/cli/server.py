"""``satchel server``: run the DERIVA emulator in the foreground (demos, manual tests)."""

from __future__ import annotations

import json
import signal
import threading

import click

from satchel.testing.server import DerivaServer


@click.command("server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=0, show_default=True, type=int, help="Port; 0 picks a free one.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Keep the emulator's state here (it survives restarts); default: a temporary directory.")
@click.option("--json", "as_json", is_flag=True, help="Print the address and tokens as one JSON line.")
def command(host: str, port: int, data_dir: str | None, as_json: bool) -> None:
    """Run an ERMrest + Hatrac + webauthn emulator until interrupted.

    It serves catalog 1 (the deriva-ml schema and the test-schema domain schema
    with the Image and Model asset tables) and prints the URL and the tokens
    (use one as a bearer token or as the webauthn cookie).
    """
    stop = threading.Event()

    def _stop(*_args):
        stop.set()

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        with DerivaServer(data_dir, host=host, port=port) as server:
            info = {
                "url": server.url,
                "catalog": server.catalog_id,
                "token": server.token,
                "admin_token": server.admin_token,
                "reader_token": server.reader_token,
                "data_dir": str(server.data_dir),
            }
            if as_json:
                click.echo(json.dumps(info), nl=True)
            else:
                click.echo("satchel DERIVA emulator (Ctrl-C to stop)")
                click.echo(f"url          {info['url']}")
                click.echo(f"catalog      {info['catalog']}   ({info['url']}/ermrest/catalog/{info['catalog']})")
                click.echo(f"token        {info['token']}   (user 'writer'; bearer token or webauthn cookie)")
                click.echo(f"admin token  {info['admin_token']}   (catalog owner)")
                click.echo(f"reader token {info['reader_token']}   (read only)")
                click.echo(f"data dir     {info['data_dir']}")
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
    finally:
        signal.signal(signal.SIGTERM, previous)

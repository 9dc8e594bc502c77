"""``DerivaServer``: the emulator as a context manager.

::

    with DerivaServer() as server:
        server.url          # "http://127.0.0.1:<port>"
        server.token        # bearer token (or webauthn cookie value) of the writer
        server.catalog_id   # "1", holding the deriva-ml and test-schema model

Three users exist: ``writer`` (``token``; may insert/update/delete and write
Hatrac objects), ``admin`` (``admin_token``; owns the catalog, may create
catalogs) and ``reader`` (``reader_token``; select only). Anonymous clients
may read the catalog and get 401 on every write.
"""

from __future__ import annotations

import collections
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from satchel.testing import apache
from satchel.testing.authn import Authn
from satchel.testing.ermrest import Ermrest
from satchel.testing.hatrac import COMPRESSED_TYPES, DEFAULT_MAX_PAYLOAD, Hatrac
from satchel.testing.httpd import EmulatorHTTPServer, HTTPError, Request, Response, Stats
from satchel.testing.state import State

ADMIN, WRITER, READER = "admin", "writer", "reader"


def classify(method: str, path: str) -> str:
    """The path kind requests are counted under, e.g. ``ermrest.entity``, ``hatrac.chunk``."""
    if path.startswith("/hatrac"):
        _, _, sub = path.partition(";")
        if sub.startswith("upload"):
            n = len(sub.split("/"))
            return "hatrac.chunk" if n == 3 else "hatrac.job"
        return f"hatrac.{sub.split('/')[0]}" if sub else "hatrac.object"
    if path.startswith("/authn"):
        return "authn"
    m = re.match(r"/ermrest/catalog/[^/]+/([^/]+)", path)
    if m:
        return f"ermrest.{m.group(1)}"
    return "ermrest.catalog" if path.startswith("/ermrest") else "other"


@dataclass
class InjectedError:
    status: int
    message: str
    times: int
    method: str | None = None
    path_contains: str | None = None


class Emulator:
    """The WSGI-less application: identity, then ERMrest, Hatrac or authn."""

    def __init__(self, data_dir: Path, *, max_payload: int = DEFAULT_MAX_PAYLOAD,
                 compressed_types=COMPRESSED_TYPES, request_timeout: float | None = 15.0, rid_lease: bool = True):
        self.lock = threading.RLock()
        self.state = State(data_dir)
        self.authn = Authn(self.state, self.lock)
        self.tokens = {
            ADMIN: self.authn.ensure_user(ADMIN, ["admin"], password="admin-password"),
            WRITER: self.authn.ensure_user(WRITER, [], password="writer-password"),
            READER: self.authn.ensure_user(READER, [], password="reader-password"),
        }
        self.ermrest = Ermrest(self.state, self.lock, admin_ids=[ADMIN], writer_ids=[WRITER],
                               request_timeout=request_timeout, rid_lease=rid_lease)
        self.hatrac = Hatrac(self.state, self.lock, writers={WRITER}, admins={ADMIN, "admin"},
                             max_payload=max_payload, compressed_types=compressed_types)
        # a deployment's namespaces for the asset tables, where writers may create objects
        if not self.hatrac.names:
            for table in ("Image", "Model", "Execution_Metadata", "Execution_Asset", "File", "metadata"):
                self.hatrac.ensure_namespace(f"/hatrac/{table}", owner=ADMIN, create=[WRITER])
        self.injected: list[InjectedError] = []
        self.log: collections.deque[tuple[str, str, int]] = collections.deque(maxlen=10000)

    def __call__(self, req: Request) -> Response:
        try:
            response = self._dispatch(req)
        except HTTPError as exc:
            self.log.append((req.method, _target(req), exc.status))
            raise
        self.log.append((req.method, _target(req), response.status))
        return response

    def _dispatch(self, req: Request) -> Response:
        refused = apache.refusal(req)
        if refused is not None:
            return refused
        with self.lock:
            for fault in self.injected:
                if fault.times and (fault.method is None or fault.method == req.method) and (
                        fault.path_contains is None or fault.path_contains in req.raw_path):
                    fault.times -= 1
                    raise HTTPError(fault.status, fault.message)
        req.client = self.authn.identify(req)
        path = req.raw_path
        if path.startswith("/ermrest"):
            return self.ermrest.handle(req)
        if path == "/hatrac" or path.startswith("/hatrac/") or path.startswith("/hatrac;"):
            return self.hatrac.handle(req)
        if path.startswith("/authn"):
            return self.authn.handle(req)
        raise HTTPError(404, f"Resource not found. Detail: {path}")

    def close(self) -> None:
        self.state.close()


def _target(req: Request) -> str:
    return req.raw_path + ("?" + req.query_string if req.query_string else "")


class DerivaServer:
    """An ERMrest + Hatrac + webauthn emulator on loopback; see the module docstring."""

    catalog_id = "1"

    def __init__(self, data_dir: str | Path | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 max_payload: int = DEFAULT_MAX_PAYLOAD, compressed_types=COMPRESSED_TYPES,
                 request_timeout: float | None = 15.0, rid_lease: bool = True):
        self._tmp = None
        self.rid_lease = rid_lease
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="satchel-emulator-")
            data_dir = self._tmp.name
        self.data_dir = Path(data_dir)
        self._host = host
        self._port = port
        self._max_payload = max_payload
        self._compressed_types = tuple(compressed_types)
        self.request_timeout = request_timeout
        self._httpd: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.app: Emulator | None = None

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> "DerivaServer":
        if self._httpd is not None:
            return self
        self.app = Emulator(self.data_dir, max_payload=self._max_payload, compressed_types=self._compressed_types,
                            request_timeout=self.request_timeout, rid_lease=self.rid_lease)
        try:
            self._httpd = EmulatorHTTPServer((self._host, self._port), self.app, classify)
        except BaseException:
            self.app.close()
            raise
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="satchel-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.close_connections()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None
        if self.app is not None:
            self.app.close()
            self.app = None

    def restart(self) -> None:
        """Stop and start again on the same port, reloading state from the data directory."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "DerivaServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- addresses and credentials ----------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def host(self) -> str:
        """``host:port``, the form deriva-py takes as its server name."""
        return f"{self._host}:{self._port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def catalog_url(self) -> str:
        return f"{self.url}/ermrest/catalog/{self.catalog_id}"

    def _app(self) -> Emulator:
        if self.app is None:
            raise RuntimeError("the emulator is not running; use 'with DerivaServer() as server:'")
        return self.app

    @property
    def token(self) -> str:
        return self._app().tokens[WRITER]

    @property
    def admin_token(self) -> str:
        return self._app().tokens[ADMIN]

    @property
    def reader_token(self) -> str:
        return self._app().tokens[READER]

    def credentials(self, user: str = WRITER, *, kind: str = "bearer") -> dict[str, str]:
        """deriva-py's credential dict for ``user``: ``bearer-token`` or ``cookie``."""
        token = self._app().tokens[user]
        return {"bearer-token": token} if kind == "bearer" else {"cookie": f"webauthn={token}"}

    def remote(self, user: str = WRITER, **options):
        """A :class:`satchel.remote.Remote` on this server as ``user`` (close it, or use ``with``)."""
        from satchel.remote import Credential, Remote

        options.setdefault("credential", Credential.bearer(self._app().tokens[user]))
        return Remote(self.url, self.catalog_id, **options)

    # --- test hooks ---------------------------------------------------------------------

    @property
    def stats(self) -> Stats:
        if self._httpd is None:
            raise RuntimeError("the emulator is not running")
        return self._httpd.stats

    @property
    def log(self) -> collections.deque:
        """Recent requests as (method, target, status)."""
        return self._app().log

    @property
    def errors(self) -> list[BaseException]:
        """Unexpected exceptions inside the emulator (answered with 500); tests assert it stays empty."""
        return self._httpd.errors if self._httpd else []

    def inject(self, status: int = 503, message: str | None = None, *, times: int = 1,
               method: str | None = None, path_contains: str | None = None) -> None:
        """Answer the next ``times`` matching requests with ``status`` before doing anything."""
        if message is None:
            message = {503: "The service is temporarily unavailable. Detail: Transaction aborted.",
                       400: "Request malformed. Detail: Query run time limit exceeded."}.get(status, "Injected error.")
        with self._app().lock:
            self._app().injected.append(InjectedError(status, message, times, method, path_contains))

    def clear_faults(self) -> None:
        with self._app().lock:
            self._app().injected.clear()

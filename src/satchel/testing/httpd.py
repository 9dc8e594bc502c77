"""The emulator's HTTP/1.1 server: threads, keep-alive, streaming bodies, counters.

Built on the stdlib ``ThreadingHTTPServer``. Each request becomes a
:class:`Request` handed to an application callable that returns a
:class:`Response` (or raises :class:`HTTPError`). Bodies are read lazily so
large uploads stream to disk in constant memory.
"""

from __future__ import annotations

import collections
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO, Callable, Iterable
from urllib.parse import parse_qs

BLOCK = 64 * 1024


class HTTPError(Exception):
    """An error answer: status, text/plain message and extra headers."""

    def __init__(self, status: int, message: str = "", headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class Request:
    method: str
    raw_path: str  # path without the query, still percent-encoded
    query_string: str
    headers: Any  # email.message.Message (case-insensitive get)
    body_stream: BinaryIO
    content_length: int | None
    client: dict | None = None  # the authenticated client, set by the app
    snapshot: Any = None  # ERMrest: the catalog time a @rev read is served at
    _body: bytes | None = None

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.query_string, keep_blank_values=True)

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def body(self) -> bytes:
        if self._body is None:
            self._body = self.body_stream.read(self.content_length) if self.content_length else b""
        return self._body

    def iter_body(self) -> Iterable[bytes]:
        """The body in blocks, read straight from the socket."""
        remaining = self.content_length or 0
        while remaining > 0:
            block = self.body_stream.read(min(BLOCK, remaining))
            if not block:
                raise ConnectionError("client closed the connection mid-body")
            remaining -= len(block)
            yield block


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    file: tuple[str, int, int] | None = None  # (path, offset, length) streamed after headers
    head_only_length: bool = True  # HEAD: send Content-Length (Hatrac omits it for 0 bytes)

    @classmethod
    def json(cls, status: int, value: Any, headers=()) -> "Response":
        return cls(status, json.dumps(value).encode(), [("Content-Type", "application/json"), *headers])

    @classmethod
    def text(cls, status: int, text: str, headers=()) -> "Response":
        return cls(status, text.encode(), [("Content-Type", "text/plain"), *headers])


class Stats:
    """Requests and request-body bytes received, per (method, path kind)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], list[int]] = collections.defaultdict(lambda: [0, 0])

    def add(self, method: str, kind: str, nbytes: int) -> None:
        with self._lock:
            entry = self._counts[(method, kind)]
            entry[0] += 1
            entry[1] += nbytes

    def requests(self, method: str | None = None, kind: str | None = None) -> int:
        return sum(v[0] for k, v in self.snapshot().items() if _match(k, method, kind))

    def bytes_received(self, method: str | None = None, kind: str | None = None) -> int:
        return sum(v[1] for k, v in self.snapshot().items() if _match(k, method, kind))

    def snapshot(self) -> dict[tuple[str, str], tuple[int, int]]:
        with self._lock:
            return {k: (v[0], v[1]) for k, v in self._counts.items()}

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


def _match(key, method, kind) -> bool:
    return (method is None or key[0] == method) and (kind is None or key[1] == kind)


class _CountingReader:
    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.count += len(data)
        return data


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "satchel-deriva-emulator/1"
    timeout = 60  # idle keep-alive connections are closed after this
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass

    def _handle(self):
        server: EmulatorHTTPServer = self.server  # type: ignore[assignment]
        path, _, query = self.path.partition("?")
        length_header = self.headers.get("Content-Length")
        try:
            length = int(length_header) if length_header is not None else None
        except ValueError:
            length = None
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.send_error(411, "chunked request bodies are not supported; send Content-Length")
            self.close_connection = True
            return
        reader = _CountingReader(self.rfile)
        request = Request(self.command, path, query, self.headers, reader, length)
        try:
            response = server.app(request)
        except HTTPError as exc:
            text = "" if exc.status == 304 else exc.message + "\n"
            response = Response.text(exc.status, text, list(exc.headers.items()))
        except ConnectionError:
            self.close_connection = True
            return
        except Exception as exc:  # an emulator bug: answer 500 and keep serving
            server.errors.append(exc)
            response = Response.text(500, f"Internal emulator error: {exc!r}\n")
        # drain what the app did not read so keep-alive stays in sync
        unread = (length or 0) - reader.count
        try:
            while unread > 0:
                block = reader.read(min(BLOCK, unread))
                if not block:
                    self.close_connection = True
                    break
                unread -= len(block)
        except OSError:
            self.close_connection = True
            return
        server.stats.add(self.command, server.classify(self.command, path), reader.count)
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        names = {k.lower() for k, _ in response.headers}
        for k, v in response.headers:
            self.send_header(k, v)
        length = response.file[2] if response.file else len(response.body)
        if "content-length" not in names:
            if self.command != "HEAD" or response.head_only_length:
                self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command == "HEAD" or response.status in (204, 304):
            return
        if response.file:
            path, offset, remaining = response.file
            with open(path, "rb") as f:
                f.seek(offset)
                while remaining > 0:
                    block = f.read(min(BLOCK, remaining))
                    if not block:
                        break
                    self.wfile.write(block)
                    remaining -= len(block)
        else:
            self.wfile.write(response.body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _handle


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that tracks its connections so stop() closes them."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, app: Callable[[Request], Response], classify: Callable[[str, str], str]):
        self.app = app
        self.classify = classify
        self.stats = Stats()
        self.errors: list[BaseException] = []
        self._conns: set[socket.socket] = set()
        self._conn_threads: set[threading.Thread] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request, client_address):
        thread = threading.Thread(target=self._run, args=(request, client_address), daemon=True)
        with self._conn_lock:
            self._conns.add(request)
            self._conn_threads.add(thread)
        thread.start()

    def _run(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:
            pass
        finally:
            with self._conn_lock:
                self._conns.discard(request)
                self._conn_threads.discard(threading.current_thread())
            self.shutdown_request(request)

    def close_connections(self) -> None:
        with self._conn_lock:
            conns = list(self._conns)
            threads = list(self._conn_threads)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join(timeout=5)

"""A fault-injecting HTTP/1.1 proxy on loopback, controlled from tests at runtime.

::

    with FaultProxy(server.url) as proxy:
        client = CatalogClient(proxy.url, ...)
        proxy.fail(503, times=2)          # two synthetic 503 answers, then normal
        proxy.lose_response(method="POST")  # forward, let the server apply it, drop the answer
        proxy.reset_after(1000)           # cut the next response after 1000 bytes (TCP RST)
        proxy.delay(2.0)                  # hold the next request 2 s before forwarding
        proxy.refuse()                    # stop listening: connections are refused
        proxy.refuse(False)               # listen again on the same port

Faults are rules consumed in order; each applies to the next ``times``
requests that match its ``method`` and ``path_contains`` filters. The proxy
understands just enough HTTP (request heads, ``Content-Length`` bodies,
response framing) to act on request boundaries.
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

BLOCK = 64 * 1024
_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
            504: "Gateway Timeout", 429: "Too Many Requests", 408: "Request Timeout"}


@dataclass
class Rule:
    kind: str  # "fail" | "lose" | "reset" | "delay"
    times: int
    method: str | None = None
    path_contains: str | None = None
    status: int = 503
    body: bytes = b""
    headers: tuple = ()
    nbytes: int = 0
    direction: str = "response"
    graceful: bool = False
    seconds: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and (self.method is None or self.method == method) and (
            self.path_contains is None or self.path_contains in path)


class _Closed(Exception):
    pass


def _rst(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class _Reader:
    """Buffered reads from a socket: heads up to a blank line, then exact byte counts."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def head(self) -> bytes | None:
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(BLOCK)
            if not data:
                if self.buf:
                    raise _Closed()
                return None
            self.buf += data
            if len(self.buf) > 1 << 20:
                raise _Closed()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return head + b"\r\n\r\n"

    def chunks(self, n: int | None):
        """Yield exactly ``n`` bytes (or everything until EOF when n is None)."""
        remaining = n
        if self.buf:
            take = self.buf if remaining is None else self.buf[:remaining]
            self.buf = self.buf[len(take):]
            if remaining is not None:
                remaining -= len(take)
            yield take
        while remaining is None or remaining > 0:
            data = self.sock.recv(BLOCK if remaining is None else min(BLOCK, remaining))
            if not data:
                if remaining is None:
                    return
                raise _Closed()
            if remaining is not None:
                remaining -= len(data)
            yield data


def _headers(head: bytes) -> tuple[str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip().lower()] = v.strip()
    return lines[0], fields


class FaultProxy:
    """See the module docstring."""

    def __init__(self, upstream: str, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 60.0):
        parts = urlsplit(upstream if "://" in upstream else f"http://{upstream}")
        self.upstream = (parts.hostname, parts.port or 80)
        self._host = host
        self._port = port
        self.timeout = timeout
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._stopping = threading.Event()
        self.forwarded = 0  # requests that reached the upstream server
        self.faults_applied = 0

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> "FaultProxy":
        self._stopping.clear()
        self._listen()
        return self

    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        sock.listen(64)
        sock.settimeout(0.05)
        self._port = sock.getsockname()[1]
        self._listener = sock
        self._accept_thread = threading.Thread(target=self._accept, args=(sock,), daemon=True,
                                               name="satchel-fault-proxy")
        self._accept_thread.start()

    def _unlisten(self) -> None:
        sock, self._listener = self._listener, None
        if sock is not None:
            sock.close()
            self._accept_thread.join(timeout=5)

    def stop(self) -> None:
        self._stopping.set()
        self._unlisten()
        self.drop_connections()

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def host(self) -> str:
        return f"{self._host}:{self._port}"

    # --- controls ----------------------------------------------------------------------

    def _add(self, rule: Rule) -> None:
        with self._lock:
            self._rules.append(rule)

    def fail(self, status: int = 503, *, times: int = 1, body: str | None = None,
             retry_after: float | None = None, method=None, path_contains=None) -> None:
        """Answer ``times`` requests with ``status`` without forwarding them."""
        text = body if body is not None else (
            "The service is temporarily unavailable. Detail: Transaction aborted.\n" if status == 503
            else f"Injected {status}.\n")
        headers = (("Retry-After", f"{retry_after:g}"),) if retry_after is not None else ()
        self._add(Rule("fail", times, method, path_contains, status=status, body=text.encode(), headers=headers))

    def lose_response(self, *, times: int = 1, method=None, path_contains=None) -> None:
        """Forward the request, read the server's whole answer, then reset the client connection."""
        self._add(Rule("lose", times, method, path_contains))

    def reset_after(self, nbytes: int, *, times: int = 1, direction: str = "response", graceful: bool = False,
                    method=None, path_contains=None) -> None:
        """Cut the connection after ``nbytes`` of the response (or of the request body).

        By default the cut is a TCP reset (the client may lose bytes already in
        flight); ``graceful=True`` closes normally, so the client reads exactly
        ``nbytes`` and then sees a truncated message.
        """
        if direction not in ("response", "request"):
            raise ValueError("direction must be 'response' or 'request'")
        self._add(Rule("reset", times, method, path_contains, nbytes=nbytes, direction=direction,
                       graceful=graceful))

    def delay(self, seconds: float, *, times: int = 1, method=None, path_contains=None) -> None:
        """Hold matching requests ``seconds`` before forwarding them."""
        self._add(Rule("delay", times, method, path_contains, seconds=seconds))

    def refuse(self, on: bool = True) -> None:
        """Stop (or resume) listening; open connections are reset when refusing starts."""
        if on:
            self._unlisten()
            self.drop_connections()
        elif self._listener is None:
            self._listen()

    def clear(self) -> None:
        """Forget every pending fault rule."""
        with self._lock:
            self._rules.clear()

    def pending(self) -> int:
        with self._lock:
            return sum(r.times for r in self._rules)

    def drop_connections(self) -> None:
        with self._lock:
            conns = list(self._conns)
            threads = list(self._threads)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            if t is not threading.current_thread():
                t.join(timeout=5)

    # --- the relay ------------------------------------------------------------------------

    def _take(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.times -= 1
                    self.faults_applied += 1
                    return rule
        return None

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(self.timeout)
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            with self._lock:
                self._conns.add(client)
                self._threads.add(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        upstream = None
        try:
            reader = _Reader(client)
            up_reader = None
            while not self._stopping.is_set():
                head = reader.head()
                if head is None:
                    break
                request_line, fields = _headers(head)
                method, _, rest = request_line.partition(" ")
                path = rest.rsplit(" ", 1)[0]
                if "chunked" in fields.get("transfer-encoding", "").lower():
                    client.sendall(b"HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    break
                length = int(fields.get("content-length", "0") or 0)
                rule = self._take(method, path)
                if rule is not None and rule.kind == "fail":
                    for _ in reader.chunks(length):
                        pass
                    reason = _REASONS.get(rule.status, "Error")
                    extra = "".join(f"{k}: {v}\r\n" for k, v in rule.headers)
                    client.sendall(
                        f"HTTP/1.1 {rule.status} {reason}\r\nContent-Type: text/plain\r\n{extra}"
                        f"Content-Length: {len(rule.body)}\r\n\r\n".encode()
                        + (b"" if method == "HEAD" else rule.body))
                    continue
                if rule is not None and rule.kind == "delay":
                    if self._stopping.wait(rule.seconds):
                        break
                if upstream is None:
                    upstream = socket.create_connection(self.upstream, timeout=self.timeout)
                    up_reader = _Reader(upstream)
                upstream.sendall(head)
                sent = 0
                for block in reader.chunks(length):
                    if rule is not None and rule.kind == "reset" and rule.direction == "request":
                        block = block[: max(rule.nbytes - sent, 0)]
                        if block:
                            upstream.sendall(block)
                        sent += len(block)
                        if sent >= rule.nbytes:
                            _rst(upstream)
                            upstream = None
                            _rst(client)
                            return
                    else:
                        upstream.sendall(block)
                self.forwarded += 1
                resp_head = up_reader.head()
                if resp_head is None:
                    break
                status_line, rfields = _headers(resp_head)
                status = int(status_line.split(" ")[1])
                if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
                    body_len = 0
                elif "content-length" in rfields:
                    body_len = int(rfields["content-length"])
                else:
                    body_len = None
                if rule is not None and rule.kind == "lose":
                    for _ in up_reader.chunks(body_len):
                        pass
                    _rst(client)
                    return
                if rule is not None and rule.kind == "reset" and rule.direction == "response":
                    budget = rule.nbytes
                    for block in [resp_head, *up_reader.chunks(body_len)]:
                        client.sendall(block[:budget])
                        budget -= min(len(block), budget)
                        if budget <= 0:
                            break
                    if rule.graceful:
                        client.shutdown(socket.SHUT_WR)
                        client.close()
                    else:
                        _rst(client)
                    return
                client.sendall(resp_head)
                for block in up_reader.chunks(body_len):
                    client.sendall(block)
                if body_len is None or rfields.get("connection", "").lower() == "close":
                    break
        except (OSError, _Closed, ValueError, IndexError):
            pass
        finally:
            if upstream is not None:
                upstream.close()
            try:
                client.close()
            except OSError:
                pass
            with self._lock:
                self._conns.discard(client)
                self._threads.discard(threading.current_thread())

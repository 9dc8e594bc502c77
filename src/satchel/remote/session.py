"""One HTTP session to a DERIVA host: shared ``httpx.Client``, credentials, retries.

Every request of the remote layer goes through :meth:`RemoteSession.call`:
it sends the request, turns httpx exceptions and unexpected statuses into
:class:`~satchel.errors.RemoteError` (through :mod:`satchel.remote.boundary`)
and repeats idempotent requests under the :class:`RetryPolicy`. Streamed
responses are consumed inside the same boundary, so an error half-way
through a download is translated and retried like any other.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, TypeVar
from urllib.parse import urlsplit

import httpx

from satchel import errors
from satchel.remote import boundary, urls
from satchel.remote.auth import Credential, CredentialAuth, load_credential
from satchel.remote.retry import RetryPolicy

T = TypeVar("T")

DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=120.0, pool=30.0)
USER_AGENT = "satchel-remote/0.1"


class RemoteSession:
    """A keep-alive connection pool to one server, with one credential and one retry policy."""

    def __init__(
        self,
        url: str,
        *,
        credential: Credential | None | str = "auto",
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        verify: bool | str = True,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 8,
    ):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise errors.RemoteURLError(f"{boundary.safe_url(url)} is not a server URL; give it as https://host")
        self.url = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"
        if credential == "auto":
            credential = load_credential(parts.netloc.rsplit("@", 1)[-1])
        self.credential: Credential | None = credential  # type: ignore[assignment]
        self.retry = retry or RetryPolicy()
        self.client = httpx.Client(
            base_url=self.url,
            auth=CredentialAuth(self.credential) if self.credential else None,
            timeout=timeout,
            verify=verify,
            transport=transport,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        who = str(self.credential) if self.credential else "anonymous"
        return f"RemoteSession({self.url!r}, {who})"

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "RemoteSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def call(
        self,
        method: str,
        path: str | Callable[[], str],
        *,
        idempotent: bool,
        expect: Iterable[int] = (200,),
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | Callable[[], dict[str, str]] | None = None,
        json: Any = None,
        content: bytes | Callable[[], Any] | None = None,
        consume: Callable[[httpx.Response], T] | None = None,
        timeout: httpx.Timeout | float | None = None,
    ) -> httpx.Response | T:
        """Send one request (repeated under the retry policy when ``idempotent``).

        ``content`` may be a callable returning fresh content for each attempt (a
        file is read again from its start). With ``consume``, the response is
        streamed and handed to it inside the error boundary; its result is
        returned. Otherwise the whole body is read and the response returned.
        """
        expected = frozenset(expect)
        url = self.url + (path() if callable(path) else path)

        def once():
            nonlocal url
            url = self.url + (path() if callable(path) else path)
            body = None
            try:
                body = content() if callable(content) else content
                return _send(body)
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()

        def _send(body):
            kwargs: dict[str, Any] = {"params": params, "headers": headers() if callable(headers) else headers}
            if json is not None:
                kwargs["json"] = json
            if body is not None:
                kwargs["content"] = body
            if timeout is not None:
                kwargs["timeout"] = timeout
            try:
                request = self.client.build_request(method, url, **kwargs)
                urls.check_target(method, request.url.raw_path.decode("ascii"))
                response = self.client.send(request, stream=True)
                try:
                    if response.status_code not in expected:
                        response.read()
                        raise boundary.status_error(response, method, request.url)
                    if consume is not None:
                        return consume(response)
                    response.read()
                    return response
                finally:
                    response.close()
            except httpx.HTTPError as exc:
                raise boundary.translate(exc, method, url) from None
            except (httpx.InvalidURL, httpx.CookieConflict, httpx.StreamError) as exc:
                raise boundary.translate(exc, method, url) from None

        return self.retry.call(once, idempotent=idempotent, what=f"{method} {boundary.safe_url(url)}")

    def json(self, method: str, path: str, *, idempotent: bool, **kw) -> Any:
        response = self.call(method, path, idempotent=idempotent, **kw)
        try:
            return response.json()
        except ValueError as exc:
            raise errors.ProtocolError(
                f"{method} {boundary.safe_url(self.url + path)} answered non-JSON: {response.text[:200]!r}",
                method=method, url=boundary.safe_url(self.url + path)) from exc

    def whoami(self) -> dict | None:
        """The ``/authn/session`` document of our credential, or None when anonymous."""
        try:
            return self.json("GET", "/authn/session", idempotent=True)
        except errors.NotFound:
            return None

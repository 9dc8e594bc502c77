"""The one place where httpx exceptions and error statuses become satchel errors.

Every request satchel makes goes through :func:`translate` (for exceptions)
and :func:`status_error` (for error statuses), so the mapping below is the
whole story. URLs are passed through :func:`safe_url` first: no user info, no
secret-looking query parameters.
"""

from __future__ import annotations

import email.utils
import errno
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from satchel import errors

#: query parameters whose values are never shown
SECRET_PARAMS = frozenset({"token", "access_token", "password", "key", "secret", "signature", "cookie"})

#: httpx exception class -> satchel error class; the most specific entry wins
_MAPPING: list[tuple[type[BaseException], type[errors.RemoteError]]] = [
    (httpx.HTTPStatusError, errors.RemoteStatusError),
    (httpx.UnsupportedProtocol, errors.ProtocolError),
    (httpx.LocalProtocolError, errors.ProtocolError),
    (httpx.RemoteProtocolError, errors.TransportError),  # peer closed or sent garbage: no usable answer
    (httpx.TimeoutException, errors.TransportError),
    (httpx.NetworkError, errors.TransportError),
    (httpx.ProxyError, errors.TransportError),
    (httpx.TransportError, errors.TransportError),
    (httpx.DecodingError, errors.ProtocolError),
    (httpx.TooManyRedirects, errors.ProtocolError),
    (httpx.RequestError, errors.TransportError),  # any other failure before an answer
    (httpx.HTTPError, errors.RemoteError),
    (httpx.InvalidURL, errors.ProtocolError),
    (httpx.CookieConflict, errors.ProtocolError),
    (httpx.StreamError, errors.ProtocolError),
]

_STATUS_CLASSES = {
    401: errors.AuthenticationError,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    409: errors.Conflict,
    412: errors.PreconditionFailed,
}

_HINTS = {
    errors.TransportError: "no HTTP answer (network, timeout or connection reset)",
    errors.ProtocolError: "the exchange broke the HTTP protocol",
}


def safe_url(url: object) -> str:
    """``url`` without user info or secret query values."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in SECRET_PARAMS for k, _ in pairs):
            query = urlencode([(k, "REDACTED" if k.lower() in SECRET_PARAMS else v) for k, v in pairs])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def error_class(exc: BaseException) -> type[errors.RemoteError]:
    for cls, target in _MAPPING:
        if isinstance(exc, cls):
            return target
    return errors.RemoteError


def translate(exc: BaseException, method: str, url: object) -> errors.RemoteError:
    """The satchel error for an httpx exception raised while doing ``method url``."""
    if isinstance(exc, httpx.HTTPStatusError):
        return status_error(exc.response, method, url)
    cls = error_class(exc)
    where = safe_url(url)
    if refused(exc):
        error = cls(f"{method} {where} failed: nothing answers at {_server(where)} (connection refused): the server "
                    "is down or the URL is wrong; check it with `satchel remote show` (set it with `satchel remote set "
                    "URL`)", method=method, url=where)
        error.refused = True  # type: ignore[attr-defined]
        return error
    hint = _HINTS.get(cls, "request failed")
    return cls(f"{method} {where} failed: {hint}: {type(exc).__name__}: {_scrub(str(exc))}",
               method=method, url=where)


def refused(exc: BaseException) -> bool:
    """A connection the other side refused: nothing listens there (a down server or a wrong URL)."""
    if not isinstance(exc, httpx.ConnectError):
        return False
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or getattr(seen, "errno", None) == errno.ECONNREFUSED:
            return True
        seen = seen.__cause__ or seen.__context__
    return "connection refused" in str(exc).lower()


def _server(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _scrub(text: str) -> str:
    # httpx messages may quote the URL; never let user info through
    return " ".join(safe_url(w) if "://" in w else w for w in text.split(" "))


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (delta or HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _shortened(url: str, keep: int = 160) -> str:
    """A URL for a message: a long ``any()`` list is cut in the middle (the error keeps it whole)."""
    return url if len(url) <= 2 * keep else f"{url[:keep]}...({len(url) - 2 * keep} characters)...{url[-keep:]}"


def _from_front_end(response: httpx.Response) -> bool:
    """An HTML error page: ERMrest and Hatrac answer errors in text/plain unless asked for HTML (we never
    are), so this came from the web server in front of them (Apache's 404 for a path it cannot stat, its 414)."""
    return response.headers.get("Content-Type", "").startswith("text/html")


def status_error(response: httpx.Response, method: str, url: object) -> errors.RemoteStatusError:
    """The satchel error for an HTTP error status (the body must already be read)."""
    status = response.status_code
    cls = _STATUS_CLASSES.get(status, errors.RemoteStatusError)
    front_end = _from_front_end(response)
    if front_end and status == 404:
        cls = errors.RemoteStatusError  # the web server's page, not the service's "absent": never NotFound
    where = safe_url(url)
    try:
        body = response.text
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        body = ""
    detail = " ".join(body.split())[:500]
    reason = response.reason_phrase or ""
    message = f"{method} {_shortened(where)} answered {status} {reason}".rstrip()
    if detail:
        message += f": {detail}"
    if status == 401:
        message += " (check the token or cookie: see docs/remote.md, 'Credentials')"
    elif status == 403:
        message += (" (the server knows this login but does not let it do this: check which credential is used with"
                    " `satchel remote show`, and ask the catalog's owner for the right; docs/remote.md, 'Credentials')")
    elif front_end and status in (404, 414):
        message += (" (the web server in front of ERMrest/Hatrac refused the request before the service saw it;"
                    " its URL is probably too long: see docs/remote.md, 'How long a request may be')")
    error = cls(message, method=method, url=where, status=status, body=body)
    error.retry_after = retry_after(response)  # type: ignore[attr-defined]
    return error

"""One translation boundary: every httpx exception and error status becomes a RemoteError."""

from __future__ import annotations

import inspect

import httpx
import pytest

from satchel import errors
from satchel.remote import boundary


def httpx_exceptions():
    return sorted(
        (obj for _, obj in inspect.getmembers(httpx, inspect.isclass)
         if issubclass(obj, Exception) and obj.__module__.startswith("httpx")),
        key=lambda c: c.__name__,
    )


def instantiate(cls):
    request = httpx.Request("GET", "http://u:p@example.org/x?token=s3cret")
    response = httpx.Response(500, request=request, text="boom")
    if issubclass(cls, httpx.HTTPStatusError):
        return cls("bad", request=request, response=response)
    try:
        return cls("message")
    except TypeError:
        return cls()


@pytest.mark.parametrize("cls", httpx_exceptions(), ids=lambda c: c.__name__)
def test_every_httpx_exception_has_a_remote_error(cls):
    exc = instantiate(cls)
    err = boundary.translate(exc, "GET", "http://u:p@example.org/x?token=s3cret")
    assert isinstance(err, errors.RemoteError)
    assert type(err) is not errors.RemoteError or cls in (httpx.HTTPError,), cls
    assert "s3cret" not in str(err) and "u:p" not in str(err) and err.method == "GET"


def test_tree_is_fully_listed():
    listed = {cls for cls, _ in boundary._MAPPING}
    for cls in httpx_exceptions():
        assert any(issubclass(cls, base) for base in listed), cls


def test_transport_errors_are_transport_errors():
    for cls in (httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError):
        assert isinstance(boundary.translate(cls("x"), "GET", "http://h/"), errors.TransportError)


@pytest.mark.parametrize("status,cls", [
    (401, errors.AuthenticationError), (403, errors.PermissionDenied), (404, errors.NotFound),
    (409, errors.Conflict), (412, errors.PreconditionFailed), (503, errors.RemoteStatusError),
    (400, errors.RemoteStatusError),
])
def test_status_mapping(status, cls):
    response = httpx.Response(status, text="Detail: why", headers={"Retry-After": "3"},
                              request=httpx.Request("POST", "http://h/x"))
    err = boundary.status_error(response, "POST", "http://h/x")
    assert type(err) is cls and err.status == status and err.body == "Detail: why"
    assert "POST http://h/x answered" in str(err) and "Detail: why" in str(err)
    assert err.retry_after == 3.0


def test_safe_url():
    assert boundary.safe_url("https://me:pw@host:8443/p?a=1&password=x") == "https://host:8443/p?a=1&password=REDACTED"


APACHE_404 = ('<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN" "http://www.w3.org/TR/html4/strict.dtd">\n'
              "<html><head>\n<title>404 Not Found</title>\n</head><body>\n<h1>Not Found</h1>\n"
              "<p>The requested URL was not found on this server.</p>\n</body></html>\n")


def test_the_web_servers_404_page_is_not_a_services_not_found():
    """Apache's own 404 (a path it cannot stat) must never read as "absent" or "already deleted"."""
    page = httpx.Response(404, headers={"Content-Type": "text/html; charset=iso-8859-1"}, text=APACHE_404)
    err = boundary.status_error(page, "DELETE", "http://h/ermrest/catalog/1/entity/S:T/RID=1")
    assert type(err) is errors.RemoteStatusError and err.status == 404
    assert "refused the request before the service saw it" in str(err) and "too long" in str(err)
    service = httpx.Response(404, headers={"Content-Type": "text/plain"}, text="Resource /hatrac/x not found.\n")
    assert isinstance(boundary.status_error(service, "HEAD", "http://h/hatrac/x"), errors.NotFound)

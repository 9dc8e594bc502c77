"""The web server in front of ERMrest, Hatrac and webauthn: what Apache 2.4 + mod_wsgi refuses itself.

A real deployment answers some requests before the service sees them, with
Apache's own HTML pages. The emulator refuses the same requests the same way
(measured on the server built by ``../shared/real-deriva``: Apache 2.4.71,
mod_wsgi 4.9.4, Debian 12; docs/remote.md, "How long a request may be"):

- **414** when the request line (method, target, protocol) passes 8,191
  characters; the connection is then closed.
- **404** when mod_wsgi cannot stat the path it maps the request to: the WSGI
  script's file name followed by the percent-decoded path info (the path
  after the mount point), past 4,092 bytes. Apache's error log says "Target
  WSGI script not found or unable to stat". The query string does not count.

The scripts' file names are those of that deployment; a deeper install path
lowers the limit on the request path by as much.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from satchel.testing.httpd import Request, Response

MAX_REQUEST_LINE = 8191
MAX_SCRIPT_PATH = 4092
SITE_PACKAGES = "/opt/deriva-real/venv/lib/python3.11/site-packages"
#: mount point -> the WSGI script it is aliased to (WSGIScriptAlias)
SCRIPTS = {
    "/ermrest": f"{SITE_PACKAGES}/ermrest/ermrest.wsgi",
    "/hatrac": f"{SITE_PACKAGES}/hatrac/hatrac.wsgi",
    "/authn": f"{SITE_PACKAGES}/webauthn2/webauthn2.wsgi",
}
SERVER = "Apache/2.4.71 (Debian)"
SERVER_NAME = "localhost"  # the deployment's ServerName: Apache names it on pages made before the Host is read


def refusal(req: Request) -> Response | None:
    """Apache's answer to ``req`` when it refuses it before any service sees it, else None."""
    target = req.raw_path + ("?" + req.query_string if req.query_string else "")
    host, port = _host_port(req.header("Host"))
    if len(req.method) + len(target) + len(" HTTP/1.1") + 1 > MAX_REQUEST_LINE:
        return _page(414, "Request-URI Too Long",
                     "The requested URL's length exceeds the capacity\nlimit for this server.<br />\n",
                     SERVER_NAME, port, close=True)
    for mount, script in SCRIPTS.items():
        if req.raw_path == mount or req.raw_path.startswith(mount + "/") or req.raw_path.startswith(mount + ";"):
            path_info = unquote_to_bytes(req.raw_path[len(mount):])
            if len(script) + len(path_info) > MAX_SCRIPT_PATH:
                return _page(404, "Not Found", "The requested URL was not found on this server.", host, port)
            break
    return None


def _host_port(header: str | None) -> tuple[str, str]:
    host, sep, port = (header or SERVER_NAME).rpartition(":")
    return (host, port) if sep else (port, "80")


def _page(status: int, title: str, text: str, host: str, port: str, *, close: bool = False) -> Response:
    body = (
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN" "http://www.w3.org/TR/html4/strict.dtd">\n'
        f"<html><head>\n<title>{status} {title}</title>\n</head><body>\n<h1>{title}</h1>\n<p>{text}</p>\n"
        f"<hr>\n<address>{SERVER} Server at {host} Port {port}</address>\n</body></html>\n"
    ).encode("latin-1")
    headers = [("Content-Type", "text/html; charset=iso-8859-1")]
    if close:
        headers.append(("Connection", "close"))
    # Apache sends no length with a HEAD's 404, but does with its 414
    return Response(status, body, headers, head_only_length=close)

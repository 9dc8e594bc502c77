"""The emulator refuses what Apache refuses in front of the real services, with the same pages.

The thresholds are those measured on the real server of ../shared/real-deriva (docs/remote.md,
"How long a request may be"): an ERMrest path of 4,029 characters passed and one of 4,030 got
Apache's 404; a Hatrac path of 4,030 passed; a GET target of 8,178 characters passed and 8,179
got 414.
"""

from __future__ import annotations

import http.client

import pytest

from satchel.testing import apache

ENTITY = "/ermrest/catalog/1/entity/public:ERMrest_Client/ID="


def raw(server, method: str, target: str, body: bytes | None = None):
    """One request exactly as written (httpx would normalise the target)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, target, body=body, headers={"Authorization": f"Bearer {server.token}"})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def is_apache_page(status, headers, body, title):
    return (headers.get("Content-Type") == "text/html; charset=iso-8859-1"
            and body.startswith(b'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN"')
            and f"<title>{title}</title>".encode() in body and b"Apache/2.4.71 (Debian) Server at " in body)


def test_an_ermrest_path_past_the_stat_limit_gets_apaches_404(deriva_server):
    ok = ENTITY + "A" * (4029 - len(ENTITY))
    status, headers, body = raw(deriva_server, "GET", ok)
    assert status == 200 and body == b"[]"
    status, headers, body = raw(deriva_server, "GET", ok + "A")
    assert status == 404 and is_apache_page(status, headers, body, "404 Not Found")
    assert b"Server at 127.0.0.1 Port" in body
    # a DELETE that would mean "nothing matched" gets the same page: the service never saw it
    assert raw(deriva_server, "DELETE", ok + "A")[0] == 404
    status, headers, body = raw(deriva_server, "HEAD", ok + "A")
    assert status == 404 and body == b"" and "Content-Length" not in headers


def test_the_stat_limit_counts_decoded_bytes_and_not_the_query(deriva_server):
    # %41 is one byte once decoded: three times as many characters pass
    encoded = ENTITY + "A" * (4029 - len(ENTITY) - 1000) + "%41" * 1000
    assert len(encoded) == 6029 and raw(deriva_server, "GET", encoded)[0] == 200
    assert raw(deriva_server, "GET", encoded + "%41")[0] == 404
    # a two-byte UTF-8 character counts twice
    assert raw(deriva_server, "GET", ENTITY + "A" * (4029 - len(ENTITY) - 1000) + "%C3%A9" * 501)[0] == 404
    assert raw(deriva_server, "GET", "/ermrest/catalog/1/entity/public:ERMrest_Client?limit=1&x=" + "A" * 5000)[0] == 200


def test_a_hatrac_path_past_the_stat_limit_gets_apaches_404(deriva_server):
    name = "/hatrac/Image/" + "a" * (4030 - len("/hatrac/Image/"))
    status, _, body = raw(deriva_server, "GET", name)
    assert status == 404 and b"not found" in body and not body.startswith(b"<!DOCTYPE")
    status, headers, body = raw(deriva_server, "PUT", name + "b", b"hello")
    assert status == 404 and is_apache_page(status, headers, body, "404 Not Found")


def test_a_request_line_past_8191_characters_gets_414_and_a_closed_connection(deriva_server):
    head = "/ermrest/catalog/1/entity/public:ERMrest_Client?limit=1&x="
    ok = head + "A" * (8178 - len(head))
    assert raw(deriva_server, "GET", ok)[0] == 200
    status, headers, body = raw(deriva_server, "GET", ok + "A")
    assert status == 414 and is_apache_page(status, headers, body, "414 Request-URI Too Long")
    assert headers.get("Connection") == "close" and b"Server at localhost Port" in body
    # the limit is on the whole line: a longer method leaves less for the target
    assert raw(deriva_server, "DELETE", ok[:-3])[0] != 414
    assert raw(deriva_server, "DELETE", ok[:-2])[0] == 414


@pytest.mark.parametrize("leaf", [228, 229])
def test_a_hatrac_name_too_long_for_its_storage_fails_and_stays_without_content(deriva_server, leaf):
    name = "/hatrac/Image/" + "n" * leaf
    status, headers, body = raw(deriva_server, "PUT", name, b"hello")
    if leaf == 228:
        assert status == 201
        return
    assert status == 500 and body.startswith(b"[Errno 36] File name too long: '/var/www/hatrac/Image/nnn")
    assert headers.get("Connection") == "close"
    assert raw(deriva_server, "HEAD", name)[0] == 409  # the name was made first, as on Hatrac
    job = b'{"chunk-length": 5, "content-length": 5}'
    assert raw(deriva_server, "POST", name + "x;upload", job)[0] == 500
    assert raw(deriva_server, "HEAD", name + "x")[0] == 409


def test_the_limits_are_the_measured_ones():
    assert apache.MAX_REQUEST_LINE == 8191 and apache.MAX_SCRIPT_PATH == 4092
    assert len(apache.SCRIPTS["/ermrest"]) == 71 and len(apache.SCRIPTS["/hatrac"]) == 69

"""The emulated /authn/session: cookie and bearer, sessions, anonymous clients."""

from __future__ import annotations

import httpx

CAT = "/ermrest/catalog/1"


def test_session_with_bearer_and_cookie(deriva_server, writer):
    doc = writer.get("/authn/session").json()
    assert doc["client"]["id"] == "writer"
    assert {"attributes", "since", "expires", "seconds_remaining", "vary_headers", "tracking"} <= set(doc)
    with httpx.Client(base_url=deriva_server.url, cookies={"webauthn": deriva_server.token}) as c:
        assert c.get("/authn/session").json()["client"]["id"] == "writer"


def test_anonymous_and_bogus_cookie(deriva_server, anon):
    r = anon.get("/authn/session")
    assert r.status_code == 404 and "No existing login session" in r.text
    with httpx.Client(base_url=deriva_server.url, cookies={"webauthn": "bogus"}) as c:
        assert c.get("/authn/session").status_code == 404
        assert c.get(f"{CAT}/entity/deriva-ml:Asset_Role").status_code == 200
        assert c.post(f"{CAT}/entity/deriva-ml:Asset_Role", json=[]).status_code == 401


def test_password_login(deriva_server, anon, writer):
    r = anon.post("/authn/session", data={"username": "writer", "password": "writer-password"})
    assert r.status_code == 200 and r.headers["Set-Cookie"].startswith("webauthn=")
    assert anon.get("/authn/session").json()["client"]["id"] == "writer"  # the cookie was kept
    anon.cookies.clear()
    assert anon.post("/authn/session", data={"username": "writer", "password": "nope"}).status_code == 401
    assert writer.post("/authn/session", data={"username": "writer", "password": "x"}).status_code == 409


def test_server_remote_helper(deriva_server):
    with deriva_server.remote() as r:
        assert r.whoami()["client"]["id"] == "writer"
    with deriva_server.remote("reader") as r:
        assert r.whoami()["client"]["id"] == "reader"



def test_issued_tokens_are_letters_and_digits(deriva_server, anon):
    """A token that began with ``-`` broke a command line that took it as an argument (CI, stop 6)."""
    import re

    from satchel.testing.authn import new_token

    tokens = [new_token() for _ in range(2000)]
    assert all(re.fullmatch(r"[A-Za-z0-9]{24}", t) for t in tokens)
    assert len(set(tokens)) == len(tokens)
    for t in (deriva_server.token, deriva_server.admin_token, deriva_server.reader_token):
        assert re.fullmatch(r"[A-Za-z0-9]{24}", t)
    r = anon.post("/authn/session", data={"username": "writer", "password": "writer-password"})
    assert re.fullmatch(r"webauthn=[A-Za-z0-9]{24};.*", r.headers["Set-Cookie"])

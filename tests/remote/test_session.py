"""RemoteSession: injectable transport, bounded pool, per-attempt bodies and headers."""

from __future__ import annotations

import httpx
import pytest

from satchel import errors
from satchel.remote import Credential, RemoteSession, RetryPolicy


def test_transport_is_injectable_and_credentials_applied():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"client": {"id": "me"}})

    with RemoteSession("https://example.org", credential=Credential.bearer("t0k"),
                       transport=httpx.MockTransport(handler)) as s:
        assert s.whoami() == {"client": {"id": "me"}}
    assert seen[0].headers["Authorization"] == "Bearer t0k" and seen[0].url.path == "/authn/session"
    with RemoteSession("https://example.org", credential=Credential.cookie("webauthn=c00k"),
                       transport=httpx.MockTransport(handler)) as s:
        s.whoami()
    assert seen[1].headers["Cookie"] == "webauthn=c00k"


def test_each_attempt_gets_fresh_content_and_headers():
    bodies, attempts = [], iter(range(10))

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append((request.read(), request.headers["X-Attempt"]))
        return httpx.Response(503 if len(bodies) < 3 else 201)

    fast = RetryPolicy(attempts=5, base_delay=0, max_delay=0, sleep=lambda s: None)
    with RemoteSession("http://h", credential=None, retry=fast, transport=httpx.MockTransport(handler)) as s:
        s.call("PUT", "/hatrac/x", idempotent=True, expect=(201,),
               content=lambda: iter([b"ab", b"cd"]), headers=lambda: {"X-Attempt": str(next(attempts)),
                                                                        "Content-Length": "4"})
    assert bodies == [(b"abcd", "0"), (b"abcd", "1"), (b"abcd", "2")]


def test_unexpected_status_and_non_json_are_remote_errors():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>not json</html>") if request.url.path == "/a" \
            else httpx.Response(409, text="Detail: nope")

    with RemoteSession("http://h", credential=None, retry=RetryPolicy.none(),
                       transport=httpx.MockTransport(handler)) as s:
        with pytest.raises(errors.ProtocolError, match="non-JSON"):
            s.json("GET", "/a", idempotent=True)
        with pytest.raises(errors.Conflict) as info:
            s.call("POST", "/b", idempotent=False)
        assert info.value.status == 409 and info.value.method == "POST" and info.value.url == "http://h/b"


def test_pool_is_bounded_and_urls_validated():
    with RemoteSession("https://example.org", credential=None, max_connections=3) as s:
        assert s.client._transport._pool._max_connections == 3
    with pytest.raises(ValueError):
        RemoteSession("ftp://example.org", credential=None)


def test_a_request_longer_than_servers_accept_is_refused_before_it_is_sent(deriva_server, remote):
    """Apache would answer its own 404 or 414; the session refuses it locally, and never retries it."""
    deriva_server.stats.reset()
    long_rid = "A" * 3100
    with pytest.raises(errors.RequestTooLong, match="is not sent: its path has") as caught:
        remote.session.call("GET", f"/ermrest/catalog/1/entity/deriva-ml:Execution/RID={long_rid}", idempotent=True)
    assert caught.value.length > caught.value.limit
    with pytest.raises(errors.RequestTooLong, match="its target has"):
        remote.session.call("GET", "/ermrest/catalog/1/entity/deriva-ml:Execution", idempotent=True,
                            params={"x": "q" * 7000})
    assert deriva_server.stats.requests() == 0


def test_lookups_and_deletes_of_thousands_of_keys_fit_every_request(deriva_server, remote):
    """The request that failed a 3,000-asset push on a real server: RID=any(...) of every asset."""
    rows = [{"URL": f"/hatrac/Image/{n:032x}.image%20{n}.png", "Length": n, "MD5": f"{n:032x}"} for n in range(3000)]
    stored = remote.catalog.insert("test-schema", "Image", rows, on_conflict_skip=True)
    rids = [r["RID"] for r in stored]
    found = remote.catalog.lookup("test-schema", "Image", "RID", rids, columns=("RID",))
    assert len(found) == 3000
    assert len(remote.catalog.lookup("test-schema", "Image", "URL", [r["URL"] for r in rows])) == 3000
    remote.catalog.delete_rids("test-schema", "Image", rids)
    assert remote.catalog.count("test-schema", "Image") == 0
    refused = [entry for entry in deriva_server.log if entry[2] in (404, 414)]
    assert refused == [], refused[:1]
